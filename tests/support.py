"""Helpers for tests: polling instead of sleeping, schemas of their own, running bus loops."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from shared import db
from shared.service import Loop

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]], *, timeout: float = 15.0, interval: float = 0.05, what: str = "condition"
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with its last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s (last value: {last!r})")


async def make_schema(url: str, schema: str, *extra_sql: str) -> asyncpg.Pool:
    """A schema with the bus's tables (plus ``extra_sql``), and a pool on it with its own role."""
    migrations = db.load_migrations(db.BUS_MIGRATIONS)
    migrations += [db.Migration(f"test/{i}", sql) for i, sql in enumerate(extra_sql)]
    await db.migrate(url, schema, migrations)
    return await db.create_pool(url, schema, max_size=10)


@contextlib.asynccontextmanager
async def running(*loops: Loop) -> AsyncIterator[asyncio.Event]:
    """Run bus loops in the background for the duration of the block; stop them cleanly after."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(loop(stop)) for loop in loops]
    try:
        yield stop
    finally:
        stop.set()
        for t in tasks:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(t, 10)
        for t in tasks:
            if not t.done():
                t.cancel()


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[Any]:
    """An httpx client talking to ``app`` in-process, with the app's lifespan (migrations, bus loops) running."""
    import httpx

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://civic.test") as client:
            yield client


def staff_headers(tenant: str, *roles: str, settings: Any = None) -> dict[str, str]:
    from shared.http.auth import mint_token

    token = mint_token(tenant=tenant, roles=list(roles or ("staff",)), settings=settings)
    return {"Authorization": f"Bearer {token}"}


async def drop_test_state(admin_url: str, database: str, redis_url: str, prefix: str) -> None:
    """Remove what a test deployment left: its Redis keys (by prefix) and its database."""
    import redis.asyncio as aioredis

    redis = aioredis.Redis.from_url(redis_url)
    try:
        keys = [k async for k in redis.scan_iter(f"{prefix}:*", count=1000)]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'drop database if exists "{database}" with (force)')
    finally:
        await admin.close()
