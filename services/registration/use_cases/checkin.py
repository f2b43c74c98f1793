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


def _repeat(registration_id: UUID, checked_in_at: datetime) -> dict[str, Any]:
    return {"status": "checked_in", "registration_id": registration_id, "repeat": True, "checked_in_at": checked_in_at}


async def check_in(
    uow: UnitOfWork[Store], tenant: str, meeting_id: UUID, code: str, nonce: str, *, now: datetime
) -> dict[str, Any]:
    async with uow:
        store = uow.store
        meeting = await store.meeting(meeting_id, tenant=tenant)
        if meeting is None:
            raise NotFound(NOT_FOUND, detail="no such meeting")
        repeat = await store.checkin_by_nonce(meeting_id, nonce)
        if repeat is not None:
            return _repeat(repeat["registration_id"], repeat["checked_in_at"])
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
        if reg["status"] == "cancelled":
            raise refused("revoked", "this registration was cancelled")
        if reg["status"] != "confirmed" or reg["ticket_code"] is None:
            raise refused("unknown", "this registration holds no seat")
        if reason == "invalid_time":
            raise refused(
                "invalid_time", f"this ticket is valid on {data.day.isoformat()}", valid_on=data.day.isoformat()
            )
        if not await store.insert_checkin(uuid4(), tenant, meeting.id, reg["id"], nonce, now):
            again = await store.checkin_of(reg["id"])
            if again is not None and again["nonce"] == nonce:
                return _repeat(reg["id"], again["checked_in_at"])
            raise refused(
                "already_checked_in",
                "this ticket was already checked in",
                checked_in_at=again["checked_in_at"].isoformat() if again else None,
            )
        await uow.record(
            RegistrationCheckedInV1(registration_id=reg["id"], meeting_id=meeting.id, checked_in_at=now),
            tenant=tenant,
            subject=subject(meeting.id),
        )
        return {
            "status": "checked_in",
            "registration_id": reg["id"],
            "repeat": False,
            "checked_in_at": now,
            "name": reg["name"],
            "companions": reg["companions"],
        }


async def attendance(uows: Units, tenant: str, meeting_id: UUID) -> dict[str, Any]:
    async with uows.reading() as store:
        meeting = await store.meeting(meeting_id, tenant=tenant)
        if meeting is None:
            raise NotFound(NOT_FOUND, detail="no such meeting")
        figures = await store.attendance(meeting_id)
    capacity = meeting.total_capacity
    confirmed = figures["confirmed"]
    return {
        "meeting_id": meeting_id,
        "capacity": capacity,
        "seats_left": domain.seats_left(capacity, figures["confirmed_seats"]),
        **figures,
        "no_shows": confirmed - figures["checked_in"],
        "attendance_rate": round(figures["checked_in"] / confirmed, 4) if confirmed else None,
    }
