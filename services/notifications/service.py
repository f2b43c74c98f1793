"""How the notifications service plugs into the runtime: routes, subscription list, migrations, loops."""

from __future__ import annotations

from pathlib import Path

from services.notifications import api, handlers, loops
from services.notifications.settings import NotificationSettings
from shared.service import ServiceDefinition

definition = ServiceDefinition(
    name="notifications",
    router=api.router,
    migrations=Path(__file__).parent / "migrations",
    subscriptions=handlers.SUBSCRIPTIONS,
    background=loops.loops,
    settings=NotificationSettings,
    links=api.LINKS,
)
