"""How the registration service plugs into the runtime: routes, subscription list, migrations, loops."""

from __future__ import annotations

from pathlib import Path

from services.registration import data_export
from services.registration.api import LINKS, router
from services.registration.privacy import retention_loop
from shared.service import ServiceDefinition

definition = ServiceDefinition(
    name="registration",
    router=router,
    migrations=Path(__file__).parent / "migrations",
    # Only the answers to its data-export requests: it is the source of everything else it owns.
    subscriptions={"civic.notifications.person.export_contributed.v1": data_export.contributed},
    background=lambda ctx: [retention_loop(ctx)],
    # Notifications opens the sealed contact of registration's events with these keys.
    key_readers=("notifications",),
    links=LINKS,
    owns_deadlines=True,
)
