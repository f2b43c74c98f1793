"""Check-in at the door: the signature is checked with the meeting's public key, then the scan is recorded
once per nonce. Refusals carry a reason code a scanner can show."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from services.registration import domain, tickets
from services.registration.store import Store
from services.registration.use_cases.common import NOT_FOUND, Units, subject
from shared.contracts.registration import RegistrationCheckedInV1
from shared.errors import Conflict, NotFound
from shared.unit_of_work import UnitOfWork


def refused(reason: str, detail: str, **ext: Any) -> Conflict:
    return Conflict(f"checkin-{reason.replace('_', '-')}", "Check-in refused", detail=detail, reason=reason, **ext)


#: Names found by the door search at most.
SEARCH_LIMIT = 50


def _who(reg: dict[str, Any] | None) -> dict[str, Any]:
    """Whom a check-in answer is about, so the door can say it by name."""
    return {"name": reg["name"] if reg else None, "companions": reg["companions"] if reg else None}


def _admitted(
    reg: dict[str, Any] | None, registration_id: UUID, checked_in_at: datetime, *, repeat: bool
) -> dict[str, Any]:
    return {
        "status": "checked_in",
        "registration_id": registration_id,
        "repeat": repeat,
        "checked_in_at": checked_in_at,
        **_who(reg),
    }


def _about(reg: dict[str, Any]) -> dict[str, Any]:
    """A refusal's extensions naming the registration (the door shows who stands there)."""
    return {"registration_id": str(reg["id"]), **_who(reg)}


def _seated(reg: dict[str, Any]) -> None:
    """Refused unless the registration holds a seat."""
    if reg["status"] == "cancelled":
        raise refused("revoked", "this registration was cancelled", **_about(reg))
    if reg["status"] != "confirmed" or reg["ticket_code"] is None:
        raise refused("unknown", "this registration holds no seat")


async def _admit(
    uow: UnitOfWork[Store], meeting: domain.Meeting, reg: dict[str, Any], nonce: str, now: datetime
) -> dict[str, Any]:
    """Record the check-in once (the same nonce again: answered as before) with its event."""
    store = uow.store
    if not await store.insert_checkin(uuid4(), meeting.tenant, meeting.id, reg["id"], nonce, now):
        again = await store.checkin_of(reg["id"])
        if again is not None and again["nonce"] == nonce:
            return _admitted(reg, reg["id"], again["checked_in_at"], repeat=True)
        raise refused(
            "already_checked_in",
            "this ticket was already checked in",
            checked_in_at=again["checked_in_at"].isoformat() if again else None,
            **_about(reg),
        )
    await uow.record(
        RegistrationCheckedInV1(registration_id=reg["id"], meeting_id=meeting.id, checked_in_at=now),
        tenant=meeting.tenant,
        subject=subject(meeting.id),
    )
    return _admitted(reg, reg["id"], now, repeat=False)


async def _door(store: Store, tenant: str, meeting_id: UUID, nonce: str) -> tuple[domain.Meeting, Any]:
    """The tenant's meeting, and the answer already given to this nonce (if any)."""
    meeting = await store.meeting(meeting_id, tenant=tenant)
    if meeting is None:
        raise NotFound(NOT_FOUND, detail="no such meeting")
    return meeting, await store.checkin_by_nonce(meeting_id, nonce)


async def check_in(
    uow: UnitOfWork[Store], tenant: str, meeting_id: UUID, code: str, nonce: str, *, now: datetime
) -> dict[str, Any]:
    async with uow:
        store = uow.store
        meeting, repeat = await _door(store, tenant, meeting_id, nonce)
        if repeat is not None:
            reg = await store.registration(repeat["registration_id"])
            return _admitted(reg, repeat["registration_id"], repeat["checked_in_at"], repeat=True)
        data, reason = tickets.check_offline(
            code,
            meeting.public_key,
            meeting.id,
            domain.local_day(now),
            domain.days_of(meeting.starts_at, meeting.ends_at),
            slotted=bool(meeting.slots),
        )
        if reason == "invalid_signature":
            # Signed by another of this tenant's meetings? Then it is a real ticket at the wrong door.
            try:
                claimed, _, _ = tickets.decode(code)
            except tickets.BadTicket:
                raise refused("invalid_signature", "not a ticket of this installation") from None
            other = await store.other_meeting_by_prefix(tenant, claimed.meeting_prefix.hex(), meeting.id)
            if other is not None:
                try:
                    tickets.verify(code, other["public_key"])
                except tickets.BadTicket:
                    pass
                else:
                    raise refused(
                        "wrong_meeting", "this ticket is for another meeting", ticket_meeting_id=str(other["id"])
                    )
            raise refused("invalid_signature", "the ticket's signature is not valid")
        assert data is not None
        if reason == "wrong_meeting":
            raise refused("wrong_meeting", "this ticket is for another meeting")
        reg = await store.registration(data.registration_id, tenant=tenant)
        if reg is None or reg["meeting_id"] != meeting.id:
            raise refused("unknown", "no such registration")
        _seated(reg)
        if reason == "invalid_time":
            raise refused(
                "invalid_time", f"this ticket is valid on {data.day.isoformat()}", valid_on=data.day.isoformat()
            )
        return await _admit(uow, meeting, reg, nonce, now)


async def check_in_registration(
    uow: UnitOfWork[Store], tenant: str, meeting_id: UUID, registration_id: UUID, nonce: str, *, now: datetime
) -> dict[str, Any]:
    """Check in by the registration (found by name at the door, the ticket missing): the same rules and answers
    as a ticket, without the ticket's day (staff at the door see the person)."""
    async with uow:
        store = uow.store
        meeting, repeat = await _door(store, tenant, meeting_id, nonce)
        if repeat is not None:
            reg = await store.registration(repeat["registration_id"])
            return _admitted(reg, repeat["registration_id"], repeat["checked_in_at"], repeat=True)
        reg = await store.registration(registration_id, tenant=tenant)
        if reg is None or reg["meeting_id"] != meeting.id:
            raise refused("unknown", "no such registration of this meeting")
        _seated(reg)
        return await _admit(uow, meeting, reg, nonce, now)


async def search(uows: Units, tenant: str, meeting_id: UUID, query: str) -> list[dict[str, Any]]:
    """Registrations of the meeting by name for the door: every word must occur in the name, case ignored."""
    words = query.split()
    async with uows.reading() as store:
        if await store.meeting(meeting_id, tenant=tenant) is None:
            raise NotFound(NOT_FOUND, detail="no such meeting")
        return await store.door_search(meeting_id, words, SEARCH_LIMIT) if words else []


async def attendance(uows: Units, tenant: str, meeting_id: UUID, *, now: datetime) -> dict[str, Any]:
    """Seat and door figures; no-shows (and the attendance rate) only once the meeting has started: before, nobody
    has failed to come yet."""
    async with uows.reading() as store:
        meeting = await store.meeting(meeting_id, tenant=tenant)
        if meeting is None:
            raise NotFound(NOT_FOUND, detail="no such meeting")
        figures = await store.attendance(meeting_id)
    capacity = meeting.total_capacity
    confirmed = figures["confirmed"]
    started = now >= meeting.starts_at
    return {
        "meeting_id": meeting_id,
        "capacity": capacity,
        "seats_left": domain.seats_left(capacity, figures["confirmed_seats"]),
        **figures,
        "no_shows": confirmed - figures["checked_in"] if started else None,
        "attendance_rate": round(figures["checked_in"] / confirmed, 4) if confirmed and started else None,
    }
