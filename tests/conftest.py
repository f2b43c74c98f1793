"""Fixtures: a fresh database per test session on the configured PostgreSQL, a fresh key prefix per test on
the configured Redis. Nothing is mocked; ``make test`` provides the servers (embedded ones if none are set)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import asyncpg
import pytest
import redis.asyncio as aioredis

from shared.settings import Settings

#: The test tiers, one folder and one marker each (registered in pyproject.toml).
TIERS = ("unit", "integration", "api", "browser", "e2e", "faults", "contracts", "deploy", "bench")
TESTS = Path(__file__).parent

ADMIN_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with its tier, by the folder it lives in."""
    for item in items:
        with contextlib.suppress(ValueError):
            tier = item.path.relative_to(TESTS).parts[0]
            if tier in TIERS:
                item.add_marker(getattr(pytest.mark, tier))


def _with_database(url: str, name: str) -> str:
    parts = urlparse(url)
    return urlunparse(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    name = f"civic_test_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'create database "{name}"')
    await admin.close()
    try:
        yield _with_database(ADMIN_URL, name)
    finally:
        admin = await asyncpg.connect(ADMIN_URL)
        await admin.execute(f'drop database if exists "{name}" with (force)')
        await admin.close()


@pytest.fixture
def prefix() -> str:
    return f"test{secrets.token_hex(4)}"


@pytest.fixture
async def redis(prefix: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        keys = [k async for k in client.scan_iter(f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
def settings(database_url: str, prefix: str, redis: aioredis.Redis) -> Iterator[Settings]:
    """Settings for one test: its own stream prefix, short intervals so tests poll briefly."""
    yield Settings(
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        stream_prefix=prefix,
        consumer_block_ms=100,
        relay_poll_seconds=0.2,
        reclaim_idle_ms=500,
        reclaim_interval_seconds=0.2,
        maintenance_interval_seconds=0.2,
        deadline_interval_seconds=0.1,
        log_json=False,
        # Many tests send a rush from one address on purpose; the rate limits' own tests switch them on.
        rate_limits=False,
    )
