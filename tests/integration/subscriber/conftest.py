"""Events of every type written by civic's real outbox and relay into real Redis, for the subscribers' tests."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from civic.cli import SAMPLES
from shared.bus.outbox import Outbox
from shared.bus.relay import Relay
from shared.bus.streams import Keys
from shared.contracts.envelope import Envelope, Payload
from shared.contracts.registry import REGISTRY
from shared.settings import Settings
from tests.support import make_schema

TENANT = "kreis-dithmarschen"


@dataclass
class Civic:
    """One outbox (one schema) holding events of every producer; one relay publishes them to their streams."""

    settings: Settings
    pool: asyncpg.Pool
    redis: aioredis.Redis
    keys: Keys

    def relay(self) -> Relay:
        return Relay("registration", self.pool, self.redis, database_url=self.settings.database_url, keys=self.keys)

    async def record(self, payload: Payload, *, tenant: str = TENANT, subject: str | None = None) -> Envelope:
        spec = next(s for s in REGISTRY if s.payload is type(payload))
        async with self.pool.acquire() as conn, conn.transaction():
            return await Outbox(spec.producer).record(conn, payload, tenant=tenant, subject=subject)

    async def record_every_type(self) -> dict[str, Envelope]:
        """One event of every registered type, from the payload samples kept for the compatibility test."""
        out = {}
        for spec in REGISTRY:
            sample = json.loads((SAMPLES / f"{spec.type}.json").read_text())
            async with self.pool.acquire() as conn, conn.transaction():
                out[spec.type] = await Outbox(spec.producer).record(
                    conn, spec.payload.model_validate(sample), tenant=TENANT, subject=f"{spec.producer}/x"
                )
        return out

    async def publish(self) -> int:
        total = 0
        while n := await self.relay().publish_batch():
            total += n
        return total

    def stream(self, logical: str) -> str:
        return self.keys.stream(logical)

    async def pending(self, logical: str, group: str) -> int:
        info: Any = await self.redis.xpending(self.stream(logical), group)
        return int(info["pending"])


@pytest.fixture
async def civic(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[Civic]:
    pool = await make_schema(settings.database_url, f"civic_{secrets.token_hex(3)}")
    try:
        yield Civic(settings, pool, redis, Keys(settings.stream_prefix))
    finally:
        await pool.close()
