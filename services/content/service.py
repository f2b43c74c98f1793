"""How the content service plugs into the runtime: routes, subscription list, migrations, loops."""

from __future__ import annotations

from pathlib import Path

from services.content import api, handlers, loops
from shared.service import ServiceDefinition

definition = ServiceDefinition(
    name="content",
    router=api.router,
    root_router=api.root_router,
    migrations=Path(__file__).parent / "migrations",
    subscriptions=handlers.SUBSCRIPTIONS,
    background=loops.loops,
    links=api.LINKS,
)
