"""What the API shows of meetings and registrations (public views leave out keys and personal data)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from services.registration import domain
from services.registration.domain import Counts, Meeting


def meeting_view(
    meeting: Meeting, whole: Counts, slot_counts: dict[UUID, Counts], *, staff: bool = False
) -> dict[str, Any]:
    """``whole``: the meeting's seat figures; ``slot_counts``: each slot's."""
    capacity = meeting.total_capacity
    slots = [
        {
            "id": s.id,
            "starts_at": s.starts_at,
            "ends_at": s.ends_at,
            "capacity": s.capacity,
            "seats_left": domain.seats_left(s.capacity, slot_counts[s.id].confirmed_seats),
        }
        for s in meeting.slots
    ]
    view: dict[str, Any] = {
        "id": meeting.id,
        "tenant": meeting.tenant,
        "status": meeting.status,
        "title": meeting.title,
        "description": meeting.description,
        "venue": meeting.venue,
        "starts_at": meeting.starts_at,
        "ends_at": meeting.ends_at,
        "timezone": "Europe/Berlin",
        "capacity": capacity,
        "seats_left": domain.seats_left(capacity, whole.confirmed_seats),
        "waitlist": meeting.waitlist,
        "registration_opens_at": meeting.registration_opens_at,
        "registration_closes_at": meeting.closes_at,
        "attestations": meeting.attestations,
        "questions": meeting.questions,
        "max_companions": meeting.max_companions,
        "min_age": meeting.min_age,
        "max_age": meeting.max_age,
        "guardian_consent": meeting.guardian_consent,
        "slots": slots,
        "process_id": meeting.process_id,
        "cancel_reason": meeting.cancel_reason,
    }
    if staff:
        view["confirmed_seats"] = whole.confirmed_seats
        view["waitlisted"] = whole.waitlisted
        view["reminder_offsets_hours"] = [o // 3600 for o in meeting.reminder_offsets]
        view["public_key"] = meeting.public_key.hex()
    return view


def registration_view(reg: dict[str, Any], *, position: int | None, manage_url: str | None) -> dict[str, Any]:
    return {
        "id": reg["id"],
        "meeting_id": reg["meeting_id"],
        "slot_id": reg["slot_id"],
        "status": reg["status"],
        "position": position,
        "seats": reg["seats"],
        "companions": reg["companions"],
        "channel": reg["channel"],
        "name": reg["name"],
        "email": reg["email"],
        "phone": reg["phone"],
        "locale": reg["locale"],
        "answers": reg["answers"],
        "attestations": reg["attestations"],
        "accessibility_needs": reg.get("accessibility_needs"),
        "ticket_code": reg["ticket_code"] if reg["status"] == "confirmed" else None,
        "manage_url": manage_url,
        "created_at": reg["created_at"],
        "confirmed_at": reg["confirmed_at"],
        "cancelled_at": reg["cancelled_at"],
        "cancelled_by": reg["cancelled_by"],
    }
