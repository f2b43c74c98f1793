"""All SQL of registration: ``Store`` over one connection (a unit of work's, or a reading one), one method per
query or statement; the rules are in domain.py, the seat decision in ``decide_seats`` (migrations/001_init.sql).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol
from uuid import UUID

import asyncpg
import orjson
from cachetools import LRUCache

from services.registration.domain import Busy, Counts, Meeting, Slot
from shared.bus.deadlines import cancel_deadline, register_deadline
from shared.contracts.common import DeadlineKind
from shared.db import Conn
from shared.privacy import delete_keys, new_key, own_key, store_keys

#: A wait for the meeting's lock longer than this becomes a clean 503 rather than a hung request.
LOCK_TIMEOUT = "5s"

MEETING_COLUMNS = (
    "id, tenant, status, title, description, venue, starts_at, ends_at, capacity, waitlist, registration_opens_at, "
    "registration_closes_at, attestations, questions, max_companions, min_age, max_age, guardian_consent, "
    "reminder_offsets, process_id, signing_key, public_key, cancel_reason, created_at, updated_at"
)

REGISTRATION_COLUMNS = (
    "id, seq, tenant, meeting_id, slot_id, secret, status, seats, companions, channel, name, email, phone, locale, "
    "age, guardian_consent, answers, attestations, ticket_code, created_at, confirmed_at, cancelled_at, "
    "cancelled_by, erased_at, anonymised_at, accessibility_needs"
)

DECIDE_AND_REGISTER = (
    # One statement, so one round trip while the meeting's lock is held: the seat decisions (``decide_seats``
    # takes the lock), the registrations decided with their keys (the keyring, shared/privacy.py), and the
    # sequence numbers of the batch's events (the bus's ``reserve_sequences``: $11 a registration, $12 a batch).
    "with decided as materialized (select * from decide_seats($1, $2, $3, $4, $5, $6)), "
    "stored as materialized (select ord, outcome from decided where outcome in ('confirmed', 'waitlisted')), "
    "keys as (insert into person_keys (id, tenant, key) "
    "select k.id, $8, k.key from unnest($2::uuid[], $9::bytea[]) with ordinality as k(id, key, ord) "
    "join stored s on s.ord = k.ord), "
    # Without tickets: those are signed for the seats decided, and set by ``set_tickets``.
    "registered as (insert into registrations (id, tenant, meeting_id, slot_id, secret, status, seats, companions, "
    "channel, name, email, phone, locale, age, guardian_consent, answers, attestations, privacy_consent_at, "
    "created_at, confirmed_at, accessibility_needs) "
    "select r.id, r.tenant, r.meeting_id, r.slot_id, r.secret, s.outcome, r.seats, r.companions, r.channel, r.name, "
    "r.email, r.phone, r.locale, r.age, r.guardian_consent, r.answers, r.attestations, r.privacy_consent_at, "
    "r.created_at, case when s.outcome = 'confirmed' then r.created_at end, r.accessibility_needs "
    # In the order decided: ``seq`` orders the waiting list.
    "from jsonb_populate_recordset(null::registrations, $7::jsonb) with ordinality as r "
    "join stored s on s.ord = r.ordinality order by r.ordinality), "
    "reserved as (select q.last from (select count(*) as n from stored) c, "
    "reserve_sequences(array[$10::text], array[case when c.n > 0 then $11 * c.n + $12 else 0 end]) q) "
    "select d.*, (select last from reserved) as last_sequence from decided d order by d.ord"
)

BLANK = (
    "name = null, email = null, phone = null, age = null, answers = '{}', attestations = '[]', "
    "accessibility_needs = null, "
    "ticket_code = case when status = 'confirmed' then ticket_code end"
)

# Version 1 events (recorded before personal data was sealed) carry the contact in the clear; the outbox keeps
# published rows for days (and publishes them again after Redis lost its data), so the contact is blanked there.
# The shape stays valid: a consumer still parses an event published again. Version 2 needs no scrubbing: its
# sealed data is unreadable once the key is deleted.
SCRUB_OUTBOX = (
    "update outbox set envelope = jsonb_set(envelope::jsonb, '{data,contact}', "
    '(envelope::jsonb -> \'data\' -> \'contact\') || \'{"name": "", "email": null, "phone": null}\'::jsonb)::text '
    "where subject = any($1::text[]) and (envelope::jsonb -> 'data' ->> 'registration_id') = any($2::text[]) "
    "and jsonb_typeof(envelope::jsonb -> 'data' -> 'contact') = 'object'"
)

EXPORT_ROWS = (
    "select r.id, r.status, s.starts_at as slot_starts_at, r.seats, r.companions, r.channel, r.name, r.email, "
    "r.phone, r.answers, r.created_at, r.confirmed_at, r.cancelled_at, r.cancelled_by, c.checked_in_at "
    "from registrations r left join slots s on s.id = r.slot_id left join checkins c on c.registration_id = r.id "
    "where r.meeting_id = $1 and r.tenant = $2 {filter} order by r.seq"
)

#: A registration with its check-in time (staff listings), ``r`` the registration, ``c`` its check-in.
REGISTRATION_WITH_CHECKIN = (
    ", ".join(f"r.{c.strip()}" for c in REGISTRATION_COLUMNS.split(",")) + ", c.checked_in_at "
    "from registrations r left join checkins c on c.registration_id = r.id"
)

CALLBACKS = (
    "select b.id, b.meeting_id, b.registration_id, b.reason, b.created_at, b.done_at, b.done_by, r.name, r.phone, "
    "r.status as registration_status, m.title as meeting_title, m.starts_at as meeting_starts_at, "
    "m.status as meeting_status "
    "from callbacks b join registrations r on r.id = b.registration_id join meetings m on m.id = b.meeting_id "
)

PERSON_RECORDS = (
    "select r.id, r.meeting_id, m.title as meeting_title, m.starts_at as meeting_starts_at, r.slot_id, r.status, "
    "r.seats, r.companions, r.channel, r.name, r.email, r.phone, r.locale, r.age, r.guardian_consent, r.answers, "
    "r.attestations, r.privacy_consent_at, r.ticket_code, r.created_at, r.confirmed_at, r.cancelled_at, "
    "r.cancelled_by, c.checked_in_at "
    "from registrations r join meetings m on m.id = r.meeting_id left join checkins c on c.registration_id = r.id "
    "where r.tenant = $1 and ((r.email is not null and r.email = $2) or (r.phone is not null and r.phone = $3)) "
    "order by r.created_at, r.id"
)


def like_escaped(text: str) -> str:
    """``text`` matched literally by ``ilike ... escape '\\'`` (a ``%`` or ``_`` typed is no wildcard)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _meeting(row: Any) -> Meeting:
    d = dict(row)
    d["venue"] = json.loads(d["venue"]) if d["venue"] else None
    d["attestations"] = json.loads(d["attestations"])
    d["questions"] = json.loads(d["questions"])
    d["reminder_offsets"] = list(d["reminder_offsets"])
    return Meeting(**d)


def registration_dict(row: Any) -> dict[str, Any]:
    d = dict(row)
    d["answers"] = json.loads(d["answers"]) if isinstance(d.get("answers"), str) else d.get("answers")
    d["attestations"] = (
        json.loads(d["attestations"]) if isinstance(d.get("attestations"), str) else d.get("attestations")
    )
    return d


class Claimed(NamedTuple):
    """A registration to decide and, where it gets a seat or a place on the waiting list, to store: its row
    (status and confirmation time are set as decided; the ticket code is not stored from it) and its key in the
    keyring."""

    row: dict[str, Any]
    key: bytes


class Store:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    # --- meetings --------------------------------------------------------------------------------------------

    async def meeting(self, meeting_id: UUID, *, tenant: str | None = None) -> Meeting | None:
        """A meeting with its slots; ``tenant`` restricts to one tenant's meetings (staff)."""
        row = await self.conn.fetchrow(
            f"select {MEETING_COLUMNS} from meetings where id = $1 and ($2::text is null or tenant = $2)",
            meeting_id,
            tenant,
        )
        if row is None:
            return None
        m = _meeting(row)
        m.slots = [
            Slot(r["id"], r["starts_at"], r["ends_at"], r["capacity"])
            for r in await self.conn.fetch(
                "select id, starts_at, ends_at, capacity from slots where meeting_id = $1 order by starts_at, id",
                meeting_id,
            )
        ]
        return m

    async def meetings(self, tenant: str, *, statuses: tuple[str, ...]) -> list[Meeting]:
        rows = await self.conn.fetch(
            f"select {MEETING_COLUMNS} from meetings where tenant = $1 and status = any($2::text[]) "
            "order by starts_at, id",
            tenant,
            list(statuses),
        )
        out = [_meeting(r) for r in rows]
        if out:
            slots = await self.conn.fetch(
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

    async def other_meeting_by_prefix(self, tenant: str, prefix: str, not_id: UUID) -> Any:
        """Another of the tenant's meetings whose id starts with ``prefix`` (a ticket's claim): id, public key."""
        return await self.conn.fetchrow(
            "select id, public_key from meetings where tenant = $1 and substring(id::text, 1, 8) = $2 and id <> $3",
            tenant,
            prefix,
            not_id,
        )

    async def insert_meeting(
        self, meeting_id: UUID, tenant: str, private: bytes, public: bytes, now: datetime, cols: dict[str, Any]
    ) -> None:
        names = ", ".join(cols)
        params = ", ".join(f"${i + 6}" for i in range(len(cols)))
        await self.conn.execute(
            f"insert into meetings (id, tenant, signing_key, public_key, created_at, {names}, updated_at) "
            f"values ($1, $2, $3, $4, $5, {params}, $5)",
            meeting_id,
            tenant,
            private,
            public,
            now,
            *cols.values(),
        )

    async def update_meeting(self, meeting_id: UUID, now: datetime, cols: dict[str, Any]) -> None:
        sets = ", ".join(f"{k} = ${i + 3}" for i, k in enumerate(cols))
        await self.conn.execute(
            f"update meetings set {sets}, updated_at = $2 where id = $1", meeting_id, now, *cols.values()
        )

    async def publish_meeting(self, meeting_id: UUID, now: datetime) -> None:
        await self.conn.execute(
            "update meetings set status = 'published', updated_at = $2 where id = $1", meeting_id, now
        )

    async def cancel_meeting(self, meeting_id: UUID, reason: str | None, now: datetime) -> list[dict[str, Any]]:
        """The meeting and every registration of it cancelled, its counters zeroed; the registrations cancelled."""
        rows = await self.conn.fetch(
            "update registrations set status = 'cancelled', cancelled_at = $2, cancelled_by = 'meeting_cancelled' "
            f"where meeting_id = $1 and status <> 'cancelled' returning {REGISTRATION_COLUMNS}",
            meeting_id,
            now,
        )
        await self.conn.execute(
            "update slots set confirmed_seats = 0, waitlisted = 0 where meeting_id = $1", meeting_id
        )
        await self.conn.execute(
            "update meetings set status = 'cancelled', cancel_reason = $2, updated_at = $3, confirmed_seats = 0, "
            "waitlisted = 0 where id = $1",
            meeting_id,
            reason,
            now,
        )
        return [registration_dict(r) for r in rows]

    async def slot_ids(self, meeting_id: UUID) -> set[UUID]:
        return {r["id"] for r in await self.conn.fetch("select id from slots where meeting_id = $1", meeting_id)}

    async def slots_in_use(self, slot_ids: Sequence[UUID]) -> int:
        return int(
            await self.conn.fetchval(
                "select count(*) from registrations where slot_id = any($1::uuid[]) and status <> 'cancelled'",
                list(slot_ids),
            )
        )

    async def delete_slots(self, slot_ids: Sequence[UUID]) -> None:
        await self.conn.execute("delete from slots where id = any($1::uuid[])", list(slot_ids))

    async def put_slot(
        self, slot_id: UUID, tenant: str, meeting_id: UUID, starts_at: datetime, ends_at: datetime, capacity: int | None
    ) -> None:
        await self.conn.execute(
            "insert into slots (id, tenant, meeting_id, starts_at, ends_at, capacity) values ($1, $2, $3, $4, $5, $6) "
            "on conflict (id) do update set starts_at = excluded.starts_at, ends_at = excluded.ends_at, "
            "capacity = excluded.capacity",
            slot_id,
            tenant,
            meeting_id,
            starts_at,
            ends_at,
            capacity,
        )

    async def register_deadline(
        self, meeting: Meeting, kind: DeadlineKind, due_at: datetime, offsets: list[timedelta]
    ) -> None:
        await register_deadline(
            self.conn,
            tenant=meeting.tenant,
            kind=kind,
            subject_id=str(meeting.id),
            due_at=due_at,
            offsets=offsets,
            title=meeting.title,
        )

    async def cancel_deadline(self, kind: DeadlineKind, meeting_id: UUID) -> None:
        await cancel_deadline(self.conn, kind=kind, subject_id=str(meeting_id))

    # --- seats -----------------------------------------------------------------------------------------------

    async def lock_meeting(self, meeting_id: UUID) -> None:
        """The meeting's transaction-scoped advisory lock (pretix's way): seats are counted and changed only
        under it, and ``decide_seats`` takes the same one."""
        if not self.conn.is_in_transaction():
            raise RuntimeError("the meeting lock is transaction-scoped; take it inside a transaction")
        try:
            # One round trip: the timeout is set (for this transaction) before the lock is waited for.
            await self.conn.execute(
                "select set_config('lock_timeout', $2, true), pg_advisory_xact_lock(hashtextextended($1, 0))",
                f"registration/meeting/{meeting_id}",
                LOCK_TIMEOUT,
            )
        except asyncpg.LockNotAvailableError:
            raise Busy() from None

    async def decide_and_register(
        self, meeting_id: UUID, claims: list[Claimed], subject: str, per_registration: int, per_batch: int
    ) -> list[Any]:
        """The seat decisions of a batch, in order, under the meeting's lock (held until commit), with the
        registrations decided confirmed or waitlisted stored (``claims``' rows with their status as decided,
        without tickets: see ``set_tickets``), and ``per_registration`` sequence numbers of ``subject``
        reserved for each of them and ``per_batch`` more for the batch where any were stored: the last of them
        in each row's ``last_sequence``. One round trip."""
        try:
            return list(
                await self.conn.fetch(
                    DECIDE_AND_REGISTER,
                    meeting_id,
                    [c.row["id"] for c in claims],
                    [c.row["slot_id"] for c in claims],
                    [c.row["seats"] for c in claims],
                    [c.row["email"] for c in claims],
                    [c.row["phone"] for c in claims],
                    # ``str`` for the meeting id, an asyncpg UUID that orjson does not know.
                    orjson.dumps([c.row for c in claims], default=str).decode(),
                    claims[0].row["tenant"] if claims else None,
                    [c.key for c in claims],
                    subject,
                    per_registration,
                    per_batch,
                )
            )
        except asyncpg.LockNotAvailableError:
            raise Busy() from None

    async def set_tickets(self, ids: list[UUID], codes: list[str]) -> None:
        """The tickets of registrations confirmed by ``decide_and_register`` in this transaction."""
        await self.conn.execute("select set_tickets($1::uuid[], $2::text[])", ids, codes)  # see its migration

    async def counts(self, meeting_id: UUID, slot_id: UUID | None = None, *, whole: bool = False) -> Counts:
        """Seats taken and people waiting, for one slot (or the meeting without slots), or the ``whole`` meeting.

        Read from the counters, which change only under the meeting's lock.
        """
        if slot_id is not None and not whole:
            row = await self.conn.fetchrow(
                "select confirmed_seats, waitlisted from slots where id = $1 and meeting_id = $2", slot_id, meeting_id
            )
        else:
            row = await self.conn.fetchrow(
                "select m.confirmed_seats + coalesce(sum(s.confirmed_seats), 0) as confirmed_seats, "
                "m.waitlisted + coalesce(sum(s.waitlisted), 0) as waitlisted "
                "from meetings m left join slots s on s.meeting_id = m.id where m.id = $1 group by m.id",
                meeting_id,
            )
        if row is None:
            return Counts(0, 0)
        return Counts(int(row["confirmed_seats"]), int(row["waitlisted"]))

    async def adjust(self, meeting_id: UUID, slot_id: UUID | None, seats: int, waiting: int) -> None:
        """Change the counters of a seat pool (caller holds the meeting's lock)."""
        if slot_id is None:
            await self.conn.execute(
                "update meetings set confirmed_seats = confirmed_seats + $2, waitlisted = waitlisted + $3 "
                "where id = $1",
                meeting_id,
                seats,
                waiting,
            )
        else:
            await self.conn.execute(
                "update slots set confirmed_seats = confirmed_seats + $2, waitlisted = waitlisted + $3 where id = $1",
                slot_id,
                seats,
                waiting,
            )

    # --- registrations ---------------------------------------------------------------------------------------

    async def registration_by_secret(self, secret: str) -> dict[str, Any] | None:
        row = await self.conn.fetchrow(f"select {REGISTRATION_COLUMNS} from registrations where secret = $1", secret)
        return registration_dict(row) if row else None

    async def registration(self, registration_id: UUID, *, tenant: str | None = None) -> dict[str, Any] | None:
        row = await self.conn.fetchrow(
            f"select {REGISTRATION_COLUMNS} from registrations where id = $1 and ($2::text is null or tenant = $2)",
            registration_id,
            tenant,
        )
        return registration_dict(row) if row else None

    async def registrations_of(self, meeting_id: UUID, tenant: str, *, name: str | None = None) -> list[dict[str, Any]]:
        """A meeting's registrations in order, each with ``checked_in_at``; ``name``: only those whose name
        contains it, case ignored."""
        rows = await self.conn.fetch(
            f"select {REGISTRATION_WITH_CHECKIN} where r.meeting_id = $1 and r.tenant = $2 "
            "and ($3::text is null or r.name ilike $3 escape '\\') order by r.seq",
            meeting_id,
            tenant,
            None if name is None else f"%{like_escaped(name)}%",
        )
        return [registration_dict(r) for r in rows]

    async def registration_with_checkin(self, registration_id: UUID, tenant: str) -> dict[str, Any] | None:
        row = await self.conn.fetchrow(
            f"select {REGISTRATION_WITH_CHECKIN} where r.id = $1 and r.tenant = $2", registration_id, tenant
        )
        return registration_dict(row) if row else None

    async def door_search(self, meeting_id: UUID, words: Sequence[str], limit: int) -> list[dict[str, Any]]:
        """Registrations whose name contains every word (case ignored), seat holders first, then by name."""
        rows = await self.conn.fetch(
            "select r.id as registration_id, r.name, r.status, r.companions, c.checked_in_at "
            "from registrations r left join checkins c on c.registration_id = r.id "
            "where r.meeting_id = $1 and r.name is not null "
            "and (select bool_and(r.name ilike '%' || w || '%' escape '\\') from unnest($2::text[]) w) "
            "order by case r.status when 'confirmed' then 0 when 'waitlisted' then 1 else 2 end, lower(r.name), r.seq "
            "limit $3",
            meeting_id,
            [like_escaped(w) for w in words],
            limit,
        )
        return [dict(r) for r in rows]

    async def active_contacts(self, meeting_id: UUID) -> list[Any]:
        """The meeting's registrations holding or waiting for a seat: id, slot, e-mail, phone."""
        return list(
            await self.conn.fetch(
                "select id, slot_id, email, phone from registrations where meeting_id = $1 and status <> 'cancelled' "
                "order by seq",
                meeting_id,
            )
        )

    async def waitlist_position(self, reg: dict[str, Any]) -> int | None:
        if reg["status"] != "waitlisted":
            return None
        value = await self.conn.fetchval(
            "select count(*) from registrations where meeting_id = $1 and slot_id is not distinct from $2 "
            "and status = 'waitlisted' and seq <= $3",
            reg["meeting_id"],
            reg["slot_id"],
            reg["seq"],
        )
        return int(value)

    async def waiting(self, meeting_id: UUID, slot_id: UUID | None) -> list[Any]:
        """The waiting list of a seat pool, first in first."""
        return list(
            await self.conn.fetch(
                "select id, seats from registrations where meeting_id = $1 and slot_id is not distinct from $2 "
                "and status = 'waitlisted' order by seq",
                meeting_id,
                slot_id,
            )
        )

    async def confirm(self, registration_id: UUID, now: datetime, ticket_code: str) -> dict[str, Any]:
        row = await self.conn.fetchrow(
            "update registrations set status = 'confirmed', confirmed_at = $2, ticket_code = $3 where id = $1 "
            f"returning {REGISTRATION_COLUMNS}",
            registration_id,
            now,
            ticket_code,
        )
        return registration_dict(row)

    async def cancel_registration(self, registration_id: UUID, now: datetime, by: str) -> dict[str, Any]:
        row = await self.conn.fetchrow(
            "update registrations set status = 'cancelled', cancelled_at = $2, cancelled_by = $3 where id = $1 "
            f"returning {REGISTRATION_COLUMNS}",
            registration_id,
            now,
            by,
        )
        return registration_dict(row)

    async def revoked(self, meeting_id: UUID) -> list[UUID]:
        rows = await self.conn.fetch(
            "select id from registrations where meeting_id = $1 and status = 'cancelled' and ticket_code is not null",
            meeting_id,
        )
        return [r["id"] for r in rows]

    async def registrant_key(self, registration_id: UUID, tenant: str) -> bytes:
        """The registration's key; a new one for a registration that has none (stored before keys, or erased)."""
        key = await own_key(self.conn, registration_id)
        if key is None:
            key = new_key()
            await store_keys(self.conn, [(registration_id, tenant, key)])
        return key

    # --- the call-back list --------------------------------------------------------------------------------

    async def add_callbacks(
        self, tenant: str, meeting_id: UUID, registration_ids: Sequence[UUID], reason: str, now: datetime
    ) -> None:
        """A call to make per registration, unless one for the same reason is still open (one call tells the
        latest)."""
        if not registration_ids:
            return
        await self.conn.execute(
            "insert into callbacks (id, tenant, meeting_id, registration_id, reason, created_at) "
            "select gen_random_uuid(), $1, $2, r, $4, $5 from unnest($3::uuid[]) r "
            "where not exists (select 1 from callbacks b where b.registration_id = r and b.reason = $4 "
            "and b.done_at is null)",
            tenant,
            meeting_id,
            list(registration_ids),
            reason,
            now,
        )

    async def drop_open_callbacks(self, registration_ids: Sequence[UUID]) -> None:
        """Calls not made yet that a later change made pointless (the registration cancelled, say)."""
        await self.conn.execute(
            "delete from callbacks where registration_id = any($1::uuid[]) and done_at is null", list(registration_ids)
        )

    async def callbacks(self, tenant: str, *, done: bool, meeting_id: UUID | None, limit: int) -> list[dict[str, Any]]:
        """Open calls oldest first, or done calls latest first."""
        order = "b.done_at desc, b.id" if done else "b.created_at, b.id"
        rows = await self.conn.fetch(
            CALLBACKS + "where b.tenant = $1 and (b.done_at is not null) = $2 "
            f"and ($3::uuid is null or b.meeting_id = $3) order by {order} limit $4",
            tenant,
            done,
            meeting_id,
            limit,
        )
        return [dict(r) for r in rows]

    async def callback(self, callback_id: UUID, tenant: str) -> dict[str, Any] | None:
        row = await self.conn.fetchrow(CALLBACKS + "where b.id = $1 and b.tenant = $2", callback_id, tenant)
        return dict(row) if row else None

    async def mark_callback_done(self, callback_id: UUID, tenant: str, now: datetime, by: str) -> bool:
        """Done once: a second mark keeps the first time and person. False if there is no such call."""
        found = await self.conn.fetchval(
            "update callbacks set done_at = coalesce(done_at, $3), done_by = coalesce(done_by, $4) "
            "where id = $1 and tenant = $2 returning id",
            callback_id,
            tenant,
            now,
            by,
        )
        return found is not None

    async def delete_callbacks_of(self, registration_ids: Sequence[UUID]) -> None:
        """Erasure and retention: the person's calls go with their data."""
        if registration_ids:
            await self.conn.execute(
                "delete from callbacks where registration_id = any($1::uuid[])", list(registration_ids)
            )

    # --- check-in --------------------------------------------------------------------------------------------

    async def checkin_by_nonce(self, meeting_id: UUID, nonce: str) -> Any:
        return await self.conn.fetchrow(
            "select registration_id, checked_in_at from checkins where meeting_id = $1 and nonce = $2",
            meeting_id,
            nonce,
        )

    async def checkin_of(self, registration_id: UUID) -> Any:
        return await self.conn.fetchrow(
            "select nonce, checked_in_at from checkins where registration_id = $1", registration_id
        )

    async def insert_checkin(
        self, checkin_id: UUID, tenant: str, meeting_id: UUID, registration_id: UUID, nonce: str, now: datetime
    ) -> bool:
        """False if the registration was checked in already (the transaction goes on: a savepoint)."""
        try:
            async with self.conn.transaction():
                await self.conn.execute(
                    "insert into checkins (id, tenant, meeting_id, registration_id, nonce, checked_in_at) "
                    "values ($1, $2, $3, $4, $5, $6)",
                    checkin_id,
                    tenant,
                    meeting_id,
                    registration_id,
                    nonce,
                    now,
                )
        except asyncpg.UniqueViolationError:
            return False
        return True

    async def attendance(self, meeting_id: UUID) -> dict[str, int]:
        row = await self.conn.fetchrow(
            "select count(*) filter (where r.status = 'confirmed') as confirmed, "
            "coalesce(sum(r.seats) filter (where r.status = 'confirmed'), 0) as confirmed_seats, "
            "count(*) filter (where r.status = 'waitlisted') as waitlisted, "
            "count(*) filter (where r.status = 'cancelled') as cancelled, "
            "count(c.id) as checked_in, coalesce(sum(r.seats) filter (where c.id is not null), 0) as checked_in_seats "
            "from registrations r left join checkins c on c.registration_id = r.id where r.meeting_id = $1",
            meeting_id,
        )
        assert row is not None
        return {k: int(v) for k, v in dict(row).items()}

    # --- staff exports ---------------------------------------------------------------------------------------

    async def export_rows(self, meeting_id: UUID, tenant: str, *, attendance: bool) -> AsyncIterator[Any]:
        """A meeting's registrations for a file, from a server-side cursor (inside the caller's transaction)."""
        query = EXPORT_ROWS.format(filter="and c.id is not null" if attendance else "")
        async for r in self.conn.cursor(query, meeting_id, tenant, prefetch=500):
            yield r

    # --- personal data ---------------------------------------------------------------------------------------

    async def scrub_outbox(self, rows: list[Any]) -> None:
        if not rows:
            return
        subjects = sorted({f"meeting/{r['meeting_id']}" for r in rows})
        await self.conn.execute(SCRUB_OUTBOX, subjects, [str(r["id"]) for r in rows])

    async def erase_person(self, tenant: str, email: str | None, phone: str | None, now: datetime) -> list[Any]:
        """Blank the person's registrations of the tenant: their ids and meetings."""
        return list(
            await self.conn.fetch(
                f"update registrations set {BLANK}, erased_at = $4 where tenant = $1 and erased_at is null "
                "and ((email is not null and email = $2) or (phone is not null and phone = $3)) "
                "returning id, meeting_id",
                tenant,
                email,
                phone,
                now,
            )
        )

    async def meetings_due_for_anonymising(self, ended_before: datetime) -> list[Any]:
        """Several processes may ask: the row lock with SKIP LOCKED hands each meeting to one of them."""
        return list(
            await self.conn.fetch(
                "select id, tenant from meetings where anonymised_at is null and ends_at < $1 "
                "order by ends_at limit 50 for update skip locked",
                ended_before,
            )
        )

    async def anonymise_meeting(self, meeting_id: UUID, now: datetime) -> list[Any]:
        rows = await self.conn.fetch(
            f"update registrations set {BLANK}, anonymised_at = $2 where meeting_id = $1 "
            "and anonymised_at is null returning id, meeting_id",
            meeting_id,
            now,
        )
        await self.conn.execute("update meetings set anonymised_at = $2 where id = $1", meeting_id, now)
        return list(rows)

    async def delete_keys(self, ids: Sequence[UUID]) -> None:
        await delete_keys(self.conn, list(ids))

    async def store_key(self, key_id: UUID, tenant: str, key: bytes) -> None:
        await store_keys(self.conn, [(key_id, tenant, key)])

    async def own_key(self, key_id: UUID) -> bytes | None:
        return await own_key(self.conn, key_id)

    # --- data exports ----------------------------------------------------------------------------------------

    async def person_records(self, tenant: str, email: str | None, phone: str | None) -> list[dict[str, Any]]:
        return [dict(r) for r in await self.conn.fetch(PERSON_RECORDS, tenant, email, phone)]

    async def insert_export(
        self,
        export_id: UUID,
        tenant: str,
        email_hmac: str | None,
        phone_hmac: str | None,
        now: datetime,
        expires_at: datetime,
        waiting_for: list[str],
    ) -> None:
        await self.conn.execute(
            "insert into data_exports (id, tenant, email_hmac, phone_hmac, requested_at, expires_at, waiting_for) "
            "values ($1, $2, $3, $4, $5, $6, $7)",
            export_id,
            tenant,
            email_hmac,
            phone_hmac,
            now,
            expires_at,
            waiting_for,
        )

    async def add_export_part(self, export_id: UUID, service: str, sealed: str) -> None:
        await self.conn.execute(
            "insert into data_export_parts (export_id, service, sealed) values ($1, $2, $3) "
            "on conflict (export_id, service) do nothing",
            export_id,
            service,
            sealed,
        )

    async def export_waiting_for(self, export_id: UUID, tenant: str) -> list[str] | None:
        """The services an export still waits for, its row locked; None if it expired or was erased."""
        row = await self.conn.fetchrow(
            "select waiting_for from data_exports where id = $1 and tenant = $2 for update", export_id, tenant
        )
        return None if row is None else list(row["waiting_for"])

    async def set_export_waiting(self, export_id: UUID, waiting: list[str], now: datetime) -> None:
        await self.conn.execute(
            "update data_exports set waiting_for = $2, completed_at = case when cardinality($2::text[]) = 0 "
            "then $3 else completed_at end where id = $1",
            export_id,
            waiting,
            now,
        )

    async def export(self, export_id: UUID, tenant: str) -> Any:
        return await self.conn.fetchrow(
            "select id, requested_at, expires_at, waiting_for, completed_at from data_exports "
            "where id = $1 and tenant = $2",
            export_id,
            tenant,
        )

    async def export_parts(self, export_id: UUID) -> list[Any]:
        return list(
            await self.conn.fetch(
                "select service, sealed from data_export_parts where export_id = $1 order by service", export_id
            )
        )

    async def delete_exports_of(self, tenant: str, email_hmac: str | None, phone_hmac: str | None) -> list[UUID]:
        rows = await self.conn.fetch(
            "delete from data_exports where tenant = $1 and ((email_hmac is not null and email_hmac = $2) "
            "or (phone_hmac is not null and phone_hmac = $3)) returning id",
            tenant,
            email_hmac,
            phone_hmac,
        )
        return [r["id"] for r in rows]

    async def delete_expired_exports(self, now: datetime) -> list[UUID]:
        rows = await self.conn.fetch("delete from data_exports where expires_at < $1 returning id", now)
        return [r["id"] for r in rows]


class Readable(Protocol):
    """What hands a store on a pooled connection (``UnitsOfWork.reading()``)."""

    def reading(self) -> Any: ...


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
        # Each copy with its own expiry, counted from when its read started (an LRU bound on how many are kept).
        self._items: LRUCache[UUID, tuple[float, Meeting]] = LRUCache(maxsize=10_000)
        self._reading: dict[UUID, asyncio.Task[Meeting | None]] = {}

    async def get(self, uows: Readable, meeting_id: UUID) -> Meeting | None:
        hit = self._items.get(meeting_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        reading = self._reading.get(meeting_id)
        if reading is None:
            reading = asyncio.create_task(self._read(uows, meeting_id))
            self._reading[meeting_id] = reading
        # Shielded: one waiting request cancelled (its client gone) does not cancel the read for the others.
        return await asyncio.shield(reading)

    async def _read(self, uows: Readable, meeting_id: UUID) -> Meeting | None:
        started = time.monotonic()
        try:
            async with uows.reading() as store:
                found: Meeting | None = await store.meeting(meeting_id)
        finally:
            mine = self._reading.get(meeting_id) is asyncio.current_task()
            if mine:
                del self._reading[meeting_id]
        # Not kept if the meeting was forgotten (edited) while it was being read: the copy may be older.
        if found is not None and mine:
            self._items[meeting_id] = (started + self.ttl, found)
        return found

    def forget(self, meeting_id: UUID) -> None:
        self._items.pop(meeting_id, None)
        self._reading.pop(meeting_id, None)


MEETINGS = MeetingCache()
