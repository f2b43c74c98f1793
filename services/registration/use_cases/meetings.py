"""Meetings: staff create, edit, publish and cancel them, each with its events and deadlines in one transaction;
and what citizens and staff read of them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from services.registration import domain, tickets
from services.registration.domain import Meeting
from services.registration.schemas import MeetingIn
from services.registration.store import MEETINGS, Store
from services.registration.use_cases import callbacks
from services.registration.use_cases.common import (
    NOT_FOUND,
    Units,
    Urls,
    cancelled_event,
    pending,
    seats_event,
)
from services.registration.use_cases.registrations import promote
from services.registration.views import meeting_view
from shared.contracts.common import DeadlineKind
from shared.contracts.envelope import Payload
from shared.contracts.registration import (
    MeetingCancelledV1,
    MeetingChangedV1,
    MeetingPublishedV1,
    Venue,
)
from shared.errors import Conflict, Invalid, NotFound
from shared.unit_of_work import UnitOfWork

DEADLINE_KINDS = (DeadlineKind.REGISTRATION_CLOSES, DeadlineKind.MEETING_STARTS)


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
        raise domain.invalid(errors)


async def create(uow: UnitOfWork[Store], tenant: str, m: MeetingIn, *, now: datetime) -> dict[str, Any]:
    check(m)
    private, public = tickets.new_key_pair()
    mid = uuid4()
    async with uow:
        await uow.store.insert_meeting(mid, tenant, private, public, now, _columns(m))
        await _write_slots(uow.store, tenant, mid, m)
        meeting = await uow.store.meeting(mid)
        assert meeting is not None
        return await _view(uow.store, meeting)


async def _write_slots(store: Store, tenant: str, meeting_id: UUID, m: MeetingIn) -> None:
    existing = await store.slot_ids(meeting_id)
    keep = {s.id for s in m.slots if s.id is not None}
    unknown = keep - existing
    if unknown:
        raise Invalid("validation", detail=f"unknown slot ids {sorted(map(str, unknown))}")
    gone = existing - keep
    if gone:
        if await store.slots_in_use(list(gone)):
            raise Conflict("slot-in-use", "Slot in use", detail="a removed slot still has registrations")
        await store.delete_slots(list(gone))
    for s in m.slots:
        await store.put_slot(s.id or uuid4(), tenant, meeting_id, s.starts_at, s.ends_at, s.capacity)


async def snapshot(
    store: Store,
    meeting: Meeting,
    cls: type[MeetingPublishedV1] | type[MeetingChangedV1],
    urls: Urls,
) -> MeetingPublishedV1 | MeetingChangedV1:
    whole = await store.counts(meeting.id, whole=True)
    capacity = meeting.total_capacity
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
        url=urls.meeting(meeting.tenant, meeting.id),
    )


async def _deadlines(store: Store, meeting: Meeting) -> None:
    offsets = [timedelta(seconds=o) for o in meeting.reminder_offsets]
    await store.register_deadline(meeting, DeadlineKind.REGISTRATION_CLOSES, meeting.closes_at, offsets)
    await store.register_deadline(meeting, DeadlineKind.MEETING_STARTS, meeting.starts_at, offsets)


async def _locked(store: Store, tenant: str, meeting_id: UUID) -> Meeting:
    await store.lock_meeting(meeting_id)
    MEETINGS.forget(meeting_id)
    meeting = await store.meeting(meeting_id, tenant=tenant)
    if meeting is None:
        raise NotFound(NOT_FOUND, detail="no such meeting")
    return meeting


def _final() -> Conflict:
    return Conflict("meeting-cancelled", "Meeting cancelled", detail="a cancelled meeting is final")


async def update(
    uow: UnitOfWork[Store], tenant: str, meeting_id: UUID, m: MeetingIn, *, now: datetime, urls: Urls
) -> dict[str, Any]:
    """Edit a meeting. A published one announces the change; more seats promote the waiting list."""
    check(m)
    async with uow:
        store = uow.store
        before = await _locked(store, tenant, meeting_id)
        if before.status == "cancelled":
            raise _final()
        await store.update_meeting(meeting_id, now, _columns(m))
        await _write_slots(store, tenant, meeting_id, m)
        meeting = await store.meeting(meeting_id)
        assert meeting is not None
        await _check_capacity(store, meeting)
        if meeting.status == "published":
            events: list[Payload] = []
            for slot_id in meeting.pools():
                events += await promote(store, meeting, slot_id, now=now, urls=urls)
            await _call_the_moved(store, before, meeting, now)
            events.append(await snapshot(store, meeting, MeetingChangedV1, urls))
            events.append(await seats_event(store, meeting))
            await uow.write(pending(meeting, events))
            await _deadlines(store, meeting)
        view = await _view(store, meeting)
    MEETINGS.forget(meeting_id)  # again after commit: a read meanwhile may have cached the old state
    return view


async def _call_the_moved(store: Store, before: Meeting, after: Meeting, now: datetime) -> None:
    """People nobody can mail hear of a new time or place by phone: on the call-back list."""
    pools = domain.changed_for_attendees(before, after)
    if not pools:
        return
    concerned = [r for r in await store.active_contacts(after.id) if None in pools or r["slot_id"] in pools]
    await callbacks.call(store, after, concerned, "meeting_changed", now)


async def _check_capacity(store: Store, meeting: Meeting) -> None:
    """Lowering capacity below the seats already confirmed would silently overbook: refuse it."""
    for slot_id in meeting.pools():
        capacity = meeting.capacity_of(slot_id)
        if capacity is None:
            continue
        c = await store.counts(meeting.id, slot_id)
        if c.confirmed_seats > capacity:
            raise Conflict(
                "capacity-below-confirmed",
                "Capacity below confirmed seats",
                detail=f"{c.confirmed_seats} seats are confirmed; cancel registrations first",
                confirmed_seats=c.confirmed_seats,
            )


async def publish(
    uow: UnitOfWork[Store], tenant: str, meeting_id: UUID, *, now: datetime, urls: Urls
) -> dict[str, Any]:
    async with uow:
        store = uow.store
        meeting = await _locked(store, tenant, meeting_id)
        if meeting.status == "cancelled":
            raise _final()
        if meeting.status != "published":
            await store.publish_meeting(meeting_id, now)
            meeting.status = "published"
            await uow.write(pending(meeting, [await snapshot(store, meeting, MeetingPublishedV1, urls)]))
            await _deadlines(store, meeting)
        view = await _view(store, meeting)
    MEETINGS.forget(meeting_id)
    return view


async def cancel(
    uow: UnitOfWork[Store], tenant: str, meeting_id: UUID, reason: str | None, *, now: datetime
) -> dict[str, Any]:
    """Cancel the meeting and every registration of it; its deadlines no longer remind anyone."""
    async with uow:
        store = uow.store
        meeting = await _locked(store, tenant, meeting_id)
        if meeting.status != "cancelled":
            cancelled = await store.cancel_meeting(meeting_id, reason, now)
            meeting.status = "cancelled"
            events: list[Payload] = [MeetingCancelledV1(meeting_id=meeting_id, reason=reason)]
            for reg in cancelled:
                events.append(await cancelled_event(store, reg, "meeting_cancelled", None))
            # One call tells the cancellation; calls not made yet about this meeting are pointless now.
            await store.drop_open_callbacks([r["id"] for r in cancelled])
            await callbacks.call(store, meeting, cancelled, "meeting_cancelled", now)
            events.append(await seats_event(store, meeting))
            await uow.write(pending(meeting, events))
            for kind in DEADLINE_KINDS:
                await store.cancel_deadline(kind, meeting_id)
        view = await _view(store, meeting)
    MEETINGS.forget(meeting_id)
    return view


# --- queries -----------------------------------------------------------------------------------------------------


async def _view(store: Store, meeting: Meeting, *, staff: bool = True) -> dict[str, Any]:
    whole = await store.counts(meeting.id, whole=True)
    slots = {s.id: await store.counts(meeting.id, s.id) for s in meeting.slots}
    return meeting_view(meeting, whole, slots, staff=staff)


async def published(uows: Units, tenant: str) -> list[dict[str, Any]]:
    async with uows.reading() as store:
        return [await _view(store, m, staff=False) for m in await store.meetings(tenant, statuses=("published",))]


async def public_meeting(uows: Units, meeting_id: UUID) -> Meeting:
    """A meeting as anyone may see it: any but a draft."""
    async with uows.reading() as store:
        m = await store.meeting(meeting_id)
    if m is None or m.status == "draft":
        raise NotFound(NOT_FOUND, detail="no such meeting")
    return m


async def public_view(uows: Units, meeting_id: UUID) -> dict[str, Any]:
    async with uows.reading() as store:
        m = await store.meeting(meeting_id)
        if m is None or m.status == "draft":
            raise NotFound(NOT_FOUND, detail="no such meeting")
        return await _view(store, m, staff=False)


async def staff_meetings(uows: Units, tenant: str) -> list[dict[str, Any]]:
    async with uows.reading() as store:
        found = await store.meetings(tenant, statuses=("draft", "published", "cancelled"))
        return [await _view(store, m) for m in found]


async def staff_meeting(uows: Units, tenant: str, meeting_id: UUID) -> Meeting:
    """One of the tenant's meetings, whatever its status."""
    async with uows.reading() as store:
        m = await store.meeting(meeting_id, tenant=tenant)
    if m is None:
        raise NotFound(NOT_FOUND, detail="no such meeting")
    return m


async def staff_view(uows: Units, tenant: str, meeting_id: UUID) -> dict[str, Any]:
    async with uows.reading() as store:
        m = await store.meeting(meeting_id, tenant=tenant)
        if m is None:
            raise NotFound(NOT_FOUND, detail="no such meeting")
        return await _view(store, m)


async def revoked(uows: Units, tenant: str, meeting_id: UUID) -> dict[str, Any]:
    """The revocation list for scanners that verify tickets offline: cancelled registrations of the meeting."""
    async with uows.reading() as store:
        m = await store.meeting(meeting_id, tenant=tenant)
        if m is None:
            raise NotFound(NOT_FOUND, detail="no such meeting")
        return {"meeting_id": meeting_id, "public_key": m.public_key.hex(), "revoked": await store.revoked(meeting_id)}


async def export_rows(uows: Units, meeting: Meeting, *, attendance: bool) -> AsyncIterator[Any]:
    """A meeting's registrations (or only those checked in) for a staff file, read from a cursor."""
    async with uows() as uow:
        async for row in uow.store.export_rows(meeting.id, meeting.tenant, attendance=attendance):
            yield row
