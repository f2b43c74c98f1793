"""Signed tickets: verifiable with the public key alone, tamper-evident, bound to meeting and day."""

from __future__ import annotations

from datetime import date
from uuid import uuid4

import pytest

from services.registration import tickets

DAY = date(2021, 10, 28)


def test_sign_and_verify_round_trip() -> None:
    private, public = tickets.new_key_pair()
    rid, mid = uuid4(), uuid4()
    code = tickets.sign(private, rid, mid, DAY)
    assert code.isalnum() and code.upper() == code and len(code) <= 140
    data = tickets.verify(code, public)
    assert data.registration_id == rid and data.meeting_prefix == mid.bytes[:4] and data.day == DAY
    assert tickets.verify(code.lower(), public) == data


def test_another_key_or_a_changed_byte_fails() -> None:
    private, public = tickets.new_key_pair()
    _, other_public = tickets.new_key_pair()
    code = tickets.sign(private, uuid4(), uuid4(), DAY)
    with pytest.raises(tickets.BadTicket):
        tickets.verify(code, other_public)
    flipped = code[:10] + ("A" if code[10] != "A" else "B") + code[11:]
    with pytest.raises(tickets.BadTicket):
        tickets.verify(flipped, public)
    for junk in ["", "hello", "!!!!", code[:-8]]:
        with pytest.raises(tickets.BadTicket):
            tickets.verify(junk, public)


def test_offline_check_reasons() -> None:
    private, public = tickets.new_key_pair()
    mid = uuid4()
    code = tickets.sign(private, uuid4(), mid, DAY)
    days = (DAY, DAY)
    assert tickets.check_offline(code, public, mid, DAY, days)[1] is None
    assert tickets.check_offline(code, public, mid, date(2021, 10, 29), days)[1] == "invalid_time"
    assert tickets.check_offline("ABC", public, mid, DAY, days)[1] == "invalid_signature"
    other = uuid4()
    assert tickets.check_offline(code, public, other, DAY, days)[1] == "wrong_meeting"


def test_slot_tickets_are_valid_on_their_day_only() -> None:
    private, public = tickets.new_key_pair()
    mid = uuid4()
    weeks = (date(2021, 10, 4), date(2021, 10, 29))
    code = tickets.sign(private, uuid4(), mid, date(2021, 10, 5))
    assert tickets.check_offline(code, public, mid, date(2021, 10, 5), weeks, slotted=True)[1] is None
    assert tickets.check_offline(code, public, mid, date(2021, 10, 6), weeks, slotted=True)[1] == "invalid_time"
    # A ticket of a multi-day meeting without slots is valid on every day it covers.
    code = tickets.sign(private, uuid4(), mid, weeks[0])
    assert tickets.check_offline(code, public, mid, date(2021, 10, 20), weeks)[1] is None
