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
import time
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from shared.bus.backoff import Backoff
from shared.bus.outbox import notify_channel
from shared.bus.streams import EVENT_FIELD, EventField, Keys, entry_fields, parse_entry_id
from shared.bus.wakeup import Wakeup
from shared.db import Conn
from shared.loops import repeat
from shared.metrics import (
    EVENTS_PUBLISHED,
    REDIS_DATA_LOSS,
    REDIS_ENTRIES_LOST,
    RELAY_BATCH_SECONDS,
    RELAY_REPLICATION_TIMEOUTS,
)

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
        spacing_seconds: float = 0.0,
        event_field: EventField = EVENT_FIELD,
        redis_ephemeral: bool = False,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 500,
    ) -> None:
        self.service = service
        self.pool = pool
        self.redis = redis
        self.database_url = database_url
        self.keys = keys
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.spacing_seconds = spacing_seconds
        self.event_field = event_field
        self.redis_ephemeral = redis_ephemeral
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self._last_idle_check = 0.0
        self._wake = Wakeup(database_url, notify_channel(service))
        self._lock_key = f"relay:{service}"

    async def run(self, stop: asyncio.Event) -> None:
        listener = asyncio.create_task(self._wake.run(stop))
        try:
            # A full batch goes on at once; otherwise the next NOTIFY (or the poll) wakes the relay, no sooner than
            # ``spacing_seconds`` after the last pass began, so a burst of commits is one pass. Only an
            # outage is retried here; a bug reaches the runtime's guard, which starts the relay afresh.
            await repeat(
                "relay",
                self.publish_batch,
                stop,
                interval=self.poll_seconds,
                wakeup=self._wake,
                backoff=Backoff(),
                again=lambda published: isinstance(published, int) and published >= self.batch_size,
                retry=(),
                spacing=self.spacing_seconds,
            )
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
                if time.monotonic() - self._last_idle_check >= self.poll_seconds:
                    # Quiet: nothing new would reveal a failover that lost entries, so look now and then.
                    self._last_idle_check = time.monotonic()
                    await self._check_for_lost_entries(conn)
                return 0
            started = time.perf_counter()
            streams = sorted({r["stream"] for r in rows})
            tips = await _published_tips(conn, streams)
            pipe = self.redis.pipeline(transaction=False)
            # Asked again on the pipeline's connection: Redis may have lost its data since the check above.
            pipe.exists(self.keys.alive(self.service))
            # Where each stream stands before this batch: behind what we published, a failover lost entries.
            for stream in streams:
                pipe.xinfo_stream(self.keys.stream(stream))
            for row in rows:
                pipe.xadd(
                    self.keys.stream(row["stream"]),
                    entry_fields(row["envelope"], row["position"], self.event_field),
                )
            if self.wait_replicas > 0:
                # On the pipeline's connection, so it waits for exactly these writes.
                pipe.execute_command("WAIT", self.wait_replicas, self.wait_timeout_ms)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
            for reply in (replies[0], *replies[1 + len(streams) :]):
                if isinstance(reply, Exception):
                    raise reply
            if not replies[0]:
                # The batch went to a Redis that has not been recovered yet. Left unmarked, it goes out again
                # after the recovery; marked, its new entry ids could let a watermark measured in the new
                # Redis hide what the old one held unconsumed.
                return 0
            heads = dict(zip(streams, (_last_generated(r) for r in replies[1 : 1 + len(streams)]), strict=True))
            if await self._republish_lost(conn, tips, heads):
                # Left unmarked, this batch goes out again after what was lost, in outbox order.
                self._wake.notify()
                return 0
            xadds = replies[1 + len(streams) : 1 + len(streams) + len(rows)]
            if self.wait_replicas > 0 and int(replies[-1]) < self.wait_replicas:
                RELAY_REPLICATION_TIMEOUTS.labels(self.service).inc()
                log.debug("fewer replicas than wanted confirmed a batch", extra={"replicas": replies[-1]})
            parsed = [parse_entry_id(i) for i in xadds]
            await conn.execute(
                "select mark_published($1::bigint[], $2::bigint[], $3::bigint[])",  # see its migration
                [r["position"] for r in rows],
                [p[0] for p in parsed],
                [p[1] for p in parsed],
            )
        for stream in {r["stream"] for r in rows}:
            EVENTS_PUBLISHED.labels(self.service, stream).inc(sum(1 for r in rows if r["stream"] == stream))
        RELAY_BATCH_SECONDS.labels(self.service).observe(time.perf_counter() - started)
        return len(rows)

    async def _check_for_lost_entries(self, conn: Conn) -> None:
        streams = [r["stream"] for r in await conn.fetch("select distinct stream from stream_watermarks")]
        streams = streams or [
            r["stream"]
            for r in await conn.fetch(
                "select distinct stream from (select stream from outbox where published_at is not null "
                "order by position desc limit 1000) recent"
            )
        ]
        if not streams:
            return
        tips = await _published_tips(conn, streams)
        pipe = self.redis.pipeline(transaction=False)
        for stream in streams:
            pipe.xinfo_stream(self.keys.stream(stream))
        replies = await pipe.execute(raise_on_error=False)
        heads = dict(zip(streams, (_last_generated(r) for r in replies), strict=True))
        if await self._republish_lost(conn, tips, heads):
            self._wake.notify()

    async def _republish_lost(
        self, conn: Conn, tips: dict[str, tuple[int, int]], heads: dict[str, tuple[int, int] | None]
    ) -> bool:
        """Entries this relay published that the stream no longer has: the old primary accepted them and a
        failover promoted a replica they had not reached yet (replication is asynchronous). A replica holds
        a prefix of its primary's writes and this relay is its streams' only writer, so exactly the rows
        after the stream's last generated id are missing: mark them for publishing again."""
        lost_any = False
        for stream, tip in tips.items():
            head = heads.get(stream)
            if head is None or head == (0, 0) or head >= tip:
                # Intact; or a stream that never had an entry (missing, or made empty by a consumer's
                # MKSTREAM): Redis lost everything, which the alive-key recovery handles by the watermarks.
                continue
            status = await conn.execute(
                "update outbox set published_at = null where stream = $1 and published_at is not null "
                "and (stream_ms, stream_seq) > ($2, $3)",
                stream,
                head[0],
                head[1],
            )
            lost = int(status.split()[-1])
            # The watermark was measured in the old primary; the next maintenance pass measures afresh.
            await conn.execute("delete from stream_watermarks where stream = $1", stream)
            REDIS_ENTRIES_LOST.labels(self.service, stream).inc(lost)
            log.warning(
                "redis no longer has entries it accepted (a failover); publishing them again",
                extra={"service": self.service, "stream": stream, "events": lost},
            )
            lost_any = True
        return lost_any

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
        if not republished:
            return
        REDIS_DATA_LOSS.labels(self.service).inc()
        if self.redis_ephemeral:
            log.info(
                "redis started empty (it keeps nothing on disk); publishing the unconfirmed outbox again",
                extra={"service": self.service, "events": republished},
            )
        else:
            log.error(
                "redis lost its data; publishing the unconfirmed outbox again",
                extra={"service": self.service, "events": republished},
            )


async def _published_tips(conn: Conn, streams: list[str]) -> dict[str, tuple[int, int]]:
    """Per stream, the entry id of the newest row marked published (none for a stream not published to)."""
    rows = await conn.fetch(
        "select s.stream, t.stream_ms, t.stream_seq from unnest($1::text[]) as s(stream), lateral ("
        "  select stream_ms, stream_seq from outbox o where o.stream = s.stream and o.published_at is not null"
        "  order by stream_ms desc, stream_seq desc limit 1) t",
        streams,
    )
    return {r["stream"]: (int(r["stream_ms"]), int(r["stream_seq"])) for r in rows if r["stream_ms"] is not None}


def _last_generated(reply: Any) -> tuple[int, int] | None:
    """A stream's last generated id from XINFO STREAM; None when the stream does not exist."""
    if isinstance(reply, ResponseError):
        if "no such key" in str(reply).lower():
            return None
        raise reply
    if isinstance(reply, Exception):
        raise reply
    return parse_entry_id(reply["last-generated-id"])


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
