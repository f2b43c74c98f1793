"""Registrations: register, cancel, promote the waiting list. Each write runs in one transaction with its events.

Seats are guarded by a transaction-scoped advisory lock per meeting (pretix's way): whoever counts the seats
and inserts holds the lock until commit, so two registrations can never both see the last seat. Staff changes
to a meeting (capacity, cancel) take the same lock.

``register`` takes the units of work (``Units``), not one unit of work: the seat queue groups the
registrations that arrive together into one transaction per batch (group commit), so which transaction a
registration lands in is decided here, not by the caller.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from services.registration import domain
from services.registration.domain import Applicant, Meeting
from services.registration.personal import sealed
from services.registration.store import MEETINGS, Claimed, Store
from services.registration.use_cases import callbacks
from services.registration.use_cases.common import (
    NOT_FOUND,
    Units,
    Urls,
    cancelled_event,
    contact_of,
    pending,
    seats_changed,
    seats_event,
    subject,
    ticket_for,
)
from shared.bus.outbox import Pending, Reserved
from shared.contracts.envelope import Payload
from shared.contracts.registration import (
    Contact,
    RegistrationConfirmedV2,
    RegistrationPromotedV2,
    RegistrationReceivedV1,
    RegistrationWaitlistedV2,
)
from shared.errors import Conflict, NotFound
from shared.logs import current_correlation_id
from shared.privacy import new_key
from shared.tracing import current_traceparent
from shared.unit_of_work import UnitOfWork

# --- register ----------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    registration: dict[str, Any]
    created: bool
    position: int | None = None
    seats_left: int | None = None


def not_published(status: str | None = None) -> Conflict:
    return Conflict(
        "meeting-not-published",
        "Meeting not open for registration",
        detail=f"the meeting is {status}" if status else None,
    )


async def register(
    uows: Units,
    meeting_id: UUID,
    applicant: Applicant,
    *,
    now: datetime,
    urls: Urls,
    tenant: str | None = None,
    ignore_window: bool = False,
) -> Outcome:
    """Register someone for a meeting: confirmed while seats remain, else waitlisted, else refused.

    The contact is checked and the meeting read and the request validated first; then the seat queue decides
    and writes it, with the registrations that arrived meanwhile, in one transaction (``decide_and_write``).
    """
    applicant = domain.contact_checked(applicant)
    meeting = await MEETINGS.get(uows, meeting_id)
    # From here on no connection is held: the seat queue takes its own.
    if meeting is not None and tenant is not None and meeting.tenant != tenant:
        meeting = None
    if meeting is None or (meeting.status == "draft" and tenant is None):
        raise NotFound(NOT_FOUND, detail="no such meeting")
    if meeting.status != "published":
        raise not_published(meeting.status)
    errors = domain.check_applicant(meeting, applicant)
    if errors:
        raise domain.invalid(errors)
    if not ignore_window:
        domain.check_window(meeting, now)
    claim = Claim(
        meeting=meeting,
        applicant=applicant,
        id=uuid4(),
        secret=secrets.token_urlsafe(24),
        now=now,
        urls=urls,
        correlation_id=current_correlation_id(),
        traceparent=current_traceparent(),
    )
    decision = await SEATS.take(uows, claim)
    outcome = decision.outcome
    if outcome == "not_published":
        raise not_published()
    if outcome == "unknown_slot":
        raise domain.invalid([domain.FieldError("/slot_id", "no such time slot", "unknown")])
    if outcome == "existing":
        assert decision.registration_id is not None
        async with uows.reading() as store:
            reg = await store.registration(decision.registration_id)
            assert reg is not None
            return Outcome(reg, False, await store.waitlist_position(reg))
    if outcome == "refused":
        raise Conflict(
            "meeting-full",
            "Meeting full",
            detail="all seats are taken and this meeting has no waiting list",
            seats_left=decision.seats_left,
        )
    reg = {
        **claim.row(outcome, decision.ticket_code),
        "cancelled_at": None, "cancelled_by": None, "erased_at": None, "anonymised_at": None,
    }  # fmt: skip
    return Outcome(reg, True, decision.position, decision.seats_left)


@dataclass
class Claim:
    """A validated registration on its way to a seat decision."""

    meeting: Meeting
    applicant: Applicant
    id: UUID
    secret: str
    now: datetime
    urls: Urls
    #: The request's: its events carry it, although a batch of several requests records them.
    correlation_id: str | None
    #: The registration's key in the keyring: its events' personal data is sealed under it.
    key: bytes = field(default_factory=new_key, repr=False)
    #: The request's trace (None unless traces are exported), carried the same way.
    traceparent: str | None = None

    @property
    def seats(self) -> int:
        return 1 + self.applicant.companions

    def row(self, status: str, ticket_code: str | None) -> dict[str, Any]:
        """The registration as stored once decided."""
        a = self.applicant
        confirmed = status == "confirmed"
        return {
            "id": self.id, "tenant": self.meeting.tenant, "meeting_id": self.meeting.id, "slot_id": a.slot_id,
            "secret": self.secret, "status": status, "seats": self.seats, "companions": a.companions,
            "channel": a.channel, "name": a.name, "email": a.email, "phone": a.phone, "locale": a.locale,
            "age": a.age, "guardian_consent": a.guardian_consent, "answers": a.answers,
            "attestations": a.attestations, "privacy_consent_at": self.now, "ticket_code": ticket_code,
            "created_at": self.now, "confirmed_at": self.now if confirmed else None,
            "accessibility_needs": a.accessibility_needs,
        }  # fmt: skip

    def events(self, decision: Decision) -> list[Payload]:
        a, m = self.applicant, self.meeting
        contact = Contact(name=a.name, email=a.email, phone=a.phone, locale=a.locale)
        url = self.urls.manage(self.secret)
        received = RegistrationReceivedV1(registration_id=self.id, meeting_id=m.id, channel=a.channel)
        if decision.outcome == "confirmed":
            assert decision.ticket_code is not None
            return [
                received,
                sealed(
                    RegistrationConfirmedV2,
                    self.key,
                    registration_id=self.id,
                    contact=contact,
                    ticket_code=decision.ticket_code,
                    manage_url=url,
                    meeting_id=m.id,
                    companions=a.companions,
                    seats_left=decision.seats_left,
                ),
            ]
        assert decision.position is not None
        return [
            received,
            sealed(
                RegistrationWaitlistedV2,
                self.key,
                registration_id=self.id,
                contact=contact,
                manage_url=url,
                meeting_id=m.id,
                position=decision.position,
            ),
        ]


@dataclass
class Decision:
    """What ``decide_seats`` made of a claim: confirmed, waitlisted, existing, refused, not_published or
    unknown_slot."""

    outcome: str
    registration_id: UUID | None = None
    position: int | None = None
    seats_left: int | None = None
    ticket_code: str | None = None


#: Events a stored registration records (received, then confirmed or waitlisted: ``Claim.events``), and a
#: batch that stored any (its seats-changed event): their sequence numbers are reserved with the decision.
EVENTS_PER_REGISTRATION = 2
EVENTS_PER_BATCH = 1


async def decide_and_write(uow: UnitOfWork[Store], claims: list[Claim]) -> list[Decision]:
    """Decide the seats of ``claims`` (all of one meeting, in order) and write what was decided, in one
    transaction: the registrations, two events each (received, then confirmed or waitlisted, with their real
    figures) and one seats-changed event for the batch.

    ``decide_seats`` takes the meeting's lock and counts; the lock is held until commit, so tickets are signed
    and events built only for what actually happened. Round trips while it is held: the decision, which also
    stores the registrations and reserves their events' numbers; the tickets, where the batch confirmed any
    (a signature costs about 50 µs: not one for each of a rush's waitlisted); and the events.
    """
    meeting = claims[0].meeting
    topic = subject(meeting.id)
    async with uow:
        rows = await uow.store.decide_and_register(
            meeting.id,
            [Claimed(c.row("confirmed", None), c.key) for c in claims],
            topic,
            EVENTS_PER_REGISTRATION,
            EVENTS_PER_BATCH,
        )
        decisions: list[Decision] = []
        events: list[Pending] = []
        seated: list[UUID] = []
        tickets: list[str] = []
        stored = 0  # what the statement stored and numbered events for
        for claim, row in zip(claims, rows, strict=True):
            d = Decision(row["outcome"], row["registration_id"], row["wait_position"], row["left_seats"])
            decisions.append(d)
            if d.outcome not in ("confirmed", "waitlisted"):
                continue
            stored += 1
            if d.outcome == "confirmed":
                d.ticket_code = ticket_for(meeting, claim.id, claim.applicant.slot_id)
                seated.append(claim.id)
                tickets.append(d.ticket_code)
            events += [
                Pending(e, meeting.tenant, topic, correlation_id=claim.correlation_id, traceparent=claim.traceparent)
                for e in claim.events(d)
            ]
        if seated:
            await uow.store.set_tickets(seated, tickets)
        if events:
            # Counted under the lock, capacity included (the cached meeting may be a moment behind an edit).
            last = rows[-1]
            changed = seats_changed(
                meeting.id, last["total_capacity"], last["total_confirmed"], last["total_waitlisted"]
            )
            # The batch's: it carries its last request's correlation and trace.
            events.append(
                Pending(
                    changed,
                    meeting.tenant,
                    topic,
                    correlation_id=events[-1].correlation_id,
                    traceparent=events[-1].traceparent,
                )
            )
            # What the statement reserved, by its decisions; the outbox checks the events are as many.
            count = stored * EVENTS_PER_REGISTRATION + EVENTS_PER_BATCH
            await uow.write(events, reserved={topic: Reserved(last["last_sequence"], count)})
    return decisions


class SeatQueue:
    """Group commit per meeting: registrations that arrive while the meeting's last transaction commits wait
    here and go together into the next one (one lock, one WAL flush). A lone registration goes at once. If a
    batch fails, its items are tried one by one so one bad item fails only itself."""

    BATCH = 100

    def __init__(self) -> None:
        self._pending: dict[tuple[int, UUID], list[tuple[Claim, asyncio.Future[Decision]]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def take(self, uows: Units, claim: Claim) -> Decision:
        key = (id(uows.pool), claim.meeting.id)
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        queue = self._pending.get(key)
        if queue is None:
            self._pending[key] = [(claim, future)]
            task = asyncio.create_task(self._drain(uows, key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            queue.append((claim, future))
        return await future

    async def _drain(self, uows: Units, key: tuple[int, UUID]) -> None:
        try:
            while self._pending.get(key):
                queue = self._pending[key]
                batch, queue[:] = queue[: self.BATCH], queue[self.BATCH :]
                await self._run(uows, batch)
        finally:
            self._pending.pop(key, None)

    async def _run(self, uows: Units, batch: list[tuple[Claim, asyncio.Future[Decision]]]) -> None:
        try:
            decisions = await decide_and_write(uows(), [claim for claim, _ in batch])
            for (_, future), decision in zip(batch, decisions, strict=True):
                if not future.done():
                    future.set_result(decision)
        except Exception as exc:
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(exc)
                return
            for one in batch:
                await self._run(uows, [one])


SEATS = SeatQueue()


# --- cancel and promote ------------------------------------------------------------------------------------------


async def _confirm_waiting(
    store: Store, meeting: Meeting, rid: UUID, slot_id: UUID | None, *, taken: int, now: datetime, urls: Urls
) -> tuple[dict[str, Any], Payload]:
    """One waiting registration given its seats (``taken``: the pool's confirmed seats before): the registration
    and its promoted event. The caller holds the meeting's lock and adjusts the counters."""
    code = ticket_for(meeting, rid, slot_id)
    reg = await store.confirm(rid, now, code)
    capacity = meeting.capacity_of(slot_id)
    event = sealed(
        RegistrationPromotedV2,
        await store.registrant_key(rid, meeting.tenant),
        registration_id=rid,
        contact=contact_of(reg),
        ticket_code=code,
        manage_url=urls.manage(reg["secret"]),
        meeting_id=meeting.id,
        seats_left=domain.seats_left(capacity, taken + reg["seats"]),
    )
    return reg, event


async def promote(store: Store, meeting: Meeting, slot_id: UUID | None, *, now: datetime, urls: Urls) -> list[Payload]:
    """Move waiting people up, first in first out, while seats remain (caller holds the meeting lock); those
    nobody can mail go on the call-back list."""
    if meeting.status != "published":
        return []
    capacity = meeting.capacity_of(slot_id)
    c = await store.counts(meeting.id, slot_id)
    waiting = await store.waiting(meeting.id, slot_id)
    chosen = domain.promotable(capacity, c.confirmed_seats, [domain.Waiting(r["id"], r["seats"]) for r in waiting])
    events: list[Payload] = []
    promoted: list[dict[str, Any]] = []
    taken = c.confirmed_seats
    for rid in chosen:
        reg, event = await _confirm_waiting(store, meeting, rid, slot_id, taken=taken, now=now, urls=urls)
        taken += reg["seats"]
        promoted.append(reg)
        events.append(event)
    if chosen:
        await store.adjust(meeting.id, slot_id, taken - c.confirmed_seats, -len(chosen))
        await callbacks.call(store, meeting, promoted, "promoted", now)
    return events


async def promote_by_hand(
    uow: UnitOfWork[Store], tenant: str, registration_id: UUID, *, now: datetime, urls: Urls
) -> dict[str, Any]:
    """Staff move one waiting registration up, whatever its place, into seats that are free: the same events as
    an automatic promotion (and a call to make when nobody can mail the person)."""
    async with uow:
        store = uow.store
        found = await store.registration(registration_id, tenant=tenant)
        if found is None:
            raise NotFound(NOT_FOUND, detail="no such registration")
        await store.lock_meeting(found["meeting_id"])
        reg = await store.registration(found["id"])
        meeting = await store.meeting(found["meeting_id"])
        assert reg is not None and meeting is not None
        if reg["status"] != "waitlisted":
            raise Conflict("not-waitlisted", "Not on the waiting list", detail=f"the registration is {reg['status']}")
        if meeting.status != "published":
            raise not_published(meeting.status)
        slot_id = reg["slot_id"]
        c = await store.counts(meeting.id, slot_id)
        capacity = meeting.capacity_of(slot_id)
        if not domain.may_promote(capacity, c.confirmed_seats, reg["seats"]):
            raise Conflict(
                "no-seat-free",
                "No seat free",
                detail=f"the registration needs {reg['seats']} seats",
                seats_left=domain.seats_left(capacity, c.confirmed_seats),
            )
        promoted, event = await _confirm_waiting(
            store, meeting, reg["id"], slot_id, taken=c.confirmed_seats, now=now, urls=urls
        )
        await store.adjust(meeting.id, slot_id, reg["seats"], -1)
        await callbacks.call(store, meeting, [promoted], "promoted", now)
        await uow.write(pending(meeting, [event, await seats_event(store, meeting)]))
        return promoted


async def cancel(
    uow: UnitOfWork[Store],
    *,
    by: domain.CancelledBy,
    now: datetime,
    urls: Urls,
    secret: str | None = None,
    registration_id: UUID | None = None,
    tenant: str | None = None,
) -> dict[str, Any]:
    """Cancel one registration (by the citizen's secret or by staff), free its seats, promote the waiting list."""
    async with uow:
        store = uow.store
        if secret is not None:
            found = await store.registration_by_secret(secret)
        else:
            assert registration_id is not None
            found = await store.registration(registration_id, tenant=tenant)
        if found is None:
            raise NotFound(NOT_FOUND, detail="no such registration")
        await store.lock_meeting(found["meeting_id"])
        reg = await store.registration(found["id"])
        assert reg is not None
        if reg["status"] == "cancelled":
            return reg
        meeting = await store.meeting(reg["meeting_id"])
        assert meeting is not None
        cancelled = await store.cancel_registration(reg["id"], now, by)
        # A call not made yet (say, that the person moved up) has lost its point.
        await store.drop_open_callbacks([reg["id"]])
        if reg["status"] == "confirmed":
            await store.adjust(meeting.id, reg["slot_id"], -reg["seats"], 0)
        else:
            await store.adjust(meeting.id, reg["slot_id"], 0, -1)
        promoted = await promote(store, meeting, reg["slot_id"], now=now, urls=urls)
        c = await store.counts(meeting.id, reg["slot_id"])
        events: list[Payload] = [
            await cancelled_event(
                store, reg, by, domain.seats_left(meeting.capacity_of(reg["slot_id"]), c.confirmed_seats)
            ),
            *promoted,
            await seats_event(store, meeting),
        ]
        await uow.write(pending(meeting, events))
        return cancelled


# --- queries -----------------------------------------------------------------------------------------------------


async def own_registration(uows: Units, secret: str) -> tuple[dict[str, Any], int | None, Meeting]:
    """A registration by its secret, with its place on the waiting list and its meeting."""
    async with uows.reading() as store:
        reg = await store.registration_by_secret(secret)
        if reg is None:
            raise NotFound(NOT_FOUND, detail="no such registration")
        position = await store.waitlist_position(reg)
        m = await store.meeting(reg["meeting_id"])
        assert m is not None
        return reg, position, m


async def registrations_of(
    uows: Units, tenant: str, meeting_id: UUID, *, name: str | None = None
) -> list[tuple[dict[str, Any], int | None]]:
    """A meeting's registrations (staff), each with its place on the waiting list and its check-in time;
    ``name``: only those whose name contains it (case ignored)."""
    async with uows.reading() as store:
        if await store.meeting(meeting_id, tenant=tenant) is None:
            raise NotFound(NOT_FOUND, detail="no such meeting")
        found = await store.registrations_of(meeting_id, tenant, name=name)
        return [(reg, await store.waitlist_position(reg)) for reg in found]


async def staff_registration(uows: Units, tenant: str, registration_id: UUID) -> tuple[dict[str, Any], int | None]:
    """One of the tenant's registrations with its place on the waiting list and its check-in time."""
    async with uows.reading() as store:
        reg = await store.registration_with_checkin(registration_id, tenant)
        if reg is None:
            raise NotFound(NOT_FOUND, detail="no such registration")
        return reg, await store.waitlist_position(reg)
