"""Commands that change registrations: register, cancel, promote. Each runs in one transaction with its events.

Seats are guarded by a transaction-scoped advisory lock per meeting (pretix's way): whoever counts the seats
and inserts holds the lock until commit, so two registrations can never both see the last seat. Staff changes
to a meeting (capacity, cancel) take the same lock.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID, uuid4

import asyncpg
import orjson

from services.registration import domain, store, tickets
from services.registration import events as meeting_events
from services.registration.personal import registrant_key, sealed
from services.registration.store import Meeting
from shared.contracts.envelope import Payload
from shared.contracts.registration import (
    Contact,
    RegistrationCancelledV2,
    RegistrationConfirmedV2,
    RegistrationPromotedV2,
    RegistrationReceivedV1,
    RegistrationWaitlistedV2,
    SeatsChangedV1,
)
from shared.db import Conn
from shared.http.problems import Problem
from shared.links import link
from shared.logs import current_correlation_id
from shared.privacy import new_key
from shared.service import ServiceContext
from shared.tracing import current_traceparent

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
    return link(ctx.settings.links, ctx.settings.public_base_url, "manage", secret=secret)


def contact_of(reg: dict[str, Any]) -> Contact:
    return Contact(name=reg["name"] or "", email=reg["email"], phone=reg["phone"], locale=reg["locale"])


def ticket_for(meeting: Meeting, registration_id: UUID, slot_id: UUID | None) -> str:
    slot = meeting.slot(slot_id)
    day = domain.local_day(slot.starts_at if slot else meeting.starts_at)
    return tickets.sign(meeting.signing_key, registration_id, meeting.id, day)


async def seats_event(conn: Conn, meeting: Meeting) -> SeatsChangedV1:
    """Seat figures of the whole meeting, as counted now."""
    whole = await store.counts(conn, meeting.id, whole=True)
    return seats_changed(meeting.id, meeting_capacity(meeting), whole.confirmed_seats, whole.waitlisted)


def seats_changed(meeting_id: UUID, capacity: int | None, confirmed: int, waitlisted: int) -> SeatsChangedV1:
    return SeatsChangedV1(
        meeting_id=meeting_id,
        capacity=capacity,
        confirmed=confirmed,
        waitlisted=waitlisted,
        seats_left=domain.seats_left(capacity, confirmed),
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
    accessibility_needs: str | None = None


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

    The meeting is read and the request validated first; then the seat queue decides and writes it, with the
    registrations that arrived meanwhile, in one transaction (``decide_and_write``). ``lock=False`` (with
    ``race_delay`` widening the gap between counting and inserting) exists only so the concurrency test can
    prove it sees the race the lock prevents.
    """
    now = ctx.clock.now()
    meeting = await store.MEETINGS.get(ctx.pool, meeting_id)
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
    claim = Claim(
        meeting=meeting,
        applicant=applicant,
        id=uuid4(),
        secret=secrets.token_urlsafe(24),
        now=now,
        correlation_id=current_correlation_id(),
        traceparent=current_traceparent(),
    )
    try:
        if lock:
            decision = await SEATS.take(ctx, claim)
        else:
            decision = (await decide_and_write(ctx, [claim], lock=False, delay=race_delay))[0]
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
        decision = Decision("existing", existing)
    outcome = decision.outcome
    if outcome == "not_published":
        raise Problem(409, "Meeting not open for registration", type_="meeting-not-published")
    if outcome == "unknown_slot":
        raise invalid([domain.FieldError("/slot_id", "no such time slot", "unknown")])
    if outcome == "existing":
        assert decision.registration_id is not None
        async with ctx.pool.acquire() as conn:
            reg = await store.registration(conn, decision.registration_id)
            assert reg is not None
            return Outcome(reg, False, await store.waitlist_position(conn, reg))
    if outcome == "refused":
        raise Problem(
            409,
            "Meeting full",
            type_="meeting-full",
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

    def events(self, ctx: ServiceContext, decision: Decision) -> list[Payload]:
        a, m = self.applicant, self.meeting
        contact = Contact(name=a.name, email=a.email, phone=a.phone, locale=a.locale)
        url = manage_url(ctx, self.secret)
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


INSERT_REGISTRATIONS = (
    # The registrations' keys (the keyring, shared/privacy.py) in the same statement: no extra round trip
    # while the meeting's lock is held.
    "with keys as (insert into person_keys (id, tenant, key) "
    "select * from unnest($2::uuid[], $3::text[], $4::bytea[])) "
    "insert into registrations (id, tenant, meeting_id, slot_id, secret, status, seats, companions, channel, name, "
    "email, phone, locale, age, guardian_consent, answers, attestations, privacy_consent_at, ticket_code, "
    "created_at, confirmed_at, accessibility_needs) "
    "select r.id, r.tenant, r.meeting_id, r.slot_id, r.secret, r.status, r.seats, r.companions, r.channel, r.name, "
    "r.email, r.phone, r.locale, r.age, r.guardian_consent, r.answers, r.attestations, r.privacy_consent_at, "
    "r.ticket_code, r.created_at, r.confirmed_at, r.accessibility_needs "
    # In the order decided: ``seq`` orders the waiting list.
    "from jsonb_populate_recordset(null::registrations, $1::jsonb) with ordinality as r order by r.ordinality"
)


async def decide_and_write(
    ctx: ServiceContext, claims: list[Claim], *, lock: bool = True, delay: float = 0.0
) -> list[Decision]:
    """Decide the seats of ``claims`` (all of one meeting, in order) and write what was decided, in one
    transaction: the registrations, two events each (received, then confirmed or waitlisted, with their real
    figures) and one seats-changed event for the batch.

    ``decide_seats`` takes the meeting's lock and counts; the lock is held until commit, so tickets are signed
    and events built only for what actually happened. ``lock=False`` (with ``delay`` widening the gap between
    counting and writing) exists only so the concurrency test can prove it sees the race the lock prevents.
    """
    meeting = claims[0].meeting
    async with ctx.pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "select * from decide_seats($1, $2, $3, $4, $5, $6, $7, $8) order by ord",
            meeting.id,
            [c.id for c in claims],
            [c.applicant.slot_id for c in claims],
            [c.seats for c in claims],
            [c.applicant.email for c in claims],
            [c.applicant.phone for c in claims],
            lock,
            delay,
        )
        decisions: list[Decision] = []
        registrations: list[dict[str, Any]] = []
        payloads: list[Payload] = []
        correlations: list[str | None] = []
        traces: list[str | None] = []
        for claim, row in zip(claims, rows, strict=True):
            d = Decision(row["outcome"], row["registration_id"], row["wait_position"], row["left_seats"])
            decisions.append(d)
            if d.outcome not in ("confirmed", "waitlisted"):
                continue
            if d.outcome == "confirmed":
                d.ticket_code = ticket_for(meeting, claim.id, claim.applicant.slot_id)
            registrations.append(claim.row(d.outcome, d.ticket_code))
            events = claim.events(ctx, d)
            payloads += events
            correlations += [claim.correlation_id] * len(events)
            traces += [claim.traceparent] * len(events)
        if registrations:
            # ``str`` for the meeting id, an asyncpg UUID that orjson does not know.
            written = _written(registrations, claims)
            await conn.execute(
                INSERT_REGISTRATIONS,
                orjson.dumps(registrations, default=str).decode(),
                [r["id"] for r, _ in written],
                [meeting.tenant] * len(written),
                [c.key for _, c in written],
            )
            # Counted under the lock, capacity included (the cached meeting may be a moment behind an edit).
            last = rows[-1]
            payloads.append(
                seats_changed(meeting.id, last["total_capacity"], last["total_confirmed"], last["total_waitlisted"])
            )
            correlations.append(correlations[-1])  # the batch's: it carries its last request's
            traces.append(traces[-1])
            await meeting_events.record(
                conn,
                ctx.outbox,
                meeting.tenant,
                f"meeting/{meeting.id}",
                payloads,
                correlation_ids=correlations,
                traceparents=traces,
            )
    return decisions


def _written(registrations: list[dict[str, Any]], claims: list[Claim]) -> list[tuple[dict[str, Any], Claim]]:
    by_id = {c.id: c for c in claims}
    return [(r, by_id[r["id"]]) for r in registrations]


class SeatQueue:
    """Group commit per meeting: registrations that arrive while the meeting's last transaction commits wait
    here and go together into the next one (one lock, one WAL flush). A lone registration goes at once. If a
    batch fails, its items are tried one by one so one bad item fails only itself."""

    BATCH = 100

    def __init__(self) -> None:
        self._pending: dict[tuple[int, UUID], list[tuple[Claim, asyncio.Future[Decision]]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def take(self, ctx: ServiceContext, claim: Claim) -> Decision:
        key = (id(ctx.pool), claim.meeting.id)
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        queue = self._pending.get(key)
        if queue is None:
            self._pending[key] = [(claim, future)]
            task = asyncio.create_task(self._drain(ctx, key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            queue.append((claim, future))
        return await future

    async def _drain(self, ctx: ServiceContext, key: tuple[int, UUID]) -> None:
        try:
            while self._pending.get(key):
                queue = self._pending[key]
                batch, queue[:] = queue[: self.BATCH], queue[self.BATCH :]
                await self._run(ctx, batch)
        finally:
            self._pending.pop(key, None)

    async def _run(self, ctx: ServiceContext, batch: list[tuple[Claim, asyncio.Future[Decision]]]) -> None:
        try:
            decisions = await decide_and_write(ctx, [claim for claim, _ in batch])
            for (_, future), decision in zip(batch, decisions, strict=True):
                if not future.done():
                    future.set_result(decision)
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
            sealed(
                RegistrationPromotedV2,
                await registrant_key(conn, rid, meeting.tenant),
                registration_id=rid,
                contact=contact_of(reg),
                ticket_code=code,
                manage_url=manage_url(ctx, reg["secret"]),
                meeting_id=meeting.id,
                seats_left=domain.seats_left(capacity, taken),
            )
        )
    if chosen:
        await store.adjust(conn, meeting.id, slot_id, seats_moved, -len(chosen))
    return events


async def cancelled_event(
    conn: Conn, reg: dict[str, Any], by: CancelledBy, seats_left: int | None
) -> RegistrationCancelledV2:
    """The contact sealed, if the registration still has one (an erased registration has none)."""
    if not (reg["name"] or reg["email"] or reg["phone"]):
        return RegistrationCancelledV2(
            registration_id=reg["id"], meeting_id=reg["meeting_id"], cancelled_by=by, seats_left=seats_left
        )
    return sealed(
        RegistrationCancelledV2,
        await registrant_key(conn, reg["id"], reg["tenant"]),
        registration_id=reg["id"],
        contact=contact_of(reg),
        meeting_id=reg["meeting_id"],
        cancelled_by=by,
        seats_left=seats_left,
    )


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
            await cancelled_event(
                conn, reg, by, domain.seats_left(meeting.capacity_of(reg["slot_id"]), c.confirmed_seats)
            ),
            *promoted,
            await seats_event(conn, meeting),
        ]
        await record(ctx, conn, meeting, events)
        return cancelled
