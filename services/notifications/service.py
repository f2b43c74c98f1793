"""How the notifications service plugs into the runtime: routes, subscription list, migrations, loops."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from services.notifications import repository
from services.notifications.api import LINKS, build_router
from services.notifications.handlers import Handlers
from services.notifications.rendering import Prototype, Templates
from services.notifications.sender import EmailSender, Recorder
from services.notifications.settings import NotificationSettings
from services.notifications.smtp import SmtpPool
from services.notifications.webhooks import WebhookSender
from shared.bus.wakeup import Wakeup
from shared.contracts.registry import REGISTRY
from shared.service import Loop, ServiceContext, ServiceDefinition, ServiceHandler

_R, _S, _C = "civic.registration", "civic.surveys", "civic.content"


def subscriptions(h: Handlers) -> dict[str, ServiceHandler]:
    """What the service reacts to. Every public event (but our own) may also go to webhook endpoints; private
    ones (personal data, sealed) never leave civic."""
    specific: dict[str, ServiceHandler] = {
        f"{_R}.meeting.published.v1": h.meeting_snapshot,
        f"{_R}.meeting.changed.v1": h.meeting_snapshot,
        f"{_R}.meeting.cancelled.v1": h.meeting_cancelled,
        f"{_R}.registration.confirmed.v1": h.registration_confirmed,
        f"{_R}.registration.promoted.v1": h.registration_confirmed,
        f"{_R}.registration.waitlisted.v1": h.registration_waitlisted,
        f"{_R}.registration.cancelled.v1": h.registration_cancelled,
        f"{_R}.registration.checked_in.v1": h.registration_checked_in,
        f"{_R}.registration.confirmed.v2": h.registration_confirmed,
        f"{_R}.registration.promoted.v2": h.registration_confirmed,
        f"{_R}.registration.waitlisted.v2": h.registration_waitlisted,
        f"{_R}.registration.cancelled.v2": h.registration_cancelled,
        f"{_R}.person.erased.v1": h.person_erased,
        f"{_R}.person.erased.v2": h.person_erased,
        f"{_R}.person.export_requested.v1": h.person_export_requested,
        f"{_R}.registrations.anonymised.v1": h.person_erased,
        f"{_R}.deadline.approaching.v1": h.deadline_approaching,
        f"{_S}.survey.published.v1": h.survey_snapshot,
        f"{_S}.survey.opened.v1": h.survey_snapshot,
        f"{_S}.deadline.approaching.v1": h.deadline_approaching,
        f"{_C}.content.published.v1": h.content_published,
        f"{_C}.phase.started.v1": h.process_seen,
    }
    webhook_types = [t for t in REGISTRY.public_types() if REGISTRY.get(t).producer != "notifications"]
    out = {t: with_webhooks(specific.get(t), h.webhooks) for t in webhook_types}
    return {**specific, **out}


def with_webhooks(handler: ServiceHandler | None, webhooks: ServiceHandler) -> ServiceHandler:
    if handler is None:
        return webhooks

    async def both(ctx, conn, event):  # type: ignore[no-untyped-def]
        await handler(ctx, conn, event)
        await webhooks(ctx, conn, event)

    return both


def senders(ctx: ServiceContext, s: NotificationSettings) -> list[Loop]:
    """One mail worker per SMTP connection, sharing the pool, the recorder (group commits) and prototypes."""
    templates = Templates(s.template_overrides_dir)
    smtp, recorder = SmtpPool(s), Recorder(ctx, s)
    prototypes: dict[tuple[Any, ...], Prototype] = {}
    # One LISTEN connection per process wakes every worker when deliveries are queued.
    wakeup = Wakeup(ctx.settings.database_url, repository.DELIVERIES_CHANNEL)
    mail: list[Loop] = [
        EmailSender(ctx, s, templates, smtp, recorder=recorder, prototypes=prototypes, wakeup=wakeup).run
        for _ in range(max(1, s.smtp_pool_size))
    ]
    return [wakeup.run, *mail, WebhookSender(ctx, s).run]


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
