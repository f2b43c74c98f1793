"""A producer and a consumer of the bus, on schemas of their own, for tests of the bus itself.

The producer publishes ``QrScannedV1`` as the content service would; the consumer's effect is a row per event
in ``effects`` (primary key: the event id, so a second effect would fail loudly, and a count shows it).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date

import asyncpg
import redis.asyncio as aioredis

from shared.bus.consumer import Batched, Consumer, Handler
from shared.bus.maintenance import Maintenance
from shared.bus.outbox import Outbox
from shared.bus.relay import Relay
from shared.bus.streams import Keys
from shared.contracts.content import QrScannedV1
from shared.contracts.registry import Event
from shared.db import Conn
from shared.settings import Settings
from tests.support import make_schema

QR_SCANNED = "civic.content.qr.scanned.v1"
EFFECTS_SQL = "create table effects (event_id uuid primary key, code text not null, scans int not null)"


async def record_effect(conn: Conn, event: Event) -> None:
    assert isinstance(event.payload, QrScannedV1)
    await conn.execute(
        "insert into effects (event_id, code, scans) values ($1, $2, $3)",
        event.envelope.id,
        event.payload.code,
        event.payload.scans,
    )


@dataclass
class BusRig:
    settings: Settings
    producer_pool: asyncpg.Pool
    consumer_pool: asyncpg.Pool
    redis: aioredis.Redis
    keys: Keys
    outbox: Outbox
    consumer_group: str

    def relay(self, **kw: object) -> Relay:
        return Relay(
            "content",
            self.producer_pool,
            self.redis,
            database_url=self.settings.database_url,
            keys=self.keys,
            batch_size=int(kw.get("batch_size", 100)),
            poll_seconds=0.2,
        )

    def consumer(self, name: str = "c1", handler: Handler | Batched = record_effect, **kw: object) -> Consumer:
        return Consumer(
            self.consumer_group,
            self.consumer_pool,
            self.redis,
            {QR_SCANNED: handler},
            keys=self.keys,
            name=name,
            batch_size=int(kw.get("batch_size", 50)),
            block_ms=100,
            reclaim_idle_ms=int(kw.get("reclaim_idle_ms", 300)),
            reclaim_interval=0.1,
            max_deliveries=int(kw.get("max_deliveries", 3)),
        )

    def maintenance(self) -> Maintenance:
        return Maintenance("content", self.producer_pool, self.redis, keys=self.keys, interval=0.1)

    async def publish(self, n: int, *, tenant: str = "kreis-dithmarschen") -> list[str]:
        ids = []
        async with self.producer_pool.acquire() as conn:
            for i in range(n):
                async with conn.transaction():
                    env = await self.outbox.record(
                        conn,
                        QrScannedV1(code=f"c{i}", target_kind="survey", day=date(2021, 10, 1), scans=i),
                        tenant=tenant,
                        subject=f"qr/c{i % 7}",
                    )
                    ids.append(str(env.id))
        return ids

    async def effects(self) -> int:
        return int(await self.consumer_pool.fetchval("select count(*) from effects"))

    async def close(self) -> None:
        await self.producer_pool.close()
        await self.consumer_pool.close()


async def make_rig(settings: Settings, redis: aioredis.Redis) -> BusRig:
    tag = secrets.token_hex(3)
    producer = await make_schema(settings.database_url, f"producer_{tag}")
    consumer = await make_schema(settings.database_url, f"consumer_{tag}", EFFECTS_SQL)
    keys = Keys(settings.stream_prefix)
    return BusRig(settings, producer, consumer, redis, keys, Outbox("content"), f"consumer_{tag}")
