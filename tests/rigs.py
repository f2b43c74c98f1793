"""The one way tests start services in-process: ``started(definition, ..., settings=settings)``.

Each definition runs in a ``ServiceRuntime`` inside one app (as ``civic.up`` runs them), migrated on the test's
scratch database and stream prefix (the ``settings`` fixture of tests/conftest.py), with its bus loops unless
``background=False``. The answer holds the app, an httpx client speaking ASGI to it, each service's context
and runtime, and the clock; ``stop()`` (or leaving the ``async with``) stops the loops and closes the pools.

The per-area rigs (registration's, surveys', notifications' ...) wrap this with what their tests need (sample
bodies, staff headers, a tenant of their own).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.clock import Clock
from shared.http.app import create_app
from shared.service import ServiceContext, ServiceDefinition, ServiceRuntime
from shared.settings import Settings
from tests.support import serve


@dataclass
class Started:
    app: Any
    client: httpx.AsyncClient
    clock: Clock | None
    _exit: contextlib.AsyncExitStack = field(repr=False)

    @property
    def contexts(self) -> dict[str, ServiceContext]:
        found: dict[str, ServiceContext] = self.app.state.civic
        return found

    @property
    def runtimes(self) -> list[ServiceRuntime]:
        found: list[ServiceRuntime] = self.app.state.runtimes
        return found

    @property
    def ctx(self) -> ServiceContext:
        """The first service's context (the only one, for most rigs)."""
        return next(iter(self.contexts.values()))

    def context(self, name: str) -> ServiceContext:
        return self.contexts[name]

    async def stop(self) -> None:
        await self._exit.aclose()


async def start(
    *definitions: ServiceDefinition, settings: Settings, clock: Clock | None = None, background: bool = True
) -> Started:
    """Start ``definitions`` in one app; the caller calls ``stop()``."""
    app = create_app(list(definitions), settings, clock=clock, background=background)
    stack = contextlib.AsyncExitStack()
    client = await stack.enter_async_context(serve(app))
    return Started(app, client, clock, stack)


@contextlib.asynccontextmanager
async def started(
    *definitions: ServiceDefinition, settings: Settings, clock: Clock | None = None, background: bool = True
) -> AsyncIterator[Started]:
    """``start`` for an ``async with`` block: stopped when the block is left."""
    running = await start(*definitions, settings=settings, clock=clock, background=background)
    try:
        yield running
    finally:
        await running.stop()
