"""The live state of meetings and surveys, kept from the registration and surveys services' events.

Events of one meeting share the subject ``meeting/<id>`` and its sequence. Snapshots (published, changed,
cancelled) and seat counts are applied independently, each only if newer than what that part last applied
(``accept_newer`` on ``<subject>#snapshot`` and ``<subject>#seats``), so a late snapshot cannot roll seats
back and a seat count arriving before the snapshot is not lost. Registration events whose subject is not the
meeting (for example ``registration/<id>``) carry no meeting sequence; their seat counts are applied as they come.
"""

from __future__ import annotations

from uuid import UUID

from services.content.repository import dump
from shared.bus.consumer import accept_newer
from shared.contracts import registration as reg
from shared.contracts import surveys as sv
from shared.contracts.registry import Event
from shared.db import Conn
from shared.service import ServiceContext


def _part(event: Event, meeting_id: UUID, part: str) -> tuple[str, int | None]:
    env = event.envelope
    if env.subject == f"meeting/{meeting_id}":
        return f"{env.subject}#{part}", env.aggregatesequence
    return f"meeting/{meeting_id}#{part}:{env.subject}", None


async def meeting_snapshot(ctx: ServiceContext, conn: Conn, event: Event) -> None:
    p = event.payload
    assert isinstance(p, reg.MeetingSnapshotV1)
    key, seq = _part(event, p.meeting_id, "snapshot")
    if not await accept_newer(conn, key, seq):
        return
    await conn.execute(
        "insert into meeting_state (tenant, meeting_id, title, starts_at, ends_at, venue, capacity,"
        " waitlist, registration_opens_at, registration_closes_at, url, cancelled, updated_at)"
        " values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, false, $12)"
        " on conflict (tenant, meeting_id) do update set title = excluded.title, starts_at = excluded.starts_at,"
        " ends_at = excluded.ends_at, venue = excluded.venue, capacity = excluded.capacity,"
        " waitlist = excluded.waitlist, registration_opens_at = excluded.registration_opens_at,"
        " registration_closes_at = excluded.registration_closes_at, url = excluded.url,"
        " updated_at = excluded.updated_at",
        event.envelope.tenant,
        p.meeting_id,
        p.title,
        p.starts_at,
        p.ends_at,
        dump(p.venue.model_dump(exclude_none=True)) if p.venue else None,
        p.capacity,
        p.waitlist,
        p.registration_opens_at,
        p.registration_closes_at,
        p.url,
        ctx.clock.now(),
    )
    # The snapshot's seat count competes with seat events on the same sequence: the later one wins.
    if p.seats_left is not None:
        seats_key, _ = _part(event, p.meeting_id, "seats")
        if await accept_newer(conn, seats_key, seq):
            await conn.execute(
                "update meeting_state set seats_left = $3 where tenant = $1 and meeting_id = $2",
                event.envelope.tenant,
                p.meeting_id,
                p.seats_left,
            )


async def meeting_cancelled(ctx: ServiceContext, conn: Conn, event: Event) -> None:
    p = event.payload
    assert isinstance(p, reg.MeetingCancelledV1)
    key, seq = _part(event, p.meeting_id, "snapshot")
    if not await accept_newer(conn, key, seq):
        return
    await conn.execute(
        "insert into meeting_state (tenant, meeting_id, cancelled, updated_at) values ($1, $2, true, $3)"
        " on conflict (tenant, meeting_id) do update set cancelled = true, updated_at = excluded.updated_at",
        event.envelope.tenant,
        p.meeting_id,
        ctx.clock.now(),
    )


async def seats_changed(ctx: ServiceContext, conn: Conn, event: Event) -> None:
    """SeatsChangedV1 and the registration events that carry ``seats_left``."""
    p = event.payload
    assert isinstance(
        p,
        reg.SeatsChangedV1 | reg.RegistrationConfirmedV1 | reg.RegistrationCancelledV1 | reg.RegistrationPromotedV1,
    )
    if p.seats_left is None and not isinstance(p, reg.SeatsChangedV1):
        return
    key, seq = _part(event, p.meeting_id, "seats")
    if not await accept_newer(conn, key, seq):
        return
    capacity = p.capacity if isinstance(p, reg.SeatsChangedV1) else None
    await conn.execute(
        "insert into meeting_state (tenant, meeting_id, capacity, seats_left, updated_at)"
        " values ($1, $2, $3, $4, $5)"
        " on conflict (tenant, meeting_id) do update set seats_left = excluded.seats_left,"
        " capacity = coalesce(excluded.capacity, meeting_state.capacity), updated_at = excluded.updated_at",
        event.envelope.tenant,
        p.meeting_id,
        capacity,
        p.seats_left,
        ctx.clock.now(),
    )


async def survey_published(ctx: ServiceContext, conn: Conn, event: Event) -> None:
    p = event.payload
    assert isinstance(p, sv.SurveyPublishedV1)
    if not await accept_newer(
        conn, f"survey/{p.survey_id}#state:{event.envelope.subject}", event.envelope.aggregatesequence
    ):
        return
    await conn.execute(
        "insert into survey_state (tenant, survey_id, title, opens_at, closes_at, url, updated_at)"
        " values ($1, $2, $3, $4, $5, $6, $7) on conflict (tenant, survey_id) do update set"
        " title = excluded.title, opens_at = excluded.opens_at, closes_at = excluded.closes_at,"
        " url = excluded.url, updated_at = excluded.updated_at",
        event.envelope.tenant,
        p.survey_id,
        p.title,
        p.opens_at,
        p.closes_at,
        p.url,
        ctx.clock.now(),
    )


async def survey_opened(ctx: ServiceContext, conn: Conn, event: Event) -> None:
    p = event.payload
    assert isinstance(p, sv.SurveyOpenedV1)
    # Opening carries the (possibly moved) closing time; it never undoes a close that already arrived.
    await conn.execute(
        "insert into survey_state (tenant, survey_id, title, closes_at, updated_at) values ($1, $2, $3, $4, $5)"
        " on conflict (tenant, survey_id) do update set title = coalesce(survey_state.title, excluded.title),"
        " closes_at = excluded.closes_at, updated_at = excluded.updated_at",
        event.envelope.tenant,
        p.survey_id,
        p.title,
        p.closes_at,
        ctx.clock.now(),
    )


async def survey_closed(ctx: ServiceContext, conn: Conn, event: Event) -> None:
    p = event.payload
    assert isinstance(p, sv.SurveyClosedV1)
    # Closing is final: whatever arrives later for this survey keeps closed_at.
    await conn.execute(
        "insert into survey_state (tenant, survey_id, closed_at, responses, updated_at) values ($1, $2, $3, $4, $5)"
        " on conflict (tenant, survey_id) do update set closed_at = excluded.closed_at,"
        " responses = excluded.responses, updated_at = excluded.updated_at",
        event.envelope.tenant,
        p.survey_id,
        p.closed_at,
        p.responses,
        ctx.clock.now(),
    )
