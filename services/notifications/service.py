"""How the notifications service plugs into the runtime: routes, subscription list, migrations, loops."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter

from shared.service import ServiceDefinition

router = APIRouter(tags=["notifications"])

definition = ServiceDefinition(
    name="notifications",
    router=router,
    migrations=Path(__file__).parent / "migrations",
    subscriptions={},
)
