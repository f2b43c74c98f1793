"""Reading meetings, slots and registrations (SQL only; the rules are in domain.py)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.registration import domain
from shared.db import Conn


@dataclass
class Slot:
    id: UUID
    starts_at: datetime
    ends_at: datetime
    capacity: int | None


@dataclass
class Meeting:
    id: UUID
    tenant: str
    status: str
    title: str
    description: str
    venue: dict[str, Any] | None
    starts_at: datetime
    ends_at: datetime
    capacity: int | None
    waitlist: bool
    registration_opens_at: datetime | None
    registration_closes_at: datetime | None
    attestations: list[dict[str, str]]
    questions: list[dict[str, Any]]
    max_companions: int
    min_age: int | None
    max_age: int | None
    guardian_consent: bool
    reminder_offsets: list[int]
    process_id: UUID | None
    signing_key: bytes
    public_key: bytes
    cancel_reason: str | None
    created_at: datetime
    updated_at: datetime
    slots: list[Slot] = field(default_factory=list)

    @property
    def closes_at(self) -> datetime:
        return domain.default_closes_at(self.starts_at, self.registration_closes_at)

    def question_rules(self) -> list[domain.Question]:
        return [
            domain.Question(q["id"], q["label"], q["kind"], bool(q.get("required")), tuple(q.get("options") or ()))
            for q in self.questions
        ]

    def slot(self, slot_id: UUID | None) -> Slot | None:
        return next((s for s in self.slots if s.id == slot_id), None)

    def capacity_of(self, slot_id: UUID | None) -> int | None:
        if slot_id is None:
            return self.capacity
        s = self.slot(slot_id)
        return s.capacity if s else None


MEETING_COLUMNS = (
    "id, tenant, status, title, description, venue, starts_at, ends_at, capacity, waitlist, registration_opens_at, "
    "registration_closes_at, attestations, questions, max_companions, min_age, max_age, guardian_consent, "
    "reminder_offsets, process_id, signing_key, public_key, cancel_reason, created_at, updated_at"
)


def _meeting(row: Any) -> Meeting:
    d = dict(row)
    d["venue"] = json.loads(d["venue"]) if d["venue"] else None
    d["attestations"] = json.loads(d["attestations"])
    d["questions"] = json.loads(d["questions"])
    d["reminder_offsets"] = list(d["reminder_offsets"])
    return Meeting(**d)


async def meeting(conn: Conn, meeting_id: UUID, *, tenant: str | None = None) -> Meeting | None:
    """A meeting with its slots; ``tenant`` restricts to one tenant's meetings (staff)."""
    row = await conn.fetchrow(
        f"select {MEETING_COLUMNS} from meetings where id = $1 and ($2::text is null or tenant = $2)",
        meeting_id,
        tenant,
    )
    if row is None:
        return None
    m = _meeting(row)
    m.slots = [
        Slot(r["id"], r["starts_at"], r["ends_at"], r["capacity"])
        for r in await conn.fetch(
            "select id, starts_at, ends_at, capacity from slots where meeting_id = $1 order by starts_at, id",
            meeting_id,
        )
    ]
    return m


async def meetings(conn: Conn, tenant: str, *, statuses: tuple[str, ...]) -> list[Meeting]:
    rows = await conn.fetch(
        f"select {MEETING_COLUMNS} from meetings where tenant = $1 and status = any($2::text[]) order by starts_at, id",
        tenant,
        list(statuses),
    )
    out = [_meeting(r) for r in rows]
    if out:
        slots = await conn.fetch(
            "select id, meeting_id, starts_at, ends_at, capacity from slots where meeting_id = any($1::uuid[]) "
            "order by starts_at, id",
            [m.id for m in out],
        )
        by_meeting: dict[UUID, list[Slot]] = {}
        for r in slots:
            by_meeting.setdefault(r["meeting_id"], []).append(
                Slot(r["id"], r["starts_at"], r["ends_at"], r["capacity"])
            )
        for m in out:
            m.slots = by_meeting.get(m.id, [])
    return out


@dataclass(frozen=True)
class Counts:
    confirmed_seats: int
    waitlisted: int


async def counts(conn: Conn, meeting_id: UUID, slot_id: UUID | None = None, *, whole: bool = False) -> Counts:
    """Seats taken and people waiting, for one slot (or the meeting without slots), or the ``whole`` meeting.

    Read from the counters, which change only under the meeting's lock.
    """
    if slot_id is not None and not whole:
        row = await conn.fetchrow(
            "select confirmed_seats, waitlisted from slots where id = $1 and meeting_id = $2", slot_id, meeting_id
        )
    else:
        row = await conn.fetchrow(
            "select m.confirmed_seats + coalesce(sum(s.confirmed_seats), 0) as confirmed_seats, "
            "m.waitlisted + coalesce(sum(s.waitlisted), 0) as waitlisted "
            "from meetings m left join slots s on s.meeting_id = m.id where m.id = $1 group by m.id",
            meeting_id,
        )
    if row is None:
        return Counts(0, 0)
    return Counts(int(row["confirmed_seats"]), int(row["waitlisted"]))


async def adjust(conn: Conn, meeting_id: UUID, slot_id: UUID | None, seats: int, waiting: int) -> None:
    """Change the counters of a seat pool (caller holds the meeting's lock)."""
    if slot_id is None:
        await conn.execute(
            "update meetings set confirmed_seats = confirmed_seats + $2, waitlisted = waitlisted + $3 where id = $1",
            meeting_id,
            seats,
            waiting,
        )
    else:
        await conn.execute(
            "update slots set confirmed_seats = confirmed_seats + $2, waitlisted = waitlisted + $3 where id = $1",
            slot_id,
            seats,
            waiting,
        )


REGISTRATION_COLUMNS = (
    "id, seq, tenant, meeting_id, slot_id, secret, status, seats, companions, channel, name, email, phone, locale, "
    "age, guardian_consent, answers, attestations, ticket_code, created_at, confirmed_at, cancelled_at, "
    "cancelled_by, erased_at, anonymised_at, accessibility_needs"
)


def registration_dict(row: Any) -> dict[str, Any]:
    d = dict(row)
    d["answers"] = json.loads(d["answers"]) if isinstance(d.get("answers"), str) else d.get("answers")
    d["attestations"] = (
        json.loads(d["attestations"]) if isinstance(d.get("attestations"), str) else d.get("attestations")
    )
    return d


async def registration_by_secret(conn: Conn, secret: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"select {REGISTRATION_COLUMNS} from registrations where secret = $1", secret)
    return registration_dict(row) if row else None


async def registration(conn: Conn, registration_id: UUID, *, tenant: str | None = None) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"select {REGISTRATION_COLUMNS} from registrations where id = $1 and ($2::text is null or tenant = $2)",
        registration_id,
        tenant,
    )
    return registration_dict(row) if row else None


async def waitlist_position(conn: Conn, reg: dict[str, Any]) -> int | None:
    if reg["status"] != "waitlisted":
        return None
    value = await conn.fetchval(
        "select count(*) from registrations where meeting_id = $1 and slot_id is not distinct from $2 "
        "and status = 'waitlisted' and seq <= $3",
        reg["meeting_id"],
        reg["slot_id"],
        reg["seq"],
    )
    return int(value)


class MeetingCache:
    """Meetings as registration reads them, kept for a moment per process.

    In a rush every request reads the same meeting; the cache spares two queries each. What decides a seat
    (status, capacity, counters) is read again under the lock by ``decide_seats``; a cached copy only serves
    validating the form (questions, attestations, window), at most ``ttl`` seconds behind an edit made by
    another process (edits in this process forget the copy at once). When a copy expires, the requests that
    want it meanwhile wait for one read rather than each reading it again.
    """

    def __init__(self, ttl: float = 1.0) -> None:
        self.ttl = ttl
        self._items: dict[UUID, tuple[float, Meeting]] = {}
        self._reading: dict[UUID, asyncio.Task[Meeting | None]] = {}

    async def get(self, pool: asyncpg.Pool, meeting_id: UUID) -> Meeting | None:
        hit = self._items.get(meeting_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        reading = self._reading.get(meeting_id)
        if reading is None:
            reading = asyncio.create_task(self._read(pool, meeting_id))
            self._reading[meeting_id] = reading
        # Shielded: one waiting request cancelled (its client gone) does not cancel the read for the others.
        return await asyncio.shield(reading)

    async def _read(self, pool: asyncpg.Pool, meeting_id: UUID) -> Meeting | None:
        started = time.monotonic()
        try:
            async with pool.acquire() as conn:
                found = await meeting(conn, meeting_id)
        finally:
            mine = self._reading.get(meeting_id) is asyncio.current_task()
            if mine:
                del self._reading[meeting_id]
        # Not kept if the meeting was forgotten (edited) while it was being read: the copy may be older.
        if found is not None and mine:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[meeting_id] = (started + self.ttl, found)
        return found

    def forget(self, meeting_id: UUID) -> None:
        self._items.pop(meeting_id, None)
        self._reading.pop(meeting_id, None)


MEETINGS = MeetingCache()
