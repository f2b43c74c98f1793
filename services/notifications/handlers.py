"""Event handlers: keep the projections and queue deliveries, in the consumer's transaction. Nothing is sent
here; the senders (sender.py, webhooks.py) pick up what the handlers queued."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from services.notifications import domain, repository
from services.notifications.repository import EmailDelivery
from services.notifications.settings import NotificationSettings
from shared.bus.consumer import accept_newer
from shared.contracts.common import DeadlineApproachingV1
from shared.contracts.content import ContentPublishedV1, PhaseStartedV1
from shared.contracts.registration import (
    Contact,
    MeetingCancelledV1,
    MeetingSnapshotV1,
    PersonErasedV1,
    RegistrationCancelledV1,
    RegistrationCheckedInV1,
    RegistrationConfirmedV1,
    RegistrationPromotedV1,
    RegistrationsAnonymisedV1,
    RegistrationWaitlistedV1,
)
from shared.contracts.registry import REGISTRY, Event
from shared.contracts.surveys import SurveyOpenedV1, SurveyPublishedV1
from shared.db import Conn
from shared.service import ServiceContext

log = logging.getLogger(__name__)


class Handlers:
    def __init__(self, settings: NotificationSettings) -> None:
        self.settings = settings

    # -- projections ------------------------------------------------------------------------------------

    async def meeting_snapshot(self, ctx: ServiceContext, conn: Conn, event: Event) -> None:
        p = event.payload
        assert isinstance(p, MeetingSnapshotV1)
        if not await accept_newer(conn, f"meetings:{p.meeting_id}", event.envelope.aggregatesequence):
            return
        await repository.upsert_meeting(
            conn,
            event.envelope.tenant,
            {
                "meeting_id": p.meeting_id,
                "process_id": p.process_id,
                "title": p.title,
                "starts_at": p.starts_at,
                "ends_at": p.ends_at,
                "timezone": p.timezone,
                "venue": p.venue.model_dump() if p.venue else None,
                "url": p.url,
            },
        )

    async def meeting_cancelled(self, ctx: ServiceContext, conn: Conn, event: Event) -> None:
        p = event.payload
        assert isinstance(p, MeetingCancelledV1)
        # Registrants hear of it through the RegistrationCancelled (meeting_cancelled) of each registration.
        await conn.execute(
            "update meetings set cancelled = true where tenant = $1 and meeting_id = $2",
            event.envelope.tenant,
            p.meeting_id,
        )

    async def survey_snapshot(self, ctx: ServiceContext, conn: Conn, event: Event) -> None:
        p = event.payload
        assert isinstance(p, SurveyPublishedV1 | SurveyOpenedV1)
        await conn.execute(
            "insert into surveys (tenant, survey_id, process_id, title, closes_at, url)"
            " values ($1, $2, $3, $4, $5, $6) on conflict (survey_id) do update set"
            " process_id = coalesce(excluded.process_id, surveys.process_id), title = excluded.title,"
            " closes_at = excluded.closes_at, url = coalesce(excluded.url, surveys.url)"
            " where surveys.tenant = excluded.tenant",
            event.envelope.tenant,
            p.survey_id,
            p.process_id,
            p.title,
            p.closes_at,
            getattr(p, "url", None),
        )

    # -- registrations ----------------------------------------------------------------------------------

    async def _registration(
        self, conn: Conn, event: Event, *, registration_id: UUID, meeting_id: UUID, status: str, contact: Contact | None
    ) -> Any:
        """Update the projection; None if the event is older than what it already shows."""
        if not await accept_newer(conn, f"registrations:{registration_id}", event.envelope.aggregatesequence):
            return None
        tenant = event.envelope.tenant
        email = contact.email if contact else None
        await repository.upsert_registration(
            conn,
            tenant=tenant,
            registration_id=registration_id,
            meeting_id=meeting_id,
            status=status,
            address=email,
            email_sha256=domain.email_sha256(email) if email else None,
            recipient_key=domain.recipient_key(self.settings.signing_secret, email) if email else None,
            name=contact.name if contact else None,
            locale=contact.locale if contact else None,
        )
        return await repository.registration(conn, tenant, registration_id)

    async def _mail_registrant(
        self, ctx: ServiceContext, conn: Conn, event: Event, row: Any, template: str, personal: dict[str, Any]
    ) -> None:
        if row is None or not row["address"]:
            return
        await repository.enqueue_email(
            conn,
            EmailDelivery(
                tenant=event.envelope.tenant,
                cause_event_id=event.envelope.id,
                recipient_key=row["recipient_key"],
                address=row["address"],
                template=template,
                transactional=True,
                locale=row["locale"],
                registration_id=row["registration_id"],
                meeting_id=row["meeting_id"],
                personal={"name": row["name"] or "", **personal},
            ),
            ctx.clock.now(),
            self._cap(row["address"]),
        )

    def _cap(self, address: str) -> repository.Cap:
        s = self.settings
        return repository.Cap(domain.mailbox_key(s.signing_secret, address), s.unconfirmed_mails_per_hour)

    async def registration_confirmed(self, ctx: ServiceContext, conn: Conn, event: Event) -> None:
        p = event.payload
        assert isinstance(p, RegistrationConfirmedV1 | RegistrationPromotedV1)
        row = await self._registration(
            conn,
            event,
            registration_id=p.registration_id,
            meeting_id=p.meeting_id,
            status="confirmed",
            contact=p.contact,
        )
        template = "promoted" if isinstance(p, RegistrationPromotedV1) else "confirmed"
        personal = {
            "ticket_code": p.ticket_code,
            "manage_url": p.manage_url,
            "companions": getattr(p, "companions", 0),
        }
        await self._mail_registrant(ctx, conn, event, row, template, personal)

    async def registration_waitlisted(self, ctx: ServiceContext, conn: Conn, event: Event) -> None:
        p = event.payload
        assert isinstance(p, RegistrationWaitlistedV1)
        row = await self._registration(
            conn,
            event,
            registration_id=p.registration_id,
            meeting_id=p.meeting_id,
            status="waitlisted",
            contact=p.contact,
        )
        await self._mail_registrant(
            ctx, conn, event, row, "waitlisted", {"position": p.position, "manage_url": p.manage_url}
        )

    async def registration_cancelled(self, ctx: ServiceContext, conn: Conn, event: Event) -> None:
        p = event.payload
        assert isinstance(p, RegistrationCancelledV1)
        row = await self._registration(
            conn,
            event,
            registration_id=p.registration_id,
            meeting_id=p.meeting_id,
            status="cancelled",
            contact=p.contact,
        )
        await self._mail_registrant(ctx, conn, event, row, f"cancelled_{p.cancelled_by.removesuffix('_cancelled')}", {})

    async def registration_checked_in(self, ctx: ServiceContext, conn: Conn, event: Event) -> None:
        p = event.payload
        assert isinstance(p, RegistrationCheckedInV1)
        row = await self._registration(
            conn, event, registration_id=p.registration_id, meeting_id=p.meeting_id, status="checked_in", contact=None
        )
        if self.settings.checkin_thanks:
            await self._mail_registrant(ctx, conn, event, row, "checked_in", {})

    async def person_erased(self, ctx: ServiceContext, conn: Conn, event: Event) -> None:
        p = event.payload
        assert isinstance(p, PersonErasedV1 | RegistrationsAnonymisedV1)
        tenant = event.envelope.tenant
        await repository.erase_registrations(conn, tenant, list(p.registration_ids))
        if isinstance(p, PersonErasedV1) and p.email_sha256:
            # The person asked to be forgotten: their news subscriptions go too.
            await repository.erase_recipient(conn, tenant, p.email_sha256)

    # -- reminders and news -----------------------------------------------------------------------------

    async def deadline_approaching(self, ctx: ServiceContext, conn: Conn, event: Event) -> None:
        p = event.payload
        assert isinstance(p, DeadlineApproachingV1)
        env = event.envelope
        tenant, now = env.tenant, ctx.clock.now()
        await repository.record_cause(
            conn, env.id, tenant, env.type, {"due_at": p.due_at.isoformat(), "kind": p.kind, "title": p.title}
        )
        try:
            subject = UUID(p.subject_id)
        except ValueError:
            log.warning("deadline subject is not an id", extra={"kind": p.kind, "subject_id": p.subject_id})
            return
        if p.kind == "meeting_starts":
            await repository.fan_out_to_registrants(
                conn,
                tenant=tenant,
                cause_event_id=env.id,
                meeting_id=subject,
                template="reminder_meeting_starts",
                now=now,
            )
        elif p.kind == "registration_closes":
            process_id = await conn.fetchval(
                "select process_id from meetings where tenant = $1 and meeting_id = $2 and not cancelled",
                tenant,
                subject,
            )
            if process_id is not None:
                await repository.fan_out_to_subscribers(
                    conn,
                    tenant=tenant,
                    cause_event_id=env.id,
                    process_id=process_id,
                    template="reminder_registration_closes",
                    preference="reminders",
                    now=now,
                    meeting_id=subject,
                    skip_registered_for=subject,
                )
        elif p.kind == "survey_closes":
            process_id = await conn.fetchval(
                "select process_id from surveys where tenant = $1 and survey_id = $2", tenant, subject
            )
            if process_id is not None:
                await repository.fan_out_to_subscribers(
                    conn,
                    tenant=tenant,
                    cause_event_id=env.id,
                    process_id=process_id,
                    template="reminder_survey_closes",
                    preference="reminders",
                    now=now,
                    survey_id=subject,
                )

    async def process_seen(self, ctx: ServiceContext, conn: Conn, event: Event) -> None:
        """A process content published or started a phase of: it exists, so it can be subscribed to."""
        p = event.payload
        assert isinstance(p, ContentPublishedV1 | PhaseStartedV1)
        if p.process_id is not None:
            await repository.remember_process(conn, event.envelope.tenant, p.process_id)

    async def content_published(self, ctx: ServiceContext, conn: Conn, event: Event) -> None:
        p = event.payload
        assert isinstance(p, ContentPublishedV1)
        await self.process_seen(ctx, conn, event)
        if p.kind != "news" or p.process_id is None:
            return
        env = event.envelope
        await repository.record_cause(
            conn, env.id, env.tenant, env.type, {"news": {"title": p.title, "summary": p.summary, "url": p.url}}
        )
        await repository.fan_out_to_subscribers(
            conn,
            tenant=env.tenant,
            cause_event_id=env.id,
            process_id=p.process_id,
            template="news",
            preference="news",
            now=ctx.clock.now(),
        )

    # -- webhooks ---------------------------------------------------------------------------------------

    async def webhooks(self, ctx: ServiceContext, conn: Conn, event: Event) -> None:
        """Queue the event for every endpoint of its tenant that asked for its type, without personal data."""
        env = event.envelope
        endpoints = await conn.fetch(
            "select id, event_types from webhook_endpoints where tenant = $1 and enabled", env.tenant
        )
        wanted = [e["id"] for e in endpoints if domain.matches(e["event_types"], env.type)]
        if not wanted:
            return
        body = domain.strip_personal(env.model_dump(mode="json"), REGISTRY.get(env.type).personal_fields)
        await conn.executemany(
            "insert into deliveries (tenant, cause_event_id, channel, recipient_key, template, transactional,"
            " endpoint_id, body, next_attempt_at, created_at)"
            " values ($1, $2, 'webhook', $3, $4, true, $5, $6, $7, $7)"
            " on conflict (cause_event_id, recipient_key, channel) do nothing",
            [(env.tenant, env.id, f"endpoint:{eid}", env.type, eid, _json(body), ctx.clock.now()) for eid in wanted],
        )


def _json(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
