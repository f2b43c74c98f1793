"""Registration's own settings (``CIVIC_REGISTRATION_*``), read once when the service starts."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.service import ServiceContext


class RegistrationSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CIVIC_REGISTRATION_", extra="ignore")

    #: Days after a meeting ended until its registrations are anonymised.
    retention_days: int = 30
    retention_interval_seconds: float = 3600.0
    #: Hours a data export (GDPR Art. 15) can be downloaded; then it and its key are deleted.
    export_retention_hours: int = 72


def settings_of(ctx: ServiceContext) -> RegistrationSettings:
    s = ctx.own_settings
    # A context built by hand (tests, tools) may have none: the environment's, as at start.
    return s if isinstance(s, RegistrationSettings) else RegistrationSettings()
