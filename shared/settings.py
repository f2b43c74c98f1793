"""12-factor settings, read from the environment once per process (see the table in README.md)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CIVIC_", extra="ignore")

    database_url: str = Field("postgresql://postgres@127.0.0.1:5432/postgres", validation_alias="DATABASE_URL")
    redis_url: str = Field("redis://127.0.0.1:6379/0", validation_alias="REDIS_URL")
    stream_prefix: str = "civic"
    consumer_name: str | None = None
    public_base_url: str = "http://localhost:8000"

    jwt_secret: str = "dev-only-secret-change-me-in-production-0123456789"
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

    log_level: str = "INFO"
    log_json: bool = True


@lru_cache
def get_settings() -> Settings:
    return Settings()
