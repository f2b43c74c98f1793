"""12-factor settings, read from the environment once per process (see the table in README.md)."""

from __future__ import annotations

import ipaddress
import json
from functools import lru_cache
from typing import Annotated, Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_JWT_SECRET = "dev-only-secret-change-me-in-production-0123456789"
DEV_PRIVACY_SECRET = "dev-only-privacy-secret-change-me-0123456789"


# -- Link templates: where every link civic prints (mails, QR codes, .ics, events' url fields, pages) points. ------
# One place for the whole installation: CIVIC_LINK_<NAME>, a path relative to CIVIC_PUBLIC_BASE_URL (or an absolute
# https:// address for a municipality's own front end) with {placeholders}. Defaults point at the web client (web/).

#: The placeholders each template must use, no more and no fewer.
LINK_PLACEHOLDERS: dict[str, frozenset[str]] = {
    "meeting": frozenset({"tenant", "meeting_id"}),
    "ics": frozenset({"tenant", "meeting_id"}),
    "manage": frozenset({"secret"}),
    "survey": frozenset({"tenant", "slug"}),
    "process": frozenset({"tenant", "slug"}),
    "news": frozenset({"tenant", "slug"}),
    "page": frozenset({"tenant", "slug"}),
    "subscription_confirm": frozenset({"token"}),
    "unsubscribe": frozenset({"token"}),
    "short_link_missing": frozenset({"code"}),
}


class LinkSettings(BaseSettings):
    """``CIVIC_LINK_*``: the link patterns of the installation (see shared/links.py for filling them in)."""

    model_config = SettingsConfigDict(env_prefix="CIVIC_LINK_", extra="ignore")

    meeting: str = "/{tenant}/termine/{meeting_id}"
    ics: str = "/{tenant}/termine/{meeting_id}/termin.ics"
    manage: str = "/anmeldung/{secret}"
    survey: str = "/umfrage/{tenant}/{slug}"
    process: str = "/{tenant}/verfahren/{slug}"
    news: str = "/{tenant}/neuigkeiten/{slug}"
    page: str = "/{tenant}/seiten/{slug}"
    subscription_confirm: str = "/abo/bestaetigen?token={token}"
    unsubscribe: str = "/abo/abbestellen?token={token}"
    short_link_missing: str = "/kurzlink/{code}"

    @field_validator("*")
    @classmethod
    def _placeholders(cls, v: str, info: object) -> str:
        import string

        name = getattr(info, "field_name", "")
        used = {f for _, f, _, _ in string.Formatter().parse(v) if f is not None}
        wanted = LINK_PLACEHOLDERS[name]
        if used != wanted:
            raise ValueError(f"CIVIC_LINK_{name.upper()} must use exactly {sorted(wanted)}, not {sorted(used)}")
        if not (v.startswith("/") or v.startswith("https://") or v.startswith("http://")):
            raise ValueError(f"CIVIC_LINK_{name.upper()} must be a path starting with / or an http(s) address")
        return v


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CIVIC_", extra="ignore")

    database_url: str = Field("postgresql://postgres@127.0.0.1:5432/postgres", validation_alias="DATABASE_URL")
    redis_url: str = Field("redis://127.0.0.1:6379/0", validation_alias="REDIS_URL")
    stream_prefix: str = "civic"
    consumer_name: str | None = None
    public_base_url: str = "http://localhost:8000"

    jwt_secret: str = DEV_JWT_SECRET
    jwt_algorithm: str = "HS256"
    jwt_public_key: str | None = None
    production: bool = False
    #: Staff tokens living longer than this (from issue or from now) are refused.
    jwt_max_lifetime_hours: float = 24 * 30

    # -- the client's address and rate limits (shared/http/clients.py, shared/http/ratelimit.py) --------
    #: Addresses or networks of the proxies whose X-Forwarded-For is believed (the gateway, the web process);
    #: comma-separated or a JSON list. Loopback only by default.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
    #: Off switch for every rate limit (tests and benchmarks that send a flood on purpose).
    rate_limits: bool = True

    relay_batch_size: int = 500
    relay_poll_seconds: float = 1.0
    #: Passes of the relay begin at least this far apart: in a rush, the wake-ups of many commits (and of both
    #: replicas' relays) become one pass of many rows; after a quiet spell an event goes out at once.
    relay_spacing_seconds: float = 0.05
    consumer_batch_size: int = 100
    consumer_block_ms: int = 1000
    reclaim_idle_ms: int = 30_000
    reclaim_interval_seconds: float = 5.0
    max_deliveries: int = 5
    maintenance_interval_seconds: float = 5.0
    outbox_retention_hours: int = 24 * 7
    processed_retention_hours: int = 24 * 30
    deadline_interval_seconds: float = 10.0
    deadline_late_after_seconds: int = 300

    # Stream entries: the field the relay writes the CloudEvent to. "__data__" (FastStream reads it as the
    # body); "event" only while processes of a version that reads nothing else still run (docs/events.md).
    stream_event_field: Literal["__data__", "event"] = "__data__"

    # Privacy (docs/privacy.md): the installation's key for the keyed HMACs that stand for a person on the bus
    # (person.erased) and in stored pseudonyms. Shared by every service; never leaves the installation.
    privacy_secret: str = DEV_PRIVACY_SECRET

    #: Link templates (CIVIC_LINK_*), read with the other settings.
    links: LinkSettings = Field(default_factory=LinkSettings)

    # Seconds a new PostgreSQL connection may take (asyncpg waits 60 by default): during a failover to an
    # address that does not answer, requests get their 503 after this long instead of hanging.
    db_connect_timeout_seconds: float = 5.0

    # Redis behind Sentinel: "host:port,host:port,..." of the sentinels and the name they monitor. REDIS_URL
    # then only gives the database number and credentials. See deploy/README.md for what each choice keeps.
    redis_sentinels: str | None = None
    redis_master_name: str = "civic"
    # The relay asks Redis to confirm that this many replicas have each batch (WAIT) before marking it
    # published; 0 does not wait. Past the timeout the batch is marked anyway (and counted in
    # civic_relay_replication_timeouts_total): what a failover then loses, the relay publishes again.
    redis_wait_replicas: int = 0
    redis_wait_timeout_ms: int = 500

    # Redis that keeps nothing on disk by design (the embedded server of `make up` / `make test`): finding it
    # empty after a restart is expected, so republishing the outbox is logged at INFO instead of ERROR.
    redis_ephemeral: bool = False

    #: Tests only: a file holding the instant "now" should be (see shared/clock.py FileClock).
    clock_file: str | None = None

    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _address_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            ipaddress.ip_network(entry, strict=False)  # a typo fails at start, not at the first request
        return value

    @model_validator(mode="after")
    def _no_development_defaults_in_production(self) -> Self:
        if self.production:
            if self.jwt_secret == DEV_JWT_SECRET and not self.jwt_public_key:
                raise ValueError("CIVIC_JWT_SECRET (or CIVIC_JWT_PUBLIC_KEY) must be set in production mode")
            if len(self.jwt_secret) < 32 and not self.jwt_public_key:
                raise ValueError("CIVIC_JWT_SECRET must have at least 32 characters")
            if self.privacy_secret == DEV_PRIVACY_SECRET or len(self.privacy_secret) < 32:
                raise ValueError("CIVIC_PRIVACY_SECRET must be set (at least 32 characters) in production mode")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
