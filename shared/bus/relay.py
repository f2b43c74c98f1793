"""The relay: publishes a service's outbox to Redis Streams, in order, in pipelined batches.

Rows are marked published only after Redis accepted every entry of the batch. A crash between the XADD and
the mark publishes the batch again: consumers absorb the duplicate. While Redis or PostgreSQL is down the
relay waits with growing, jittered delays. One relay per service publishes at a time (an advisory lock), so
several replicas keep the order of the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from shared.bus.backoff import Backoff
from shared.bus.errors import TRANSIENT
from shared.bus.outbox import notify_channel
from shared.bus.streams import EVENT_FIELD, EventField, Keys, entry_fields, parse_entry_id
from shared.bus.wakeup import Wakeup
from shared.db import Conn
from shared.metrics import EVENTS_PUBLISHED, REDIS_DATA_LOSS

log = logging.getLogger(__name__)


class Relay:
    def __init__(
        self,
        service: str,
        pool: asyncpg.Pool,
        redis: aioredis.Redis,
        *,
        database_url: str,
        keys: Keys,
        batch_size: int = 500,
        poll_seconds: float = 1.0,
        event_field: EventField = EVENT_FIELD,
    ) -> None:
        self.service = service
        self.pool = pool
        self.redis = redis
        self.database_url = database_url
        self.keys = keys
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.event_field = event_field
        self._wake = Wakeup(database_url, notify_channel(service))
        self._lock_key = f"relay:{service}"

    async def run(self, stop: asyncio.Event) -> None:
        listener = asyncio.create_task(self._wake.run(stop))
        backoff = Backoff()
        try:
            while not stop.is_set():
                seen = self._wake.generation()
                try:
                    published = await self.publish_batch()
                    backoff.reset()
                except TRANSIENT as exc:
                    log.warning("relay cannot publish, retrying", extra={"error": repr(exc)})
                    await backoff.wait(stop)
                    continue
                if published >= self.batch_size:
                    continue
                await self._wake.wait(seen, self.poll_seconds, stop)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def publish_batch(self) -> int:
        # Checked before every batch so that, after a loss, history goes out again before anything newer.
        if not await self.redis.exists(self.keys.alive(self.service)):
            await self._recover_from_data_loss()
        async with self.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("select pg_try_advisory_xact_lock(hashtext($1))", self._lock_key):
                return 0
            rows = await conn.fetch(
                "select position, stream, envelope from outbox where published_at is null order by position limit $1",
                self.batch_size,
            )
            if not rows:
                return 0
            pipe = self.redis.pipeline(transaction=False)
            # Asked again on the pipeline's connection: Redis may have lost its data since the check above.
            pipe.exists(self.keys.alive(self.service))
            for row in rows:
                pipe.xadd(
                    self.keys.stream(row["stream"]),
                    entry_fields(row["envelope"], row["position"], self.event_field),
                )
            replies: list[Any] = await pipe.execute()
            if not replies[0]:
                # The batch went to a Redis that has not been recovered yet. Left unmarked, it goes out again
                # after the recovery; marked, its new entry ids could let a watermark measured in the new
                # Redis hide what the old one held unconsumed.
                return 0
            parsed = [parse_entry_id(i) for i in replies[1:]]
            await conn.execute(
                "update outbox o set published_at = now(), stream_ms = u.ms, stream_seq = u.seq "
                "from unnest($1::bigint[], $2::bigint[], $3::bigint[]) as u(position, ms, seq) "
                "where o.position = u.position",
                [r["position"] for r in rows],
                [p[0] for p in parsed],
                [p[1] for p in parsed],
            )
        for stream in {r["stream"] for r in rows}:
            EVENTS_PUBLISHED.labels(self.service, stream).inc(sum(1 for r in rows if r["stream"] == stream))
        return len(rows)

    async def _recover_from_data_loss(self) -> None:
        """Redis does not know this producer: it lost its data (restart without persistence, failover,
        flush), or this producer never published to it. Publish again what no group had confirmed."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("select pg_advisory_xact_lock(hashtext($1))", self._lock_key)
            if await self.redis.exists(self.keys.alive(self.service)):
                return  # another replica recovered meanwhile
            republished = await republish_unconfirmed(conn)
            # A fresh value per recovery: maintenance compares it before and after reading group states.
            await self.redis.set(self.keys.alive(self.service), secrets.token_hex(8))
        if republished:
            REDIS_DATA_LOSS.labels(self.service).inc()
            log.error(
                "redis lost its data; publishing the unconfirmed outbox again",
                extra={"service": self.service, "events": republished},
            )


async def republish_unconfirmed(conn: Conn) -> int:
    """Mark for publishing again every published row at or after its stream's watermark.

    Streams without a watermark (no group had confirmed anything yet) are published again whole.
    """
    status = await conn.execute(
        "update outbox o set published_at = null from ("
        "  select o2.position from outbox o2 left join stream_watermarks w on w.stream = o2.stream"
        "  where o2.published_at is not null"
        "    and (w.stream is null or (o2.stream_ms, o2.stream_seq) >= (w.first_ms, w.first_seq))"
        ") r where o.position = r.position"
    )
    count = int(status.split()[-1])
    # The old entry ids mean nothing in the new Redis; the next maintenance pass measures afresh.
    await conn.execute("delete from stream_watermarks")
    return count
