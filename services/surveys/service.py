"""How the surveys service plugs into the runtime: routes, subscription list, migrations, loops."""

from __future__ import annotations

from pathlib import Path

from services.surveys.api import LINKS, make_router
from services.surveys.clock import loops
from services.surveys.config import SurveysConfig
from shared.service import ServiceDefinition


def build(config: SurveysConfig | None = None) -> ServiceDefinition:
    """The service with ``config`` (from the environment if omitted); tests build it with their own."""
    cfg = config or SurveysConfig()
    return ServiceDefinition(
        name="surveys",
        router=make_router(cfg),
        migrations=Path(__file__).parent / "migrations",
        # The surveys service consumes no events; it only publishes.
        subscriptions={},
        background=lambda ctx: loops(ctx, cfg),
        links=LINKS,
        owns_deadlines=True,
    )


definition = build()
