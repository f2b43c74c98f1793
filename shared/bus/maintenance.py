"""Periodic upkeep of a service's share of the bus.

- Watermarks: per stream the service produces, the first entry some consumer group has not acknowledged;
  kept in PostgreSQL so that, after Redis loses its data, the outbox is published again from there.
- Trimming: streams are trimmed only below that watermark, so no group ever loses an unacknowledged entry;
  except a registered outside group (``outside_groups``) past its limits, which stops holding trimming back
  (a dead subscriber must not fill Redis); the operator is told (log, metric, ``civic subscribers list``).
- Retention: published outbox rows below the watermark and old processed-event records are deleted.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from shared.bus.streams import Keys, parse_entry_id
from shared.clock import Clock, SystemClock
from shared.contracts.registry import REGISTRY
from shared.loops import repeat
from shared.metrics import CONSUMER_LAG, CONSUMER_PENDING, OUTBOX_LAG, OUTSIDE_GROUP_OVERRUN

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GroupState:
    name: str
    pending: int
    lag: int | None
    last_delivered: tuple[int, int]
    first_pending: tuple[int, int] | None

    def overruns(self, limit: OutsideLimit, now_ms: int, oldest_ms: int | None) -> bool:
        """Past an outside group's limits: too many entries behind, or the oldest entry it has not confirmed
        (``oldest_ms``, an entry id's time; None if there is none) too old."""
        behind = self.pending + (self.lag or 0)
        return behind > limit.max_lag or (oldest_ms is not None and now_ms - oldest_ms > limit.max_age_seconds * 1000)

    @property
    def first_unconfirmed(self) -> tuple[int, int]:
        if self.first_pending is not None:
            return self.first_pending
        ms, seq = self.last_delivered
        return ms, seq + 1


@dataclass(frozen=True)
class OutsideLimit:
    max_lag: int
    max_age_seconds: int


async def group_states(redis: aioredis.Redis, key: str) -> list[GroupState]:
    try:
        groups = await redis.xinfo_groups(key)
    except ResponseError:
        return []  # no such stream (yet, or any more)
    states = []
    for g in groups:
        name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
        first_pending = None
        if g["pending"]:
            summary = await redis.xpending(key, name)
            # Not atomic with XINFO: the group may have acknowledged everything in between (min is then nil,
            # and the last-delivered id read before is a safe, lower bound).
            if summary["min"] is not None:
                first_pending = parse_entry_id(summary["min"])
        states.append(
            GroupState(name, int(g["pending"]), g.get("lag"), parse_entry_id(g["last-delivered-id"]), first_pending)
        )
    return states


class Maintenance:
    def __init__(
        self,
        service: str,
        pool: asyncpg.Pool,
        redis: aioredis.Redis,
        *,
        keys: Keys,
        interval: float = 5.0,
        outbox_retention: timedelta = timedelta(days=7),
        processed_retention: timedelta = timedelta(days=30),
        trim: bool = True,
        clock: Clock | None = None,
    ) -> None:
        self.service = service
        self.pool = pool
        self.redis = redis
        self.keys = keys
        self.interval = interval
        self.outbox_retention = outbox_retention
        self.processed_retention = processed_retention
        self.trim = trim
        self.clock = clock or SystemClock()
        self.streams = sorted({s.stream for s in REGISTRY if s.producer == service})

    async def run(self, stop: asyncio.Event) -> None:
        # A bug in one pass is logged and retried (``repeat``'s default): a dead maintenance task would stop
        # watermarks and trimming for good, silently.
        await repeat("maintenance", self.run_once, stop, interval=self.interval)

    async def run_once(self) -> None:
        for stream in self.streams:
            await self.watermark_and_trim(stream)
        async with self.pool.acquire() as conn:
            # The database's own time, like the defaults that stamped these rows: a test that moves the service
            # clock must not make rows look ancient (or never old).
            await conn.execute(
                "delete from outbox o using stream_watermarks w where o.stream = w.stream "
                "and o.published_at is not null and o.published_at < now() - $1::interval "
                "and (o.stream_ms, o.stream_seq) < (w.first_ms, w.first_seq)",
                self.outbox_retention,
            )
            await conn.execute(
                "delete from processed_events where processed_at < now() - $1::interval", self.processed_retention
            )
            OUTBOX_LAG.labels(self.service).set(
                await conn.fetchval("select count(*) from outbox where published_at is null")
            )

    async def watermark_and_trim(self, stream: str) -> tuple[int, int] | None:
        key = self.keys.stream(stream)
        marker = self.keys.alive(self.service)
        epoch = await self.redis.get(marker)
        if epoch is None:
            # Redis lost its data and the relay has not published the outbox again yet (or never published):
            # this Redis's groups say nothing about what the outbox still has to deliver.
            return None
        states = await group_states(self.redis, key)
        if not states:
            return None  # nobody consumes yet: nothing confirmed, nothing may be trimmed
        if await self.redis.get(marker) != epoch:
            return None  # Redis restarted (or was flushed) while we read: measure again next time
        for s in states:
            CONSUMER_PENDING.labels(s.name, stream).set(s.pending)
            if s.lag is not None:
                CONSUMER_LAG.labels(s.name, stream).set(s.lag)
        holding = await self._holding(stream, key, states)
        if holding:
            first = min(s.first_unconfirmed for s in holding)
        else:
            # Only overrun outside groups: everything published so far may go.
            info = await self.redis.xinfo_stream(key)
            ms, seq = parse_entry_id(info["last-generated-id"])
            first = (ms, seq + 1)
        async with self.pool.acquire() as conn:
            await conn.execute(
                "insert into stream_watermarks (stream, first_ms, first_seq) values ($1, $2, $3) "
                "on conflict (stream) do update set first_ms = excluded.first_ms, first_seq = excluded.first_seq,"
                " updated_at = now()",
                stream,
                first[0],
                first[1],
            )
        if self.trim:
            # Approximate MINID trims whole nodes strictly below the id, never at or above it.
            await self.redis.xtrim(key, minid=f"{first[0]}-{first[1]}", approximate=True)
        return first

    async def _oldest_unconfirmed_ms(self, key: str, s: GroupState) -> int | None:
        if s.first_pending is not None:
            return s.first_pending[0]
        ms, seq = s.last_delivered
        after: Any = await self.redis.xrange(key, min=f"({ms}-{seq}", count=1)  # the next it has not read
        return parse_entry_id(after[0][0])[0] if after else None

    async def _holding(self, stream: str, key: str, states: list[GroupState]) -> list[GroupState]:
        """The groups trimming waits for: all but registered outside groups past their limits."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "select name, max_lag, max_age_seconds, overrun_at from outside_groups where stream = $1", stream
            )
        if not rows:
            return states
        limits = {r["name"]: (OutsideLimit(r["max_lag"], r["max_age_seconds"]), r["overrun_at"]) for r in rows}
        now_ms = int(self.clock.now().timestamp() * 1000)
        holding = []
        for s in states:
            limit, overrun_at = limits.get(s.name, (None, None))
            over = limit is not None and s.overruns(limit, now_ms, await self._oldest_unconfirmed_ms(key, s))
            if limit is not None:
                OUTSIDE_GROUP_OVERRUN.labels(s.name, stream).set(1 if over else 0)
            if over and overrun_at is None:
                log.error(
                    "outside consumer group is past its limits; trimming no longer waits for it",
                    extra={"group": s.name, "stream": stream, "pending": s.pending, "lag": s.lag},
                )
            if limit is not None and over != (overrun_at is not None):
                async with self.pool.acquire() as conn:
                    await conn.execute(
                        "update outside_groups set overrun_at = case when $3 then now() end "
                        "where stream = $1 and name = $2",
                        stream,
                        s.name,
                        over,
                    )
            if not over:
                holding.append(s)
        return holding
