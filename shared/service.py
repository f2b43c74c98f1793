"""What a service is made of, and the runtime that starts its parts in a process.

A service hands the runtime a ``ServiceDefinition``: its HTTP router, its subscription list (event type ->
handler), its migrations and any background loops of its own. The runtime adds what every service has: a
pool on its own schema and role, the outbox relay, the consumer, bus maintenance and the deadline scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

import asyncpg
import redis.asyncio as aioredis
from fastapi import APIRouter, Request

from shared import db
from shared.bus.consumer import Batched, Consumer, Handler
from shared.bus.deadlines import DeadlineScheduler
from shared.bus.maintenance import Maintenance
from shared.bus.outbox import Outbox
from shared.bus.relay import Relay
from shared.bus.streams import Keys, consumer_name, redis_from_settings
from shared.clock import Clock, SystemClock
from shared.contracts.envelope import Envelope, Payload
from shared.contracts.registry import REGISTRY, Event
from shared.loops import Loop as Loop  # re-exported: services name their loops by it
from shared.settings import Settings
from shared.unit_of_work import UnitsOfWork

log = logging.getLogger(__name__)


S = TypeVar("S")


@dataclass
class ServiceContext:
    """Everything a service's code needs at run time, created once per process."""

    name: str
    settings: Settings
    pool: asyncpg.Pool
    redis: aioredis.Redis
    outbox: Outbox
    clock: Clock
    keys: Keys
    #: The service's own settings (``services/<name>/settings.py``), read once when the service starts;
    #: ``settings.py`` offers a typed accessor (``settings_of(ctx)``).
    own_settings: Any = None
    #: Objects of the service's own that its routes and loops share for the life of the process, by name (the
    #: content service's page cache, which its routes read and its LISTEN loop invalidates).
    state: dict[str, Any] = field(default_factory=dict)

    def uows(self, store: Callable[[db.Conn], S]) -> UnitsOfWork[S]:
        """Units of work over the service's pool and outbox, with ``store`` (its ``store.py`` class)."""
        return UnitsOfWork(self.pool, self.outbox, store)


P = TypeVar("P", bound=Payload)

#: A handler of one event: the service's context, the consumer's connection, the envelope and the payload.
EachHandler = Callable[[ServiceContext, db.Conn, Envelope, Any], Awaitable[None]]
#: A handler of consecutive events of one type at once, as (envelope, payload) pairs in stream order.
BatchHandler = Callable[[ServiceContext, db.Conn, list[tuple[Envelope, Any]]], Awaitable[None]]


@dataclass(frozen=True)
class Subscription:
    """One line of a service's subscription list: the payload class it handles and the handler, which gets
    the service's context, the consumer's connection (its transaction also records the event as processed),
    the envelope and the payload, already of that class. ``batch``: the handler takes the consecutive events
    of its type in a consumer's batch in one call (``on_batch``)."""

    payload: type[Payload]
    handler: EachHandler | BatchHandler
    batch: bool = False

    @property
    def type(self) -> str:
        return REGISTRY.type_of(self.payload)


def on(payload: type[P], handler: Callable[[ServiceContext, db.Conn, Envelope, P], Awaitable[None]]) -> Subscription:
    """``on(MeetingCancelledV1, meeting_cancelled)``: mypy checks that the handler takes that payload."""
    return Subscription(payload, handler)


def on_batch(
    payload: type[P], handler: Callable[[ServiceContext, db.Conn, Sequence[tuple[Envelope, P]]], Awaitable[None]]
) -> Subscription:
    """``on_batch(QrScannedV1, count_scans)``: the handler gets the consecutive events of that type in a batch
    at once, so one statement can make all their effects (a round trip per event is what a busy consumer
    spends its time on). Events it records name their cause (``Pending.causation_id``): no single event is
    being handled."""
    return Subscription(payload, handler, batch=True)


Subscriptions = Sequence[Subscription]


def bind(ctx: ServiceContext, subscriptions: Subscriptions) -> dict[str, Handler | Batched]:
    """The consumer's table (event type -> handler). Several subscriptions to one type run in list order, in
    the same transaction; when one of them takes batches, each runs in turn over the whole run of events."""
    by_type: dict[str, list[Subscription]] = {}
    for sub in subscriptions:
        by_type.setdefault(sub.type, []).append(sub)

    def run_all(subs: list[Subscription]) -> Handler:
        async def run(conn: db.Conn, event: Event) -> None:
            for sub in subs:
                await cast(EachHandler, sub.handler)(ctx, conn, event.envelope, event.payload)

        return run

    def run_batched(subs: list[Subscription]) -> Batched:
        async def run(conn: db.Conn, events: list[Event]) -> None:
            for sub in subs:
                if sub.batch:
                    await cast(BatchHandler, sub.handler)(ctx, conn, [(e.envelope, e.payload) for e in events])
                else:
                    for e in events:
                        await cast(EachHandler, sub.handler)(ctx, conn, e.envelope, e.payload)

        return Batched(run)

    return {t: run_batched(subs) if any(s.batch for s in subs) else run_all(subs) for t, subs in by_type.items()}


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    router: APIRouter
    migrations: Path
    #: The subscription list, readable in one screen: ``[on(PayloadClass, handler), ...]``.
    subscriptions: Subscriptions = field(default_factory=list)
    #: Loops of the service's own (publishing scheduled content, sending mail ...).
    background: Callable[[ServiceContext], list[Loop]] = field(default=lambda ctx: [])
    #: Routes outside /api/<name>/ (such as QR short links), mounted at the root.
    root_router: APIRouter | None = None
    pool_size: int = 10
    #: Reads the service's own settings (a pydantic-settings class) when the service starts: not at import,
    #: so ``civic up`` and tests can set the environment first.
    settings: Callable[[], Any] | None = None
    #: Whether the service registers deadlines (shared/bus/deadlines.py) and so runs the deadline scheduler.
    owns_deadlines: bool = False
    #: Services whose role may read this service's keyring (``person_keys``, see shared/privacy.py): the
    #: consumers of its sealed personal data.
    key_readers: tuple[str, ...] = ()

    #: OpenAPI links between the service's operations, for clients and the stateful API test: {source operation
    #: id: {target operation id: {parameter: runtime expression}}} (shared/http/openapi.py).
    links: Mapping[str, Mapping[str, Mapping[str, str]]] = field(default_factory=dict)

    @property
    def schema(self) -> str:
        return self.name

    @property
    def event_types(self) -> list[str]:
        """The event types the service subscribes to."""
        return sorted({s.type for s in self.subscriptions})

    def all_migrations(self) -> list[db.Migration]:
        return db.load_migrations(db.BUS_MIGRATIONS, self.migrations)


def context_of(request: Request, name: str) -> ServiceContext:
    ctx: ServiceContext = request.app.state.civic[name]
    return ctx


class ServiceRuntime:
    """One service inside a process: its pool, Redis client and bus loops."""

    def __init__(
        self,
        definition: ServiceDefinition,
        settings: Settings,
        *,
        clock: Clock | None = None,
        background: bool = True,
    ) -> None:
        self.definition = definition
        self.settings = settings
        self.clock = clock or SystemClock()
        self.background = background
        self.ctx: ServiceContext | None = None
        self.consumer: Consumer | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> ServiceContext:
        d, s = self.definition, self.settings
        pool = await db.create_pool(
            s.database_url, d.schema, max_size=d.pool_size, connect_timeout=s.db_connect_timeout_seconds
        )
        redis = redis_from_settings(s)
        keys = Keys(s.stream_prefix)
        own = d.settings() if d.settings is not None else None
        self.ctx = ServiceContext(d.name, s, pool, redis, Outbox(d.name, clock=self.clock), self.clock, keys, own)
        self.consumer = Consumer(
            d.name,
            pool,
            redis,
            bind(self.ctx, d.subscriptions),
            keys=keys,
            name=consumer_name(s.consumer_name),
            batch_size=s.consumer_batch_size,
            block_ms=s.consumer_block_ms,
            reclaim_idle_ms=s.reclaim_idle_ms,
            reclaim_interval=s.reclaim_interval_seconds,
            max_deliveries=s.max_deliveries,
        )
        if self.background:
            loops: list[Loop] = [
                Relay(
                    d.name,
                    pool,
                    redis,
                    database_url=s.database_url,
                    keys=keys,
                    batch_size=s.relay_batch_size,
                    poll_seconds=s.relay_poll_seconds,
                    spacing_seconds=s.relay_spacing_seconds,
                    event_field=s.stream_event_field,
                    redis_ephemeral=s.redis_ephemeral,
                    wait_replicas=s.redis_wait_replicas,
                    wait_timeout_ms=s.redis_wait_timeout_ms,
                ).run,
                self.consumer.run,
                Maintenance(
                    d.name,
                    pool,
                    redis,
                    keys=keys,
                    interval=s.maintenance_interval_seconds,
                    outbox_retention=timedelta(hours=s.outbox_retention_hours),
                    processed_retention=timedelta(hours=s.processed_retention_hours),
                    clock=self.clock,
                ).run,
                *d.background(self.ctx),
            ]
            if d.owns_deadlines:
                loops.append(
                    DeadlineScheduler(
                        pool,
                        self.ctx.outbox,
                        clock=self.clock,
                        interval=s.deadline_interval_seconds,
                        late_after=timedelta(seconds=s.deadline_late_after_seconds),
                    ).run
                )
            self._tasks = [asyncio.create_task(self._guard(loop)) for loop in loops]
        return self.ctx

    async def _guard(self, loop: Loop) -> None:
        """A loop that crashes on a bug is logged and started again, not silently lost."""
        while not self._stop.is_set():
            try:
                await loop(self._stop)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background loop crashed; restarting", extra={"service": self.definition.name})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), 1.0)

    async def stop(self) -> None:
        self._stop.set()
        for t in self._tasks:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(t, 5)
        if self.ctx is not None:
            with contextlib.suppress(Exception):
                await self.ctx.redis.aclose()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ctx.pool.close(), 5)
