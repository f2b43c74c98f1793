"""How the surveys service plugs into the runtime: routes, subscription list, migrations, loops, settings."""

from __future__ import annotations

from pathlib import Path

from services.surveys import api, handlers, loops
from services.surveys.settings import SurveysSettings
from shared.service import ServiceDefinition

definition = ServiceDefinition(
    name="surveys",
    router=api.router,
    migrations=Path(__file__).parent / "migrations",
    subscriptions=handlers.SUBSCRIPTIONS,
    background=loops.loops,
    settings=SurveysSettings,
    owns_deadlines=True,
    links=api.LINKS,
)
