"""Staff commands on meetings: create, edit, publish, cancel; each with its events and deadlines in one
transaction."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

from services.registration import commands, domain, store, tickets
from services.registration.schemas import MeetingIn
from services.registration.store import Meeting
from shared.bus.deadlines import cancel_deadline, register_deadline
from shared.contracts.common import DeadlineKind
from shared.contracts.envelope import Payload
from shared.contracts.registration import (
    MeetingCancelledV1,
    MeetingChangedV1,
    MeetingPublishedV1,
    Venue,
)
from shared.db import Conn
from shared.http.problems import Problem
from shared.links import link
from shared.service import ServiceContext

DEADLINE_KINDS = (DeadlineKind.REGISTRATION_CLOSES, DeadlineKind.MEETING_STARTS)


def pools(meeting: Meeting) -> list[UUID | None]:
    """The seat pools of a meeting: each slot, or the meeting itself when it has none."""
    return [s.id for s in meeting.slots] or [None]


def _columns(m: MeetingIn) -> dict[str, Any]:
    return {
        "title": m.title,
        "description": m.description,
        "venue": json.dumps(m.venue.model_dump()) if m.venue else None,
        "starts_at": m.starts_at,
        "ends_at": m.ends_at,
        "capacity": m.capacity,
        "waitlist": m.waitlist,
        "registration_opens_at": m.registration_opens_at,
        "registration_closes_at": m.registration_closes_at,
        "attestations": json.dumps([a.model_dump() for a in m.attestations]),
        "questions": json.dumps([q.model_dump() for q in m.questions]),
        "max_companions": m.max_companions,
        "min_age": m.min_age,
        "max_age": m.max_age,
        "guardian_consent": m.guardian_consent,
        "reminder_offsets": sorted({h * 3600 for h in m.reminder_offsets_hours}, reverse=True),
        "process_id": m.process_id,
    }


def as_input(meeting: Meeting) -> dict[str, Any]:
    """A stored meeting in the shape staff send it, so a partial edit can be merged and validated again."""
    return {
        "title": meeting.title,
        "description": meeting.description,
        "venue": meeting.venue,
        "starts_at": meeting.starts_at,
        "ends_at": meeting.ends_at,
        "capacity": meeting.capacity,
        "waitlist": meeting.waitlist,
        "registration_opens_at": meeting.registration_opens_at,
        "registration_closes_at": meeting.registration_closes_at,
        "attestations": meeting.attestations,
        "questions": meeting.questions,
        "max_companions": meeting.max_companions,
        "min_age": meeting.min_age,
        "max_age": meeting.max_age,
        "guardian_consent": meeting.guardian_consent,
        "slots": [
            {"id": s.id, "starts_at": s.starts_at, "ends_at": s.ends_at, "capacity": s.capacity} for s in meeting.slots
        ],
        "reminder_offsets_hours": [o // 3600 for o in meeting.reminder_offsets],
        "process_id": meeting.process_id,
    }


def check(m: MeetingIn) -> None:
    errors = m.rule_errors()
    if errors:
        raise commands.invalid(errors)


async def create(ctx: ServiceContext, tenant: str, m: MeetingIn) -> Meeting:
    check(m)
    cols = _columns(m)
    private, public = tickets.new_key_pair()
    mid = uuid4()
    now = ctx.clock.now()
    async with ctx.pool.acquire() as conn, conn.transaction():
        names = ", ".join(cols)
        params = ", ".join(f"${i + 6}" for i in range(len(cols)))
        await conn.execute(
            f"insert into meetings (id, tenant, signing_key, public_key, created_at, {names}, updated_at) "
            f"values ($1, $2, $3, $4, $5, {params}, $5)",
            mid,
            tenant,
            private,
            public,
            now,
            *cols.values(),
        )
        await _write_slots(conn, tenant, mid, m)
        meeting = await store.meeting(conn, mid)
    assert meeting is not None
    return meeting


async def _write_slots(conn: Conn, tenant: str, meeting_id: UUID, m: MeetingIn) -> None:
    existing = {r["id"] for r in await conn.fetch("select id from slots where meeting_id = $1", meeting_id)}
    keep = {s.id for s in m.slots if s.id is not None}
    unknown = keep - existing
    if unknown:
        raise Problem(
            422, "Invalid request", type_="validation", detail=f"unknown slot ids {sorted(map(str, unknown))}"
        )
    gone = existing - keep
    if gone:
        used = await conn.fetchval(
            "select count(*) from registrations where slot_id = any($1::uuid[]) and status <> 'cancelled'", list(gone)
        )
        if used:
            raise Problem(409, "Slot in use", type_="slot-in-use", detail="a removed slot still has registrations")
        await conn.execute("delete from slots where id = any($1::uuid[])", list(gone))
    for s in m.slots:
        await conn.execute(
            "insert into slots (id, tenant, meeting_id, starts_at, ends_at, capacity) values ($1, $2, $3, $4, $5, $6) "
            "on conflict (id) do update set starts_at = excluded.starts_at, ends_at = excluded.ends_at, "
            "capacity = excluded.capacity",
            s.id or uuid4(),
            tenant,
            meeting_id,
            s.starts_at,
            s.ends_at,
            s.capacity,
        )


def meeting_url(ctx: ServiceContext, tenant: str, meeting_id: UUID) -> str:
    return link(ctx.settings.links, ctx.settings.public_base_url, "meeting", tenant=tenant, meeting_id=meeting_id)


async def snapshot(
    ctx: ServiceContext,
    conn: Conn,
    meeting: Meeting,
    cls: type[MeetingPublishedV1] | type[MeetingChangedV1],
) -> MeetingPublishedV1 | MeetingChangedV1:
    whole = await store.counts(conn, meeting.id, whole=True)
    capacity = commands.meeting_capacity(meeting)
    venue = Venue(**meeting.venue) if meeting.venue else None
    return cls(
        meeting_id=meeting.id,
        title=meeting.title,
        starts_at=meeting.starts_at,
        ends_at=meeting.ends_at,
        venue=venue,
        capacity=capacity,
        seats_left=domain.seats_left(capacity, whole.confirmed_seats),
        waitlist=meeting.waitlist,
        registration_opens_at=meeting.registration_opens_at,
        registration_closes_at=meeting.closes_at,
        process_id=meeting.process_id,
        url=meeting_url(ctx, meeting.tenant, meeting.id),
    )


async def _deadlines(conn: Conn, meeting: Meeting) -> None:
    offsets = [timedelta(seconds=o) for o in meeting.reminder_offsets]
    subject = str(meeting.id)
    await register_deadline(
        conn,
        tenant=meeting.tenant,
        kind=DeadlineKind.REGISTRATION_CLOSES,
        subject_id=subject,
        due_at=meeting.closes_at,
        offsets=offsets,
        title=meeting.title,
    )
    await register_deadline(
        conn,
        tenant=meeting.tenant,
        kind=DeadlineKind.MEETING_STARTS,
        subject_id=subject,
        due_at=meeting.starts_at,
        offsets=offsets,
        title=meeting.title,
    )


async def _locked(conn: Conn, tenant: str, meeting_id: UUID) -> Meeting:
    await commands.lock_meeting(conn, meeting_id)
    store.MEETINGS.forget(meeting_id)
    meeting = await store.meeting(conn, meeting_id, tenant=tenant)
    if meeting is None:
        raise Problem(404, "Not found", detail="no such meeting")
    return meeting


async def update(ctx: ServiceContext, tenant: str, meeting_id: UUID, m: MeetingIn) -> Meeting:
    """Edit a meeting. A published one announces the change; more seats promote the waiting list."""
    check(m)
    async with ctx.pool.acquire() as conn, conn.transaction():
        before = await _locked(conn, tenant, meeting_id)
        if before.status == "cancelled":
            raise Problem(409, "Meeting cancelled", type_="meeting-cancelled", detail="a cancelled meeting is final")
        cols = _columns(m)
        sets = ", ".join(f"{k} = ${i + 3}" for i, k in enumerate(cols))
        await conn.execute(
            f"update meetings set {sets}, updated_at = $2 where id = $1", meeting_id, ctx.clock.now(), *cols.values()
        )
        await _write_slots(conn, tenant, meeting_id, m)
        meeting = await store.meeting(conn, meeting_id)
        assert meeting is not None
        await _check_capacity(conn, meeting)
        if meeting.status == "published":
            events: list[Payload] = []
            for slot_id in pools(meeting):
                events += await commands.promote(ctx, conn, meeting, slot_id)
            events.append(await snapshot(ctx, conn, meeting, MeetingChangedV1))
            events.append(await commands.seats_event(conn, meeting))
            await commands.record(ctx, conn, meeting, events)
            await _deadlines(conn, meeting)
    store.MEETINGS.forget(meeting_id)  # again after commit: a read meanwhile may have cached the old state
    return meeting


async def _check_capacity(conn: Conn, meeting: Meeting) -> None:
    """Lowering capacity below the seats already confirmed would silently overbook: refuse it."""
    for slot_id in pools(meeting):
        capacity = meeting.capacity_of(slot_id)
        if capacity is None:
            continue
        c = await store.counts(conn, meeting.id, slot_id)
        if c.confirmed_seats > capacity:
            raise Problem(
                409,
                "Capacity below confirmed seats",
                type_="capacity-below-confirmed",
                detail=f"{c.confirmed_seats} seats are confirmed; cancel registrations first",
                confirmed_seats=c.confirmed_seats,
            )


async def publish(ctx: ServiceContext, tenant: str, meeting_id: UUID) -> Meeting:
    async with ctx.pool.acquire() as conn, conn.transaction():
        meeting = await _locked(conn, tenant, meeting_id)
        if meeting.status == "cancelled":
            raise Problem(409, "Meeting cancelled", type_="meeting-cancelled", detail="a cancelled meeting is final")
        if meeting.status == "published":
            return meeting
        await conn.execute(
            "update meetings set status = 'published', updated_at = $2 where id = $1", meeting_id, ctx.clock.now()
        )
        meeting.status = "published"
        await commands.record(ctx, conn, meeting, [await snapshot(ctx, conn, meeting, MeetingPublishedV1)])
        await _deadlines(conn, meeting)
    store.MEETINGS.forget(meeting_id)
    return meeting


async def cancel(ctx: ServiceContext, tenant: str, meeting_id: UUID, reason: str | None) -> Meeting:
    """Cancel the meeting and every registration of it; its deadlines no longer remind anyone."""
    now = ctx.clock.now()
    async with ctx.pool.acquire() as conn, conn.transaction():
        meeting = await _locked(conn, tenant, meeting_id)
        if meeting.status == "cancelled":
            return meeting
        rows = await conn.fetch(
            "update registrations set status = 'cancelled', cancelled_at = $2, cancelled_by = 'meeting_cancelled' "
            f"where meeting_id = $1 and status <> 'cancelled' returning {store.REGISTRATION_COLUMNS}",
            meeting_id,
            now,
        )
        await conn.execute("update slots set confirmed_seats = 0, waitlisted = 0 where meeting_id = $1", meeting_id)
        await conn.execute(
            "update meetings set status = 'cancelled', cancel_reason = $2, updated_at = $3, confirmed_seats = 0, "
            "waitlisted = 0 where id = $1",
            meeting_id,
            reason,
            now,
        )
        meeting.status = "cancelled"
        events: list[Payload] = [MeetingCancelledV1(meeting_id=meeting_id, reason=reason)]
        for r in rows:
            reg = store.registration_dict(r)
            events.append(await commands.cancelled_event(conn, reg, "meeting_cancelled", None))
        events.append(await commands.seats_event(conn, meeting))
        await commands.record(ctx, conn, meeting, events)
        for kind in DEADLINE_KINDS:
            await cancel_deadline(conn, kind=kind, subject_id=str(meeting_id))
    store.MEETINGS.forget(meeting_id)
    return meeting
