"""How the registration service plugs into the runtime: routes, subscription list, migrations, loops."""

from __future__ import annotations

from pathlib import Path

from services.registration import api, handlers, loops
from services.registration.settings import RegistrationSettings
from shared.service import ServiceDefinition

definition = ServiceDefinition(
    name="registration",
    router=api.router,
    migrations=Path(__file__).parent / "migrations",
    subscriptions=handlers.SUBSCRIPTIONS,
    background=loops.loops,
    settings=RegistrationSettings,
    owns_deadlines=True,
    # Notifications opens the sealed contact of registration's events with these keys.
    key_readers=("notifications",),
    links=api.LINKS,
)
