"""Settings of the surveys service, from ``CIVIC_SURVEYS_*`` environment variables."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from shared.service import ServiceContext


class SurveysSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CIVIC_SURVEYS_", extra="ignore")

    #: How often the clock loop opens and closes surveys whose time has come.
    tick_seconds: float = 1.0
    #: Reminders ("deadline approaching") before a survey closes, unless the survey sets its own.
    reminder_offsets_hours: list[int] = [72, 24]
    #: Responses to one survey from one client address (a token bucket, shared/http/ratelimit.py): a burst a
    #: whole school behind one address fits in, refilled at so many an hour. Other surveys are not affected.
    throttle_burst: int = 100
    throttle_per_hour: float = 720
    #: How often token surveys' rows are rewritten so system columns no longer pair code and response.
    mix_interval_seconds: float = 300.0
    #: Shards per result counter: more shards, less waiting between concurrent responses.
    counter_shards: int = 16
    #: Tokens at most per request.
    max_tokens_per_request: int = 20_000


def settings_of(ctx: ServiceContext) -> SurveysSettings:
    """The running service's settings (read once at its start: ``ServiceDefinition.settings``)."""
    own = ctx.own_settings
    assert isinstance(own, SurveysSettings), "the surveys service starts with SurveysSettings"
    return own
