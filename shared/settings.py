"""12-factor settings, read from the environment once per process (see the table in README.md)."""

from __future__ import annotations

import ipaddress
import json
from functools import lru_cache
from typing import Annotated, Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_JWT_SECRET = "dev-only-secret-change-me-in-production-0123456789"


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
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
