"""A ticket mail is rendered once: its QR code and calendar file are made once a mail, and it carries both."""

from __future__ import annotations

import email
import email.policy
import io
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
import zxingcpp
from PIL import Image

from services.notifications import mails
from services.notifications.mails import Mails
from services.notifications.settings import NotificationSettings
from shared.clock import FrozenClock

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


def _ticket_row(address: str) -> tuple[dict[str, Any], mails.Lookups]:
    meeting_id = uuid4()
    row = {
        "id": uuid4(), "tenant": "stadt-a", "template": "confirmed", "transactional": True,
        "subscription_id": None, "meeting_id": meeting_id, "survey_id": None, "registration_id": uuid4(),
        "cause_event_id": uuid4(), "locale": "de", "address": address,
        "personal": {"name": "Erika Beispiel", "ticket_code": "TICKETCODE42", "manage_url": "https://x.example/m"},
    }  # fmt: skip
    meeting = {
        "title": "Auftaktveranstaltung", "starts_at": datetime(2027, 3, 10, 17, tzinfo=UTC),
        "ends_at": datetime(2027, 3, 10, 19, tzinfo=UTC), "timezone": "Europe/Berlin",
        "venue": {"name": "Rathaus", "city": "Heide"}, "url": "https://x.example/t",
    }  # fmt: skip
    return row, {"meetings": {("stadt-a", meeting_id): meeting}, "surveys": {}, "causes": {}}


@pytest.mark.parametrize("address", ["erika@example.org", "jürgen@example.org"])
def test_a_ticket_mail_draws_its_code_once_and_carries_it(address: str, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[str] = []
    draw = mails.ticket_qr

    def counted(code: str) -> bytes:
        drawn.append(code)
        return draw(code)

    monkeypatch.setattr(mails, "ticket_qr", counted)
    row, lookups = _ticket_row(address)
    wire = Mails(NotificationSettings(), FrozenClock(NOW)).wire(row, lookups)

    assert drawn == ["TICKETCODE42"]
    message = email.message_from_bytes(wire, policy=email.policy.SMTPUTF8)
    assert message["To"] == address
    parts = {part.get_content_type(): part for part in message.walk()}
    assert "text/calendar" in parts
    png = parts["image/png"].get_payload(decode=True)
    assert isinstance(png, bytes)
    (read,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert read.text == "TICKETCODE42"
