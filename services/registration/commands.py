"""Commands that change registrations: register, cancel, promote. Each runs in one transaction with its events.

Seats are guarded by a transaction-scoped advisory lock per meeting (pretix's way): whoever counts the seats
and inserts holds the lock until commit, so two registrations can never both see the last seat. Staff changes
to a meeting (capacity, cancel) take the same lock.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID, uuid4

import asyncpg
import orjson

from services.registration import domain, store, tickets
from services.registration import events as meeting_events
from services.registration.store import Meeting
from shared.bus.outbox import notify_channel
from shared.contracts.envelope import Payload
from shared.contracts.registration import (
    Contact,
    RegistrationCancelledV1,
    RegistrationConfirmedV1,
    RegistrationPromotedV1,
    RegistrationReceivedV1,
    RegistrationWaitlistedV1,
    SeatsChangedV1,
)
from shared.db import Conn
from shared.http.problems import Problem
from shared.service import ServiceContext

Channel = Literal["online", "email", "phone", "in_person"]
CancelledBy = Literal["citizen", "staff", "meeting_cancelled"]

#: A wait for the meeting's lock longer than this becomes a clean 503 rather than a hung request.
LOCK_TIMEOUT = "5s"


async def lock_meeting(conn: Conn, meeting_id: UUID) -> None:
    if not conn.is_in_transaction():
        raise RuntimeError("the meeting lock is transaction-scoped; take it inside a transaction")
    try:
        # One round trip: the timeout is set (for this transaction) before the lock is waited for.
        await conn.execute(
            "select set_config('lock_timeout', $2, true), pg_advisory_xact_lock(hashtextextended($1, 0))",
            f"registration/meeting/{meeting_id}",
            LOCK_TIMEOUT,
        )
    except asyncpg.LockNotAvailableError:
        raise Problem(
            503, "Busy", type_="busy", detail="too many registrations at once; try again", headers={"Retry-After": "1"}
        ) from None


def manage_url(ctx: ServiceContext, secret: str) -> str:
    return f"{ctx.settings.public_base_url.rstrip('/')}/api/registration/registrations/{secret}"


def contact_of(reg: dict[str, Any]) -> Contact:
    return Contact(name=reg["name"] or "", email=reg["email"], phone=reg["phone"], locale=reg["locale"])


def ticket_for(meeting: Meeting, registration_id: UUID, slot_id: UUID | None) -> str:
    slot = meeting.slot(slot_id)
    day = domain.local_day(slot.starts_at if slot else meeting.starts_at)
    return tickets.sign(meeting.signing_key, registration_id, meeting.id, day)


async def seats_event(conn: Conn, meeting: Meeting, pending: tuple[int, int] = (0, 0)) -> SeatsChangedV1:
    """Seat figures of the whole meeting; ``pending`` adds seats and waiting people not yet written."""
    whole = await store.counts(conn, meeting.id, whole=True)
    capacity = meeting_capacity(meeting)
    seats, waiting = whole.confirmed_seats + pending[0], whole.waitlisted + pending[1]
    return SeatsChangedV1(
        meeting_id=meeting.id,
        capacity=capacity,
        confirmed=seats,
        waitlisted=waiting,
        seats_left=domain.seats_left(capacity, seats),
    )


def meeting_capacity(meeting: Meeting) -> int | None:
    """The meeting's capacity; for a series of slots the sum of theirs (unlimited if any slot is)."""
    if not meeting.slots:
        return meeting.capacity
    caps = [s.capacity for s in meeting.slots]
    return None if any(c is None for c in caps) else sum(c for c in caps if c is not None)


async def record(ctx: ServiceContext, conn: Conn, meeting: Meeting, events: list[Payload]) -> None:
    await meeting_events.record(conn, ctx.outbox, meeting.tenant, f"meeting/{meeting.id}", events)


# --- register ----------------------------------------------------------------------------------------------------


@dataclass
class Applicant:
    """A registration as submitted, contact details already normalised."""

    name: str
    email: str | None
    phone: str | None
    privacy_consent: bool
    companions: int = 0
    answers: dict[str, Any] = field(default_factory=dict)
    attestations: list[str] = field(default_factory=list)
    slot_id: UUID | None = None
    age: int | None = None
    guardian_consent: bool = False
    locale: str = "de"
    channel: Channel = "online"


@dataclass
class Outcome:
    registration: dict[str, Any]
    created: bool
    position: int | None = None
    seats_left: int | None = None


def check_applicant(meeting: Meeting, a: Applicant) -> list[domain.FieldError]:
    errors: list[domain.FieldError] = []
    if not a.email and not a.phone:
        errors.append(domain.FieldError("/email", "give an e-mail address or a phone number", "missing"))
    if not a.privacy_consent:
        errors.append(domain.FieldError("/privacy_consent", "consent to the privacy notice is required", "missing"))
    if a.companions > meeting.max_companions:
        errors.append(
            domain.FieldError("/companions", f"at most {meeting.max_companions} companions allowed", "too_many")
        )
    required = {att["id"] for att in meeting.attestations}
    missing = sorted(required - set(a.attestations))
    if missing:
        errors.append(domain.FieldError("/attestations", f"please confirm {missing}", "missing"))
    unknown = sorted(set(a.attestations) - required)
    if unknown:
        errors.append(domain.FieldError("/attestations", f"unknown attestations {unknown}", "unknown"))
    if meeting.slots:
        if a.slot_id is None:
            errors.append(domain.FieldError("/slot_id", "choose a time slot", "missing"))
        elif meeting.slot(a.slot_id) is None:
            errors.append(domain.FieldError("/slot_id", "no such time slot", "unknown"))
    elif a.slot_id is not None:
        errors.append(domain.FieldError("/slot_id", "this meeting has no time slots", "unexpected"))
    errors += domain.check_answers(meeting.question_rules(), a.answers)
    errors += domain.check_age(a.age, meeting.min_age, meeting.max_age, meeting.guardian_consent, a.guardian_consent)
    return errors


def invalid(errors: list[domain.FieldError]) -> Problem:
    return Problem(
        422,
        "Invalid request",
        type_="validation",
        detail="Some fields are missing or invalid.",
        errors=[e.as_problem_entry() for e in errors],
    )


def check_window(meeting: Meeting, now: datetime) -> None:
    state = domain.window_state(now, meeting.registration_opens_at, meeting.closes_at)
    if state == "open":
        return
    # Berlin wall-clock times: what the citizen reads on the meeting's page.
    opens_at = meeting.registration_opens_at
    opens = opens_at.astimezone(domain.BERLIN).isoformat() if opens_at else None
    closes = meeting.closes_at.astimezone(domain.BERLIN).isoformat()
    raise Problem(
        409,
        "Registration closed" if state == "closed" else "Registration not yet open",
        type_="registration-window",
        detail=f"registration is open from {opens or 'publication'} until {closes}",
        window={"opens_at": opens, "closes_at": closes},
        state=state,
    )


async def register(
    ctx: ServiceContext,
    meeting_id: UUID,
    applicant: Applicant,
    *,
    tenant: str | None = None,
    ignore_window: bool = False,
    lock: bool = True,
    race_delay: float = 0.0,
) -> Outcome:
    """Register someone for a meeting: confirmed while seats remain, else waitlisted, else refused.

    The meeting is read and the request validated first; then one call of ``register_seat`` (its own
    transaction) takes the meeting's lock, finds the person's existing registration or decides on the seat, and
    writes counters, registration and events. ``lock=False`` (with ``race_delay`` widening the gap between
    counting and inserting) exists only so the concurrency test can prove it sees the race the lock prevents.
    """
    now = ctx.clock.now()
    async with ctx.pool.acquire() as conn:
        meeting = await store.MEETINGS.get(conn, meeting_id)
    # From here on no connection is held: the seat queue takes its own.
    if meeting is not None and tenant is not None and meeting.tenant != tenant:
        meeting = None
    if meeting is None or (meeting.status == "draft" and tenant is None):
        raise Problem(404, "Not found", detail="no such meeting")
    if meeting.status != "published":
        raise Problem(
            409,
            "Meeting not open for registration",
            type_="meeting-not-published",
            detail=f"the meeting is {meeting.status}",
        )
    errors = check_applicant(meeting, applicant)
    if errors:
        raise invalid(errors)
    if not ignore_window:
        check_window(meeting, now)
    rid = uuid4()
    secret = secrets.token_urlsafe(24)
    seats = 1 + applicant.companions
    # Signing is cheap and needs no lock: a code for the case that a seat is free.
    code = ticket_for(meeting, rid, applicant.slot_id)
    url = manage_url(ctx, secret)
    contact = Contact(name=applicant.name, email=applicant.email, phone=applicant.phone, locale=applicant.locale)
    received = _item(
        ctx, meeting, RegistrationReceivedV1(registration_id=rid, meeting_id=meeting.id, channel=applicant.channel)
    )
    # Figures only the locked state knows (seats left, position, counts) are filled in by the function.
    seats_changed = _item(
        ctx,
        meeting,
        SeatsChangedV1(meeting_id=meeting.id, capacity=None, confirmed=0, waitlisted=0, seats_left=None),
    )
    if_confirmed = [
        received,
        _item(
            ctx,
            meeting,
            RegistrationConfirmedV1(
                registration_id=rid,
                meeting_id=meeting.id,
                contact=contact,
                companions=applicant.companions,
                ticket_code=code,
                manage_url=url,
            ),
        ),
        seats_changed,
    ]
    if_waitlisted = [
        received,
        _item(
            ctx,
            meeting,
            RegistrationWaitlistedV1(
                registration_id=rid,
                meeting_id=meeting.id,
                contact=contact,
                position=1,
                manage_url=url,
            ),
        ),
        seats_changed,
    ]
    row: Any
    item = {
        "meeting": str(meeting.id), "slot": str(applicant.slot_id) if applicant.slot_id else None,
        "id": str(rid), "tenant": meeting.tenant, "secret": secret, "seats": seats,
        "companions": applicant.companions, "channel": applicant.channel, "name": applicant.name,
        "email": applicant.email, "phone": applicant.phone, "locale": applicant.locale, "age": applicant.age,
        "guardian": applicant.guardian_consent, "answers": applicant.answers,
        "attestations": applicant.attestations, "now": now.isoformat(), "ticket": code,
        "if_confirmed": if_confirmed, "if_waitlisted": if_waitlisted, "subject": f"meeting/{meeting.id}",
        "notify": notify_channel(ctx.outbox.service),
    }  # fmt: skip
    try:
        if lock:
            row = await SEATS.take(ctx, meeting.id, item)
        else:
            row = await _take_unlocked(ctx, item, race_delay)
    except asyncpg.LockNotAvailableError:
        raise Problem(
            503, "Busy", type_="busy", detail="too many registrations at once; try again",
            headers={"Retry-After": "1"},
        ) from None  # fmt: skip
    except asyncpg.UniqueViolationError:
        # The same person twice at the same moment without the lock (only the control run): the index
        # kept the second seat out; answer with the first registration.
        existing = await ctx.pool.fetchval(
            "select id from registrations where meeting_id = $1 and status <> 'cancelled' "
            "and (email = $2 or phone = $3) order by seq limit 1", meeting.id, applicant.email, applicant.phone
        )  # fmt: skip
        row = {"outcome": "existing", "registration_id": existing}
    assert row is not None
    outcome = row["outcome"]
    if outcome == "not_published":
        raise Problem(409, "Meeting not open for registration", type_="meeting-not-published")
    if outcome == "unknown_slot":
        raise invalid([domain.FieldError("/slot_id", "no such time slot", "unknown")])
    if outcome == "existing":
        async with ctx.pool.acquire() as conn:
            reg = await store.registration(conn, row["registration_id"])
            assert reg is not None
            return Outcome(reg, False, await store.waitlist_position(conn, reg))
    if outcome == "refused":
        raise Problem(
            409,
            "Meeting full",
            type_="meeting-full",
            detail="all seats are taken and this meeting has no waiting list",
            seats_left=row["left_seats"],
        )
    confirmed = outcome == "confirmed"
    reg = {
        "id": rid, "tenant": meeting.tenant, "meeting_id": meeting.id, "slot_id": applicant.slot_id,
        "secret": secret, "status": outcome, "seats": seats, "companions": applicant.companions,
        "channel": applicant.channel, "name": applicant.name, "email": applicant.email,
        "phone": applicant.phone, "locale": applicant.locale, "age": applicant.age,
        "guardian_consent": applicant.guardian_consent, "answers": applicant.answers,
        "attestations": applicant.attestations, "ticket_code": code if confirmed else None,
        "created_at": now, "confirmed_at": now if confirmed else None, "cancelled_at": None,
        "cancelled_by": None, "erased_at": None, "anonymised_at": None,
    }  # fmt: skip
    return Outcome(reg, True, row["wait_position"], row["left_seats"])


def _item(ctx: ServiceContext, meeting: Meeting, payload: Payload) -> dict[str, Any]:
    """An event for ``register_seat``: its envelope (sequence number 1 as a placeholder) and routing."""
    env = ctx.outbox.envelope(payload, tenant=meeting.tenant, subject=f"meeting/{meeting.id}", sequence=1)
    return {
        "id": str(env.id),
        "type": env.type,
        "stream": ctx.outbox.registry.get(env.type).stream,
        "envelope": env.model_dump(mode="json"),
    }


async def _take_unlocked(ctx: ServiceContext, item: dict[str, Any], race_delay: float) -> Any:
    """The control run's path: the same decision without the lock (and with a widened race window)."""
    i = item
    async with ctx.pool.acquire() as conn:
        return await conn.fetchrow(
            "select * from register_seat($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
            "$15::jsonb, $16::jsonb, $17, $18, $19::jsonb, $20::jsonb, $21, $22, false, $23)",
            UUID(i["meeting"]), UUID(i["slot"]) if i["slot"] else None, UUID(i["id"]), i["tenant"], i["secret"],
            i["seats"], i["companions"], i["channel"], i["name"], i["email"], i["phone"], i["locale"], i["age"],
            i["guardian"], json.dumps(i["answers"]), json.dumps(i["attestations"]),
            datetime.fromisoformat(i["now"]), i["ticket"], json.dumps(i["if_confirmed"]),
            json.dumps(i["if_waitlisted"]), i["subject"], i["notify"], race_delay,
        )  # fmt: skip


class SeatQueue:
    """Group commit per meeting: registrations that arrive while the meeting's last transaction commits wait
    here and go together into the next one (``register_seats``, one lock, one WAL flush). A lone registration
    goes at once. If a batch fails, its items are tried one by one so one bad item fails only itself."""

    BATCH = 100

    def __init__(self) -> None:
        self._pending: dict[tuple[int, UUID], list[tuple[dict[str, Any], asyncio.Future[Any]]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def take(self, ctx: ServiceContext, meeting_id: UUID, item: dict[str, Any]) -> Any:
        key = (id(ctx.pool), meeting_id)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        queue = self._pending.get(key)
        if queue is None:
            self._pending[key] = [(item, future)]
            task = asyncio.create_task(self._drain(ctx, key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            queue.append((item, future))
        return await future

    async def _drain(self, ctx: ServiceContext, key: tuple[int, UUID]) -> None:
        try:
            while self._pending.get(key):
                queue = self._pending[key]
                batch, queue[:] = queue[: self.BATCH], queue[self.BATCH :]
                await self._run(ctx, batch)
        finally:
            self._pending.pop(key, None)

    async def _run(self, ctx: ServiceContext, batch: list[tuple[dict[str, Any], asyncio.Future[Any]]]) -> None:
        try:
            async with ctx.pool.acquire() as conn:
                rows = await conn.fetch(
                    "select * from register_seats($1::jsonb)", orjson.dumps([i for i, _ in batch]).decode()
                )
            by_ord = {r["ord"]: r for r in rows}
            for n, (_, future) in enumerate(batch, start=1):
                if not future.done():
                    future.set_result(by_ord[n])
        except Exception as exc:
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(exc)
                return
            for one in batch:
                await self._run(ctx, [one])


SEATS = SeatQueue()


# --- cancel and promote ------------------------------------------------------------------------------------------


async def promote(ctx: ServiceContext, conn: Conn, meeting: Meeting, slot_id: UUID | None) -> list[Payload]:
    """Move waiting people up, first in first out, while seats remain (caller holds the meeting lock)."""
    if meeting.status != "published":
        return []
    capacity = meeting.capacity_of(slot_id)
    c = await store.counts(conn, meeting.id, slot_id)
    waiting = await conn.fetch(
        "select id, seats from registrations where meeting_id = $1 and slot_id is not distinct from $2 "
        "and status = 'waitlisted' order by seq",
        meeting.id,
        slot_id,
    )
    chosen = domain.promotable(capacity, c.confirmed_seats, [domain.Waiting(r["id"], r["seats"]) for r in waiting])
    events: list[Payload] = []
    taken = c.confirmed_seats
    now = ctx.clock.now()
    seats_moved = 0
    for rid in chosen:
        code = ticket_for(meeting, rid, slot_id)
        row = await conn.fetchrow(
            "update registrations set status = 'confirmed', confirmed_at = $2, ticket_code = $3 where id = $1 "
            f"returning {store.REGISTRATION_COLUMNS}",
            rid,
            now,
            code,
        )
        reg = store.registration_dict(row)
        taken += reg["seats"]
        seats_moved += reg["seats"]
        events.append(
            RegistrationPromotedV1(
                registration_id=rid,
                meeting_id=meeting.id,
                contact=contact_of(reg),
                ticket_code=code,
                manage_url=manage_url(ctx, reg["secret"]),
                seats_left=domain.seats_left(capacity, taken),
            )
        )
    if chosen:
        await store.adjust(conn, meeting.id, slot_id, seats_moved, -len(chosen))
    return events


async def cancel(
    ctx: ServiceContext,
    *,
    by: CancelledBy,
    secret: str | None = None,
    registration_id: UUID | None = None,
    tenant: str | None = None,
) -> dict[str, Any]:
    """Cancel one registration (by the citizen's secret or by staff), free its seats, promote the waiting list."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        if secret is not None:
            found = await store.registration_by_secret(conn, secret)
        else:
            assert registration_id is not None
            found = await store.registration(conn, registration_id, tenant=tenant)
        if found is None:
            raise Problem(404, "Not found", detail="no such registration")
        await lock_meeting(conn, found["meeting_id"])
        reg = await store.registration(conn, found["id"])
        assert reg is not None
        if reg["status"] == "cancelled":
            return reg
        meeting = await store.meeting(conn, reg["meeting_id"])
        assert meeting is not None
        now = ctx.clock.now()
        row = await conn.fetchrow(
            "update registrations set status = 'cancelled', cancelled_at = $2, cancelled_by = $3 where id = $1 "
            f"returning {store.REGISTRATION_COLUMNS}",
            reg["id"],
            now,
            by,
        )
        cancelled = store.registration_dict(row)
        if reg["status"] == "confirmed":
            await store.adjust(conn, meeting.id, reg["slot_id"], -reg["seats"], 0)
        else:
            await store.adjust(conn, meeting.id, reg["slot_id"], 0, -1)
        promoted = await promote(ctx, conn, meeting, reg["slot_id"])
        c = await store.counts(conn, meeting.id, reg["slot_id"])
        events: list[Payload] = [
            RegistrationCancelledV1(
                registration_id=reg["id"],
                meeting_id=meeting.id,
                contact=contact_of(reg) if reg["name"] or reg["email"] or reg["phone"] else None,
                cancelled_by=by,
                seats_left=domain.seats_left(meeting.capacity_of(reg["slot_id"]), c.confirmed_seats),
            ),
            *promoted,
            await seats_event(conn, meeting),
        ]
        await record(ctx, conn, meeting, events)
        return cancelled
