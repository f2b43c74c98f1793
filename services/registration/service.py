"""How the registration service plugs into the runtime: routes, subscription list, migrations, loops."""

from __future__ import annotations

from pathlib import Path

from services.registration.api import LINKS, router
from services.registration.privacy import retention_loop
from shared.service import ServiceDefinition

definition = ServiceDefinition(
    name="registration",
    router=router,
    migrations=Path(__file__).parent / "migrations",
    # The registration service consumes no events: it is the source of what it owns.
    subscriptions={},
    background=lambda ctx: [retention_loop(ctx)],
    links=LINKS,
)
