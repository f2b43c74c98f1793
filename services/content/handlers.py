"""What the content service receives: the live state of the meetings and surveys process pages refer to.

Events of one meeting share the subject ``meeting/<id>`` and its sequence. Snapshots (published, changed,
cancelled) and seat counts are applied independently, each only if newer than what that part last applied
(``accept_newer`` on ``<subject>#snapshot`` and ``<subject>#seats``), so a late snapshot cannot roll seats
back and a seat count arriving before the snapshot is not lost. Seat counts come from seats_changed only: the
per-registration events are private (docs/privacy.md).
"""

from __future__ import annotations

from uuid import UUID

from services.content.store import Store
from shared.contracts.envelope import Envelope
from shared.contracts.registration import (
    MeetingCancelledV1,
    MeetingChangedV1,
    MeetingPublishedV1,
    MeetingSnapshotV1,
    SeatsChangedV1,
)
from shared.contracts.surveys import SurveyClosedV1, SurveyOpenedV1, SurveyPublishedV1
from shared.db import Conn
from shared.service import ServiceContext, on


async def meeting_snapshot(ctx: ServiceContext, conn: Conn, envelope: Envelope, payload: MeetingSnapshotV1) -> None:
    async with ctx.uows(Store).joined(conn) as uow:
        key, seq = _part(envelope, payload.meeting_id, "snapshot")
        if not await uow.store.accept_newer(key, seq):
            return
        now = ctx.clock.now()
        venue = payload.venue.model_dump(exclude_none=True) if payload.venue else None
        await uow.store.meeting_snapshot(envelope.tenant, {**payload.model_dump(), "venue": venue}, now)
        # The snapshot's seat count competes with seat events on the same sequence: the later one wins.
        if payload.seats_left is not None:
            seats_key, _ = _part(envelope, payload.meeting_id, "seats")
            if await uow.store.accept_newer(seats_key, seq):
                await uow.store.set_meeting_seats(envelope.tenant, payload.meeting_id, payload.seats_left)


async def meeting_cancelled(ctx: ServiceContext, conn: Conn, envelope: Envelope, payload: MeetingCancelledV1) -> None:
    async with ctx.uows(Store).joined(conn) as uow:
        key, seq = _part(envelope, payload.meeting_id, "snapshot")
        if await uow.store.accept_newer(key, seq):
            await uow.store.meeting_cancelled(envelope.tenant, payload.meeting_id, ctx.clock.now())


async def seats_changed(ctx: ServiceContext, conn: Conn, envelope: Envelope, payload: SeatsChangedV1) -> None:
    async with ctx.uows(Store).joined(conn) as uow:
        key, seq = _part(envelope, payload.meeting_id, "seats")
        if await uow.store.accept_newer(key, seq):
            await uow.store.meeting_seats(
                envelope.tenant, payload.meeting_id, payload.capacity, payload.seats_left, ctx.clock.now()
            )


async def survey_published(ctx: ServiceContext, conn: Conn, envelope: Envelope, payload: SurveyPublishedV1) -> None:
    async with ctx.uows(Store).joined(conn) as uow:
        key = f"survey/{payload.survey_id}#state:{envelope.subject}"
        if await uow.store.accept_newer(key, envelope.aggregatesequence):
            await uow.store.survey_published(
                envelope.tenant,
                payload.survey_id,
                payload.title,
                payload.opens_at,
                payload.closes_at,
                payload.url,
                ctx.clock.now(),
            )


async def survey_opened(ctx: ServiceContext, conn: Conn, envelope: Envelope, payload: SurveyOpenedV1) -> None:
    async with ctx.uows(Store).joined(conn) as uow:
        await uow.store.survey_opened(
            envelope.tenant, payload.survey_id, payload.title, payload.closes_at, ctx.clock.now()
        )


async def survey_closed(ctx: ServiceContext, conn: Conn, envelope: Envelope, payload: SurveyClosedV1) -> None:
    async with ctx.uows(Store).joined(conn) as uow:
        await uow.store.survey_closed(
            envelope.tenant, payload.survey_id, payload.closed_at, payload.responses, ctx.clock.now()
        )


# The live state of referenced meetings and surveys on public process pages.
SUBSCRIPTIONS = [
    on(MeetingPublishedV1, meeting_snapshot),
    on(MeetingChangedV1, meeting_snapshot),
    on(MeetingCancelledV1, meeting_cancelled),
    on(SeatsChangedV1, seats_changed),
    on(SurveyPublishedV1, survey_published),
    on(SurveyOpenedV1, survey_opened),
    on(SurveyClosedV1, survey_closed),
]


def _part(envelope: Envelope, meeting_id: UUID, part: str) -> tuple[str, int | None]:
    """The ``accept_newer`` key and sequence of one part of a meeting's state. Events whose subject is not the
    meeting (``registration/<id>``) carry no meeting sequence: they are applied as they come."""
    if envelope.subject == f"meeting/{meeting_id}":
        return f"{envelope.subject}#{part}", envelope.aggregatesequence
    return f"meeting/{meeting_id}#{part}:{envelope.subject}", None
