"""Registration's main use cases against a fake unit of work: which outcome, which events, which refusal.

The fake store keeps meetings and registrations in memory and decides seats with ``domain.allocate`` (the model
of the rule ``decide_seats`` runs in PostgreSQL); the integration tests hold the SQL to the same answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from services.registration import domain, tickets
from services.registration.domain import Applicant, Counts, Meeting
from services.registration.store import Claimed
from services.registration.use_cases import checkin, registrations
from services.registration.use_cases.common import Urls
from shared.contracts.registration import (
    RegistrationCancelledV2,
    RegistrationCheckedInV1,
    RegistrationConfirmedV2,
    RegistrationPromotedV2,
    RegistrationReceivedV1,
    RegistrationWaitlistedV2,
    SeatsChangedV1,
)
from shared.errors import Conflict, Invalid, NotFound
from shared.settings import Settings
from shared.unit_of_work import FakeUnitOfWork

NOW = datetime(2021, 10, 1, 10, 0, tzinfo=UTC)
URLS = Urls.of(Settings())


def meeting(capacity: int | None = 2, *, waitlist: bool = True, status: str = "published") -> Meeting:
    private, public = tickets.new_key_pair()
    starts = datetime(2021, 10, 28, 16, 0, tzinfo=UTC)
    return Meeting(
        id=uuid4(), tenant="kreis", status=status, title="Auftakt", description="", venue=None,
        starts_at=starts, ends_at=starts + timedelta(hours=2), capacity=capacity, waitlist=waitlist,
        registration_opens_at=None, registration_closes_at=None, attestations=[], questions=[],
        max_companions=2, min_age=None, max_age=None, guardian_consent=False, reminder_offsets=[],
        process_id=None, signing_key=private, public_key=public, cancel_reason=None, created_at=NOW,
        updated_at=NOW,
    )  # fmt: skip


def person(n: int, **changes: Any) -> Applicant:
    a = Applicant(name=f"Person {n}", email=f"Person{n}@Example.org", phone=None, privacy_consent=True)
    for k, v in changes.items():
        setattr(a, k, v)
    return a


class FakeStore:
    """Meetings and registrations in memory; seats decided by the domain's rule, in arrival order."""

    def __init__(self, *meetings: Meeting) -> None:
        self.meetings = {m.id: m for m in meetings}
        self.registrations: dict[UUID, dict[str, Any]] = {}
        self.checkins: dict[UUID, dict[str, Any]] = {}
        self.locked: list[UUID] = []
        self.calls: list[dict[str, Any]] = []
        #: The last sequence number reserved per subject.
        self.sequences: dict[str, int] = {}

    def _active(self, meeting_id: UUID, status: str) -> list[dict[str, Any]]:
        return [r for r in self.registrations.values() if r["meeting_id"] == meeting_id and r["status"] == status]

    async def meeting(self, meeting_id: UUID, *, tenant: str | None = None) -> Meeting | None:
        m = self.meetings.get(meeting_id)
        return m if m is not None and tenant in (None, m.tenant) else None

    async def counts(self, meeting_id: UUID, slot_id: UUID | None = None, *, whole: bool = False) -> Counts:
        confirmed = sum(r["seats"] for r in self._active(meeting_id, "confirmed"))
        return Counts(confirmed, len(self._active(meeting_id, "waitlisted")))

    async def decide_and_register(
        self, meeting_id: UUID, claims: list[Claimed], subject: str, per_registration: int, per_batch: int
    ) -> list[dict[str, Any]]:
        rows = self._decide(meeting_id, [c.row["id"] for c in claims], [c.row["seats"] for c in claims],
                            [c.row["email"] for c in claims])  # fmt: skip
        stored = 0
        for claim, row in zip(claims, rows, strict=True):
            if row["outcome"] in ("confirmed", "waitlisted"):
                confirmed = row["outcome"] == "confirmed"
                self.registrations[claim.row["id"]] = {
                    **claim.row, "status": row["outcome"], "ticket_code": None,
                    "confirmed_at": claim.row["created_at"] if confirmed else None,
                    "seq": len(self.registrations) + 1, "cancelled_at": None, "cancelled_by": None,
                }  # fmt: skip
                stored += 1
        if stored:
            self.sequences[subject] = self.sequences.get(subject, 0) + stored * per_registration + per_batch
        return [row | {"last_sequence": self.sequences.get(subject) if stored else None} for row in rows]

    async def set_tickets(self, ids: list[UUID], codes: list[str]) -> None:
        for rid, code in zip(ids, codes, strict=True):
            self.registrations[rid]["ticket_code"] = code

    def _decide(self, meeting_id: UUID, ids: list[UUID], seats: list[int], emails: list[Any]) -> list[dict[str, Any]]:
        m = self.meetings[meeting_id]
        taken = sum(r["seats"] for r in self._active(meeting_id, "confirmed"))
        waiting = len(self._active(meeting_id, "waitlisted"))
        rows = []
        for rid, n, email in zip(ids, seats, emails, strict=True):
            row: dict[str, Any] = {"outcome": None, "registration_id": None, "wait_position": None, "left_seats": None}
            same = [r for r in self.registrations.values() if r["meeting_id"] == meeting_id and r["email"] == email]
            same = [r for r in same if r["status"] != "cancelled"]
            if same:
                row.update(outcome="existing", registration_id=same[0]["id"])
            else:
                status = domain.allocate(m.capacity, taken, n, waitlist=m.waitlist)
                row.update(outcome=status, left_seats=domain.seats_left(m.capacity, taken + n))
                if status == "confirmed":
                    taken += n
                    row.update(registration_id=rid, left_seats=domain.seats_left(m.capacity, taken))
                elif status == "waitlisted":
                    waiting += 1
                    row.update(registration_id=rid, wait_position=waiting)
                else:
                    row.update(left_seats=domain.seats_left(m.capacity, taken))
            rows.append(row | {"total_capacity": m.capacity, "total_confirmed": taken, "total_waitlisted": waiting})
        return rows

    async def registration(self, registration_id: UUID, *, tenant: str | None = None) -> dict[str, Any] | None:
        r = self.registrations.get(registration_id)
        return dict(r) if r is not None and tenant in (None, r["tenant"]) else None

    async def registration_by_secret(self, secret: str) -> dict[str, Any] | None:
        return next((dict(r) for r in self.registrations.values() if r["secret"] == secret), None)

    async def waitlist_position(self, reg: dict[str, Any]) -> int | None:
        if reg["status"] != "waitlisted":
            return None
        return sum(1 for r in self._active(reg["meeting_id"], "waitlisted") if r["seq"] <= reg["seq"])

    async def lock_meeting(self, meeting_id: UUID) -> None:
        self.locked.append(meeting_id)

    async def cancel_registration(self, registration_id: UUID, now: datetime, by: str) -> dict[str, Any]:
        self.registrations[registration_id].update(status="cancelled", cancelled_at=now, cancelled_by=by)
        return dict(self.registrations[registration_id])

    async def adjust(self, meeting_id: UUID, slot_id: UUID | None, seats: int, waiting: int) -> None:
        pass  # the fake counts its registrations

    async def waiting(self, meeting_id: UUID, slot_id: UUID | None) -> list[dict[str, Any]]:
        return sorted(self._active(meeting_id, "waitlisted"), key=lambda r: r["seq"])

    async def confirm(self, registration_id: UUID, now: datetime, ticket_code: str) -> dict[str, Any]:
        self.registrations[registration_id].update(status="confirmed", confirmed_at=now, ticket_code=ticket_code)
        return dict(self.registrations[registration_id])

    async def registrant_key(self, registration_id: UUID, tenant: str) -> bytes:
        return bytes(32)

    async def checkin_by_nonce(self, meeting_id: UUID, nonce: str) -> dict[str, Any] | None:
        return next((c for c in self.checkins.values() if c["meeting_id"] == meeting_id and c["nonce"] == nonce), None)

    async def other_meeting_by_prefix(self, tenant: str, prefix: str, not_id: UUID) -> dict[str, Any] | None:
        for m in self.meetings.values():
            if m.tenant == tenant and m.id != not_id and str(m.id).startswith(prefix):
                return {"id": m.id, "public_key": m.public_key}
        return None

    async def insert_checkin(
        self, checkin_id: UUID, tenant: str, meeting_id: UUID, registration_id: UUID, nonce: str, now: datetime
    ) -> bool:
        if registration_id in self.checkins:
            return False
        self.checkins[registration_id] = {
            "registration_id": registration_id, "meeting_id": meeting_id, "nonce": nonce, "checked_in_at": now
        }  # fmt: skip
        return True

    async def checkin_of(self, registration_id: UUID) -> dict[str, Any] | None:
        return self.checkins.get(registration_id)

    async def add_callbacks(
        self, tenant: str, meeting_id: UUID, registration_ids: list[UUID], reason: str, now: datetime
    ) -> None:
        for rid in registration_ids:
            if not any(
                c["registration_id"] == rid and c["reason"] == reason and c["done_at"] is None for c in self.calls
            ):
                self.calls.append({"registration_id": rid, "meeting_id": meeting_id, "reason": reason, "done_at": None})

    async def drop_open_callbacks(self, registration_ids: list[UUID]) -> None:
        self.calls = [c for c in self.calls if not (c["registration_id"] in registration_ids and c["done_at"] is None)]


class FakeUnits:
    """``UnitsOfWork`` over the fake store: one fake unit of work collects every transaction's events."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.pool = object()
        self.uow = FakeUnitOfWork(store, "registration")

    def __call__(self) -> FakeUnitOfWork[FakeStore]:
        return self.uow

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[FakeStore]:
        yield self.store

    def types(self) -> list[type]:
        return [type(p) for p in self.uow.payloads()]


async def register(units: FakeUnits, m: Meeting, a: Applicant, **kw: Any) -> registrations.Outcome:
    return await registrations.register(units, m.id, a, now=NOW, urls=URLS, **kw)  # type: ignore[arg-type]


async def test_register_confirms_while_seats_remain_with_its_events() -> None:
    m = meeting(capacity=2)
    units = FakeUnits(FakeStore(m))
    out = await register(units, m, person(1, companions=1))
    assert out.created and out.registration["status"] == "confirmed" and out.seats_left == 0
    assert out.registration["email"] == "person1@example.org"  # normalised once, in the use case
    assert units.types() == [RegistrationReceivedV1, RegistrationConfirmedV2, SeatsChangedV1]
    confirmed = units.uow.payloads()[1]
    assert confirmed.seats_left == 0 and confirmed.companions == 1
    assert {e.subject for e in units.uow.events} == {f"meeting/{m.id}"}
    assert units.uow.payloads()[-1].confirmed == 2


async def test_register_waitlists_when_full_and_refuses_without_a_waiting_list() -> None:
    m = meeting(capacity=1)
    units = FakeUnits(FakeStore(m))
    await register(units, m, person(1))
    out = await register(units, m, person(2))
    assert out.registration["status"] == "waitlisted" and out.position == 1
    assert units.types()[-2] is RegistrationWaitlistedV2

    closed = meeting(capacity=1, waitlist=False)
    units = FakeUnits(FakeStore(closed))
    await register(units, closed, person(1))
    events = len(units.uow.events)
    with pytest.raises(Conflict) as refused:
        await register(units, closed, person(2))
    assert refused.value.code == "meeting-full" and refused.value.extensions == {"seats_left": 0}
    assert len(units.uow.events) == events  # a refusal records nothing


async def test_the_same_person_again_gets_the_first_registration() -> None:
    m = meeting(capacity=5)
    units = FakeUnits(FakeStore(m))
    first = await register(units, m, person(1))
    events = len(units.uow.events)
    again = await register(units, m, person(1, email="  PERSON1@example.org "))
    assert not again.created and again.registration["id"] == first.registration["id"]
    assert len(units.uow.events) == events


async def test_register_refuses_before_deciding_a_seat() -> None:
    m = meeting()
    units = FakeUnits(FakeStore(m, meeting(status="draft")))
    with pytest.raises(Invalid) as bad:
        await register(units, m, person(1, privacy_consent=False, phone="not a number"))
    assert [f.pointer for f in bad.value.fields] == ["/phone", "/privacy_consent"]
    with pytest.raises(NotFound):
        await register(units, meeting(), person(1))
    draft = next(x for x in units.store.meetings.values() if x.status == "draft")
    with pytest.raises(NotFound):
        await register(units, draft, person(1))
    with pytest.raises(Invalid) as bad:
        await register(units, m, person(1, email=None))
    assert [f.pointer for f in bad.value.fields] == ["/email"]
    assert units.uow.events == []


async def test_cancel_frees_the_seat_and_promotes_the_first_waiting() -> None:
    m = meeting(capacity=1)
    store = FakeStore(m)
    units = FakeUnits(store)
    held = await register(units, m, person(1))
    waiting = [await register(units, m, person(n)) for n in (2, 3)]
    units.uow.events.clear()
    cancelled = await registrations.cancel(
        units(), by="citizen", secret=held.registration["secret"], now=NOW, urls=URLS
    )
    assert cancelled["status"] == "cancelled" and store.locked == [m.id]
    assert units.types() == [RegistrationCancelledV2, RegistrationPromotedV2, SeatsChangedV1]
    promoted = units.uow.payloads()[1]
    assert promoted.registration_id == waiting[0].registration["id"] and promoted.seats_left == 0
    assert store.registrations[waiting[1].registration["id"]]["status"] == "waitlisted"
    assert units.uow.payloads()[-1].confirmed == 1 and units.uow.payloads()[-1].waitlisted == 1

    again = await registrations.cancel(units(), by="citizen", secret=held.registration["secret"], now=NOW, urls=URLS)
    assert again["status"] == "cancelled" and len(units.uow.events) == 3  # cancelling twice changes nothing
    with pytest.raises(NotFound):
        await registrations.cancel(units(), by="citizen", secret="nobody", now=NOW, urls=URLS)


async def test_check_in_outcomes() -> None:
    m = meeting(capacity=1)
    store = FakeStore(m)
    units = FakeUnits(store)
    seat = (await register(units, m, person(1))).registration
    waiting = (await register(units, m, person(2))).registration
    at_door = datetime(2021, 10, 28, 15, 30, tzinfo=UTC)
    units.uow.events.clear()

    async def scan(code: str, nonce: str, when: datetime = at_door) -> dict[str, Any]:
        return await checkin.check_in(units(), m.tenant, m.id, code, nonce, now=when)

    done = await scan(seat["ticket_code"], "n1")
    assert done["repeat"] is False and done["registration_id"] == seat["id"]
    assert units.types() == [RegistrationCheckedInV1]
    assert (await scan(seat["ticket_code"], "n1"))["repeat"] is True  # the same scan again: no second event
    assert len(units.uow.events) == 1

    async def refusal(code: str, nonce: str, when: datetime = at_door) -> str:
        with pytest.raises(Conflict) as refused:
            await scan(code, nonce, when)
        return str(refused.value.extensions["reason"])

    assert await refusal(seat["ticket_code"], "n2") == "already_checked_in"
    assert await refusal("NOT-A-TICKET", "n3") == "invalid_signature"
    assert await refusal(seat["ticket_code"], "n4", at_door + timedelta(days=1)) == "invalid_time"
    other = meeting()
    forged = tickets.sign(other.signing_key, waiting["id"], m.id, date(2021, 10, 28))
    assert await refusal(forged, "n5") == "invalid_signature"
    unseated = tickets.sign(m.signing_key, waiting["id"], m.id, date(2021, 10, 28))
    assert await refusal(unseated, "n6") == "unknown"
    store.registrations[seat["id"]]["status"] = "cancelled"
    store.checkins.clear()
    assert await refusal(seat["ticket_code"], "n7") == "revoked"
    assert len(units.uow.events) == 1


def by_phone(n: int) -> Applicant:
    return person(n, email=None, phone="+494819712" + f"{n:02d}", channel="phone")


async def test_a_promoted_person_without_e_mail_goes_on_the_call_back_list() -> None:
    m = meeting(capacity=1)
    store = FakeStore(m)
    units = FakeUnits(store)
    held = (await register(units, m, person(1))).registration
    phoned = (await register(units, m, by_phone(2))).registration
    mailed = (await register(units, m, person(3))).registration
    assert phoned["status"] == "waitlisted" and store.calls == []  # waiting is no news to call about

    await registrations.cancel(units(), by="citizen", secret=held["secret"], now=NOW, urls=URLS)
    assert [(c["registration_id"], c["reason"]) for c in store.calls] == [(phoned["id"], "promoted")]
    # Cancelled before anyone called: the call has lost its point; the next one moved up has an address.
    await registrations.cancel(units(), by="staff", registration_id=phoned["id"], tenant=m.tenant, now=NOW, urls=URLS)
    assert store.calls == [] and store.registrations[mailed["id"]]["status"] == "confirmed"


async def test_promotion_by_hand_takes_a_free_seat_only_with_the_events_of_a_promotion() -> None:
    m = meeting(capacity=2)
    store = FakeStore(m)
    units = FakeUnits(store)
    first = (await register(units, m, person(1, companions=1))).registration
    group = (await register(units, m, person(2, companions=1))).registration
    single = (await register(units, m, by_phone(3))).registration
    with pytest.raises(Conflict) as full:
        await registrations.promote_by_hand(units(), m.tenant, single["id"], now=NOW, urls=URLS)
    assert full.value.code == "no-seat-free"
    with pytest.raises(Conflict) as seated:
        await registrations.promote_by_hand(units(), m.tenant, first["id"], now=NOW, urls=URLS)
    assert seated.value.code == "not-waitlisted"
    with pytest.raises(NotFound):
        await registrations.promote_by_hand(units(), "another-tenant", single["id"], now=NOW, urls=URLS)

    # One seat more (raised in the fake, without the promotion an edit would run): staff take the single person
    # ahead of the group of two, which needs two seats.
    m.capacity = 3
    units.uow.events.clear()
    promoted = await registrations.promote_by_hand(units(), m.tenant, single["id"], now=NOW, urls=URLS)
    assert promoted["status"] == "confirmed" and promoted["ticket_code"]
    assert units.types() == [RegistrationPromotedV2, SeatsChangedV1]
    assert store.registrations[group["id"]]["status"] == "waitlisted"
    assert [(c["registration_id"], c["reason"]) for c in store.calls] == [(single["id"], "promoted")]


def test_who_needs_a_call_and_which_edits_concern_attendees() -> None:
    assert domain.needs_call({"email": None, "phone": "+4948197120"})
    assert not domain.needs_call({"email": "a@example.org", "phone": "+4948197120"})
    assert not domain.needs_call({"email": None, "phone": None})
    before = meeting()
    assert domain.changed_for_attendees(before, replace(before, description="neu")) == set()
    assert domain.changed_for_attendees(before, replace(before, starts_at=before.starts_at + timedelta(hours=1))) == {
        None
    }
    assert domain.changed_for_attendees(before, replace(before, venue={"name": "Rathaus"})) == {None}
    assert domain.may_promote(None, 10, 5) and domain.may_promote(3, 1, 2) and not domain.may_promote(3, 2, 2)


async def test_attendance_counts_no_shows_only_once_the_meeting_started() -> None:
    m = meeting(capacity=5)
    store = FakeStore(m)
    units = FakeUnits(store)
    await register(units, m, person(1))

    async def figures(meeting_id: UUID) -> dict[str, Any]:
        return {"confirmed": 1, "confirmed_seats": 1, "waitlisted": 0, "cancelled": 0, "checked_in": 0,
                "checked_in_seats": 0}  # fmt: skip

    store.attendance = figures  # type: ignore[attr-defined]
    before = await checkin.attendance(units, m.tenant, m.id, now=m.starts_at - timedelta(minutes=1))  # type: ignore[arg-type]
    assert before["no_shows"] is None and before["attendance_rate"] is None
    after = await checkin.attendance(units, m.tenant, m.id, now=m.starts_at)  # type: ignore[arg-type]
    assert after["no_shows"] == 1 and after["attendance_rate"] == 0.0


async def test_check_in_answers_name_the_person_and_check_in_by_registration() -> None:
    m = meeting(capacity=2)
    store = FakeStore(m)
    units = FakeUnits(store)
    seat = (await register(units, m, person(1, companions=1))).registration
    at_door = datetime(2021, 10, 28, 15, 30, tzinfo=UTC)
    first = await checkin.check_in_registration(units(), m.tenant, m.id, seat["id"], "nonce-1", now=at_door)
    again = await checkin.check_in(units(), m.tenant, m.id, seat["ticket_code"], "nonce-1", now=at_door)
    assert first["repeat"] is False and again["repeat"] is True
    assert again["name"] == first["name"] == "Person 1" and again["companions"] == 1
    with pytest.raises(Conflict) as twice:
        await checkin.check_in(units(), m.tenant, m.id, seat["ticket_code"], "nonce-2", now=at_door)
    assert twice.value.extensions["reason"] == "already_checked_in"
    assert twice.value.extensions["registration_id"] == str(seat["id"]) and twice.value.extensions["name"] == "Person 1"
    with pytest.raises(Conflict) as unknown:
        await checkin.check_in_registration(units(), m.tenant, m.id, uuid4(), "nonce-3", now=at_door)
    assert unknown.value.extensions["reason"] == "unknown"
