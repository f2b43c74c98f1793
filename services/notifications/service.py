"""How the notifications service plugs into the runtime: routes, subscription list, migrations, loops."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from services.notifications.api import LINKS, build_router
from services.notifications.handlers import Handlers
from services.notifications.rendering import Templates
from services.notifications.sender import EmailSender
from services.notifications.settings import NotificationSettings
from services.notifications.smtp import SmtpPool
from services.notifications.webhooks import WebhookSender
from shared.contracts.registry import REGISTRY
from shared.service import Loop, ServiceContext, ServiceDefinition, ServiceHandler

_R, _S, _C = "civic.registration", "civic.surveys", "civic.content"


def subscriptions(h: Handlers) -> dict[str, ServiceHandler]:
    """What the service reacts to. Every event (but our own) may also go to webhook endpoints."""
    specific: dict[str, ServiceHandler] = {
        f"{_R}.meeting.published.v1": h.meeting_snapshot,
        f"{_R}.meeting.changed.v1": h.meeting_snapshot,
        f"{_R}.meeting.cancelled.v1": h.meeting_cancelled,
        f"{_R}.registration.confirmed.v1": h.registration_confirmed,
        f"{_R}.registration.promoted.v1": h.registration_confirmed,
        f"{_R}.registration.waitlisted.v1": h.registration_waitlisted,
        f"{_R}.registration.cancelled.v1": h.registration_cancelled,
        f"{_R}.registration.checked_in.v1": h.registration_checked_in,
        f"{_R}.person.erased.v1": h.person_erased,
        f"{_R}.registrations.anonymised.v1": h.person_erased,
        f"{_R}.deadline.approaching.v1": h.deadline_approaching,
        f"{_S}.survey.published.v1": h.survey_snapshot,
        f"{_S}.survey.opened.v1": h.survey_snapshot,
        f"{_S}.deadline.approaching.v1": h.deadline_approaching,
        f"{_C}.content.published.v1": h.content_published,
    }
    webhook_types = [s.type for s in REGISTRY if s.producer != "notifications"]
    return {t: with_webhooks(specific.get(t), h.webhooks) for t in webhook_types}


def with_webhooks(handler: ServiceHandler | None, webhooks: ServiceHandler) -> ServiceHandler:
    if handler is None:
        return webhooks

    async def both(ctx, conn, event):  # type: ignore[no-untyped-def]
        await handler(ctx, conn, event)
        await webhooks(ctx, conn, event)

    return both


def senders(ctx: ServiceContext, s: NotificationSettings) -> list[Loop]:
    """Mail senders sharing one SMTP pool (one claims and records while another's mails are on the wire)."""
    templates = Templates(s.template_overrides_dir)
    smtp = SmtpPool(s)
    mail: list[Loop] = [EmailSender(ctx, s, templates, smtp).run for _ in range(max(1, s.sender_loops))]
    return [*mail, WebhookSender(ctx, s).run]


class _FromEnvironment:
    """Settings read when first used, not at import: ``civic up`` sets the SMTP variables after importing."""

    def __init__(self) -> None:
        self._settings: NotificationSettings | None = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if self._settings is None:
            self._settings = NotificationSettings()
        return getattr(self._settings, name)


def build_definition(settings: NotificationSettings | None = None) -> ServiceDefinition:
    s = settings or cast(NotificationSettings, _FromEnvironment())
    return ServiceDefinition(
        name="notifications",
        router=build_router(s),
        migrations=Path(__file__).parent / "migrations",
        subscriptions=subscriptions(Handlers(s)),
        background=lambda ctx: senders(ctx, s),
        links=LINKS,
    )


definition = build_definition()
