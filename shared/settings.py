"""12-factor settings, read from the environment once per process (see the table in README.md)."""

from __future__ import annotations

from functools import lru_cache
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
