"""Check-in at the door: the signature is checked with the meeting's public key, then the scan is recorded
once per nonce. Refusals carry a reason code a scanner can show."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import asyncpg

from services.registration import domain, store, tickets
from services.registration.commands import meeting_capacity
from shared.contracts.registration import RegistrationCheckedInV1
from shared.http.problems import Problem
from shared.service import ServiceContext


def refused(reason: str, detail: str, **ext: Any) -> Problem:
    return Problem(
        409, "Check-in refused", type_=f"checkin-{reason.replace('_', '-')}", detail=detail, reason=reason, **ext
    )


async def check_in(ctx: ServiceContext, tenant: str, meeting_id: UUID, code: str, nonce: str) -> dict[str, Any]:
    now = ctx.clock.now()
    async with ctx.pool.acquire() as conn, conn.transaction():
        meeting = await store.meeting(conn, meeting_id, tenant=tenant)
        if meeting is None:
            raise Problem(404, "Not found", detail="no such meeting")
        repeat = await conn.fetchrow(
            "select registration_id, checked_in_at from checkins where meeting_id = $1 and nonce = $2",
            meeting_id,
            nonce,
        )
        if repeat is not None:
            return {
                "status": "checked_in",
                "registration_id": repeat["registration_id"],
                "repeat": True,
                "checked_in_at": repeat["checked_in_at"],
            }
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
            other = await conn.fetchrow(
                "select id, public_key from meetings where tenant = $1 and substring(id::text, 1, 8) = $2 and id <> $3",
                tenant,
                claimed.meeting_prefix.hex(),
                meeting.id,
            )
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
        reg = await store.registration(conn, data.registration_id, tenant=tenant)
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
        try:
            async with conn.transaction():
                await conn.execute(
                    "insert into checkins (id, tenant, meeting_id, registration_id, nonce, checked_in_at) "
                    "values ($1, $2, $3, $4, $5, $6)",
                    uuid4(),
                    tenant,
                    meeting.id,
                    reg["id"],
                    nonce,
                    now,
                )
        except asyncpg.UniqueViolationError:
            again = await conn.fetchrow(
                "select nonce, checked_in_at from checkins where registration_id = $1", reg["id"]
            )
            if again is not None and again["nonce"] == nonce:
                return {
                    "status": "checked_in",
                    "registration_id": reg["id"],
                    "repeat": True,
                    "checked_in_at": again["checked_in_at"],
                }
            raise refused(
                "already_checked_in",
                "this ticket was already checked in",
                checked_in_at=again["checked_in_at"].isoformat() if again else None,
            ) from None
        await ctx.outbox.record(
            conn,
            RegistrationCheckedInV1(registration_id=reg["id"], meeting_id=meeting.id, checked_in_at=now),
            tenant=tenant,
            subject=f"meeting/{meeting.id}",
        )
        return {
            "status": "checked_in",
            "registration_id": reg["id"],
            "repeat": False,
            "checked_in_at": now,
            "name": reg["name"],
            "companions": reg["companions"],
        }


async def attendance(ctx: ServiceContext, tenant: str, meeting_id: UUID) -> dict[str, Any]:
    async with ctx.pool.acquire() as conn:
        meeting = await store.meeting(conn, meeting_id, tenant=tenant)
        if meeting is None:
            raise Problem(404, "Not found", detail="no such meeting")
        row = await conn.fetchrow(
            "select count(*) filter (where r.status = 'confirmed') as confirmed, "
            "coalesce(sum(r.seats) filter (where r.status = 'confirmed'), 0) as confirmed_seats, "
            "count(*) filter (where r.status = 'waitlisted') as waitlisted, "
            "count(*) filter (where r.status = 'cancelled') as cancelled, "
            "count(c.id) as checked_in, coalesce(sum(r.seats) filter (where c.id is not null), 0) as checked_in_seats "
            "from registrations r left join checkins c on c.registration_id = r.id where r.meeting_id = $1",
            meeting_id,
        )
        assert row is not None
        capacity = meeting_capacity(meeting)
        figures = {k: int(v) for k, v in dict(row).items()}
        confirmed = figures["confirmed"]
        return {
            "meeting_id": meeting_id,
            "capacity": capacity,
            "seats_left": domain.seats_left(capacity, figures["confirmed_seats"]),
            **figures,
            "no_shows": confirmed - figures["checked_in"],
            "attendance_rate": round(figures["checked_in"] / confirmed, 4) if confirmed else None,
        }
