"""What the notifications service reacts to, and the handlers: each runs its use case in the consumer's
transaction (a joined unit of work), so the processed-event record and what the event changed commit together.
Nothing is sent here; the senders (loops.py) pick up what the use cases queued."""

from __future__ import annotations

from collections.abc import Sequence

from services.notifications import use_cases
from services.notifications.domain import Cause
from services.notifications.settings import settings_of
from services.notifications.store import Store
from services.notifications.use_cases import Cancelled, Confirmed, Erased, Uow, Waitlisted
from shared.contracts.common import DeadlineApproachingV1
from shared.contracts.content import ContentPublishedV1, PhaseStartedV1
from shared.contracts.envelope import Envelope
from shared.contracts.registration import (
    MeetingCancelledV1,
    MeetingChangedV1,
    MeetingDeadlineApproachingV1,
    MeetingPublishedV1,
    MeetingSnapshotV1,
    PersonErasedV1,
    PersonErasedV2,
    PersonExportRequestedV1,
    RegistrationCancelledV1,
    RegistrationCancelledV2,
    RegistrationCheckedInV1,
    RegistrationConfirmedV1,
    RegistrationConfirmedV2,
    RegistrationPromotedV1,
    RegistrationPromotedV2,
    RegistrationsAnonymisedV1,
    RegistrationWaitlistedV1,
    RegistrationWaitlistedV2,
)
from shared.contracts.registry import REGISTRY
from shared.contracts.surveys import SurveyDeadlineApproachingV1, SurveyOpenedV1, SurveyPublishedV1
from shared.db import Conn
from shared.service import ServiceContext, Subscription, on, on_batch


def _webhooks() -> list[Subscription]:
    """Every public event of the other services may also go to webhook endpoints (after the event's own
    handlers above, in the same transaction, a run of one type at once); private ones (personal data, sealed)
    never leave civic."""
    specs = [REGISTRY.get(t) for t in REGISTRY.public_types()]
    return [on_batch(s.payload, webhooks) for s in specs if s.producer != "notifications"]


# -- the subscription list ---------------------------------------------------------------------------------


def subscriptions() -> list[Subscription]:
    return [
        on(MeetingPublishedV1, meeting_snapshot),
        on(MeetingChangedV1, meeting_snapshot),
        on(MeetingCancelledV1, meeting_cancelled),
        on(RegistrationConfirmedV1, registration_confirmed),
        on(RegistrationPromotedV1, registration_confirmed),
        on(RegistrationWaitlistedV1, registration_waitlisted),
        on(RegistrationCancelledV1, registration_cancelled),
        on(RegistrationCheckedInV1, registration_checked_in),
        # A rush of registrations: a run of these at once (registrations_mailed), few statements for the run.
        on_batch(RegistrationConfirmedV2, registrations_mailed),
        on_batch(RegistrationPromotedV2, registrations_mailed),
        on_batch(RegistrationWaitlistedV2, registrations_mailed),
        on(RegistrationCancelledV2, registration_cancelled),
        on(PersonErasedV1, person_erased),
        on(PersonErasedV2, person_erased),
        on(PersonExportRequestedV1, person_export_requested),
        on(RegistrationsAnonymisedV1, person_erased),
        on(MeetingDeadlineApproachingV1, deadline_approaching),
        on(SurveyPublishedV1, survey_snapshot),
        on(SurveyOpenedV1, survey_snapshot),
        on(SurveyDeadlineApproachingV1, deadline_approaching),
        on(ContentPublishedV1, content_published),
        on(PhaseStartedV1, process_seen),
        *_webhooks(),
    ]


# -- the handlers ----------------------------------------------------------------------------------------------


def _uow(ctx: ServiceContext, conn: Conn) -> Uow:
    return ctx.uows(Store).joined(conn)


def _cause(ctx: ServiceContext, envelope: Envelope) -> Cause:
    return Cause(envelope.id, envelope.tenant, envelope.type, envelope.aggregatesequence, ctx.clock.now())


async def meeting_snapshot(ctx: ServiceContext, conn: Conn, envelope: Envelope, payload: MeetingSnapshotV1) -> None:
    await use_cases.meeting_snapshot(_uow(ctx, conn), _cause(ctx, envelope), payload)


async def meeting_cancelled(ctx: ServiceContext, conn: Conn, envelope: Envelope, payload: MeetingCancelledV1) -> None:
    await use_cases.meeting_cancelled(_uow(ctx, conn), _cause(ctx, envelope), payload)


async def survey_snapshot(
    ctx: ServiceContext, conn: Conn, envelope: Envelope, payload: SurveyPublishedV1 | SurveyOpenedV1
) -> None:
    await use_cases.survey_snapshot(_uow(ctx, conn), _cause(ctx, envelope), payload)


async def registration_confirmed(ctx: ServiceContext, conn: Conn, envelope: Envelope, payload: Confirmed) -> None:
    policy = settings_of(ctx).policy()
    await use_cases.registration_confirmed(_uow(ctx, conn), policy, _cause(ctx, envelope), payload)


async def registrations_mailed(
    ctx: ServiceContext, conn: Conn, events: Sequence[tuple[Envelope, Confirmed | Waitlisted]]
) -> None:
    policy = settings_of(ctx).policy()
    items = [(_cause(ctx, envelope), payload) for envelope, payload in events]
    await use_cases.registrations_mailed(_uow(ctx, conn), policy, items)


async def registration_waitlisted(ctx: ServiceContext, conn: Conn, envelope: Envelope, payload: Waitlisted) -> None:
    policy = settings_of(ctx).policy()
    await use_cases.registration_waitlisted(_uow(ctx, conn), policy, _cause(ctx, envelope), payload)


async def registration_cancelled(ctx: ServiceContext, conn: Conn, envelope: Envelope, payload: Cancelled) -> None:
    policy = settings_of(ctx).policy()
    await use_cases.registration_cancelled(_uow(ctx, conn), policy, _cause(ctx, envelope), payload)


async def registration_checked_in(
    ctx: ServiceContext, conn: Conn, envelope: Envelope, payload: RegistrationCheckedInV1
) -> None:
    s = settings_of(ctx)
    cause = _cause(ctx, envelope)
    await use_cases.registration_checked_in(_uow(ctx, conn), s.policy(), cause, payload, thanks=s.checkin_thanks)


async def person_erased(ctx: ServiceContext, conn: Conn, envelope: Envelope, payload: Erased) -> None:
    await use_cases.person_erased(_uow(ctx, conn), _cause(ctx, envelope), payload)


async def person_export_requested(
    ctx: ServiceContext, conn: Conn, envelope: Envelope, payload: PersonExportRequestedV1
) -> None:
    policy = settings_of(ctx).policy()
    await use_cases.contribute_export(_uow(ctx, conn), policy, _cause(ctx, envelope), payload)


async def deadline_approaching(
    ctx: ServiceContext, conn: Conn, envelope: Envelope, payload: DeadlineApproachingV1
) -> None:
    await use_cases.deadline_approaching(_uow(ctx, conn), _cause(ctx, envelope), payload)


async def process_seen(
    ctx: ServiceContext, conn: Conn, envelope: Envelope, payload: ContentPublishedV1 | PhaseStartedV1
) -> None:
    await use_cases.process_seen(_uow(ctx, conn), _cause(ctx, envelope), payload)


async def content_published(ctx: ServiceContext, conn: Conn, envelope: Envelope, payload: ContentPublishedV1) -> None:
    await use_cases.content_published(_uow(ctx, conn), _cause(ctx, envelope), payload)


async def webhooks(ctx: ServiceContext, conn: Conn, events: Sequence[tuple[Envelope, object]]) -> None:
    await use_cases.queue_webhooks(_uow(ctx, conn), [(_cause(ctx, envelope), envelope) for envelope, _ in events])


SUBSCRIPTIONS = subscriptions()
