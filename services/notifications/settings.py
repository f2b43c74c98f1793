"""Settings of the notifications service, read from ``CIVIC_NOTIFICATIONS_*`` environment variables."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.notifications.domain import Policy
from shared.settings import LinkSettings, Settings

if TYPE_CHECKING:
    from shared.service import ServiceContext


class NotificationSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CIVIC_NOTIFICATIONS_", extra="ignore")

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 30.0
    #: Connected SMTP clients kept open and reused by the sender, one mail worker each. Each waits for an earlier
    #: mail's outcome to be committed before the next mail's content (``unrecorded_mails_per_connection``), so a
    #: rush needs many to keep pace (on two shared cores, 8 left a rush of 20,000 about 6 s behind its last
    #: answer, 16 one to three seconds); lower it where a provider limits connections per client.
    smtp_pool_size: int = 16
    #: How many mails of one SMTP connection may be out (sent, their outcome not yet committed) at once: a mail's
    #: content goes only once the outcome of the mail this many back on its connection is committed. After a
    #: crash at most this many per connection are sent again. With 1 the connection idles while each outcome
    #: commits; with 2 the next mail goes to the server meanwhile (a fan-out of 20,000 mails on two cores took
    #: 11.9 and 12.9 s instead of 13.5-16.1, alternated, with claims of 50; docs/notifications.md).
    unrecorded_mails_per_connection: int = Field(2, ge=1)
    from_address: str = "beteiligung@example.org"
    from_name: str = "civic"

    #: Key for unsubscribe and opt-in links and for the address hashes in the delivery log.
    signing_secret: str = "dev-only-notifications-secret-change-me"
    #: The base of the links in mails; unset, the installation's
    #: CIVIC_PUBLIC_BASE_URL, so one variable serves every service.
    public_base_url: str = ""
    #: The installation's link templates (CIVIC_LINK_*, shared/settings.py): confirm and unsubscribe pages.
    links: LinkSettings = Field(default_factory=LinkSettings)
    #: A folder with ``<tenant>/<locale>/<template>.j2`` files that replace the built-in templates.
    template_overrides_dir: str | None = None
    #: Thank people for coming after check-in.
    checkin_thanks: bool = False

    #: Deliveries a mail worker claims at a time (one worker per SMTP connection; SKIP LOCKED keeps their
    #: claims disjoint). Small enough that a crash delays few mails by the lease and a lease never outlasts its
    #: batch (50 mails take about a second on a busy connection); large enough that a fan-out claims rarely.
    sender_batch_size: int = 50
    sender_poll_seconds: float = 1.0
    #: How long the commit of a mail's outcome may wait for the outcomes of the process's other mails already
    #: on the wire, to commit them together (it waits only while there are such mails). Longer means fewer,
    #: larger statements: on two cores a fan-out of 30,000 mails cost the service and PostgreSQL about 446 µs a
    #: mail at 3 ms and 400 at 10 ms, and sent about 5 % more a second; a provider's answer takes longer still.
    outcome_linger_seconds: float = 0.010
    #: How long a claimed delivery may stay 'sending' before another sender takes it over.
    lease_seconds: float = 120.0
    email_max_attempts: int = 8
    #: Delay before the first retry of a temporarily failed mail; doubles each time (jittered), up to the maximum.
    email_retry_initial_seconds: float = 30.0
    email_retry_max_seconds: float = 3600.0

    #: Mails an hour at most to one inbox (``+tag`` addresses count as one) that no confirmed subscription
    #: vouches for: registrants and pending subscribers. Beyond it, mails are given up (and counted).
    unconfirmed_mails_per_hour: int = 10

    webhook_timeout_seconds: float = 30.0
    webhook_concurrency: int = 8
    #: Webhook deliveries claimed at a time: a batch takes up to ``webhook_timeout_seconds`` per
    #: ``webhook_concurrency`` of them, and must end within its lease (20 at 8 and 30 s: 90 s of 120).
    webhook_batch_size: int = 20
    #: Waits between webhook attempts (seconds, jittered by ±10 %); the sum is about three days.
    webhook_retry_schedule: list[float] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 50400.0, 72000.0, 72000.0]
    )
    #: Only for tests and local development: networks (``127.0.0.1/32``, optionally ``#<port>``) a webhook
    #: may reach although they are private. Empty in production.
    allow_private_targets: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _installation_base_url(self) -> NotificationSettings:
        if not self.public_base_url:
            self.public_base_url = Settings().public_base_url
        return self

    def policy(self) -> Policy:
        """What the rules (domain.py) need of these settings."""
        return Policy(self.signing_secret, self.unconfirmed_mails_per_hour)


def settings_of(ctx: ServiceContext) -> NotificationSettings:
    """The service's settings, read when it started (``ServiceDefinition(settings=NotificationSettings)``)."""
    return cast(NotificationSettings, ctx.own_settings)
