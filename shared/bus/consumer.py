"""Consumers: one group per consuming service, one consumer name per process.

Each batch of entries is handled in one PostgreSQL transaction together with a processed-event record per
event, so a redelivered event has no second effect; entries are acknowledged only after that commit. What
FastStream's subscriber leaves open is closed here: entries idle in a dead consumer's pending list are claimed
(XAUTOCLAIM), entries that keep failing or do not parse go to the dead letters, and a group lost with Redis's
data is recreated without a hot loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import ResponseError

from shared.bus.backoff import Backoff
from shared.bus.errors import TRANSIENT
from shared.bus.streams import Keys, ensure_group, entry_event
from shared.contracts.envelope import Envelope
from shared.contracts.registry import REGISTRY, Event, Registry, UnknownEventType
from shared.db import Conn
from shared.logs import correlation_id_var, event_id_var
from shared.loops import repeat
from shared.metrics import (
    EVENTS_CONSUMED,
    EVENTS_DEAD_LETTERED,
    EVENTS_DUPLICATE,
    EVENTS_FAILED,
    HANDLER_SECONDS,
)
from shared.tracing import handling, handling_batch

log = logging.getLogger(__name__)

Handler = Callable[[Conn, Event], Awaitable[None]]
Entry = tuple[bytes, dict[bytes, bytes]]


@dataclass(frozen=True)
class Batched:
    """A handler that takes consecutive events of its type at once, in stream order, in the batch's transaction:
    one statement can then make all their effects instead of a round trip per event. It runs outside any one
    event's log context, so events it records name their cause themselves (``Pending.causation_id``)."""

    handle: Callable[[Conn, list[Event]], Awaitable[None]]


@dataclass(frozen=True)
class Bad:
    """An entry that will never succeed as it is: it goes to the dead letters at once."""

    entry_id: str
    raw: str
    error: str


class Consumer:
    def __init__(
        self,
        service: str,
        pool: asyncpg.Pool,
        redis: aioredis.Redis,
        handlers: Mapping[str, Handler | Batched],
        *,
        keys: Keys,
        name: str,
        batch_size: int = 100,
        block_ms: int = 1000,
        reclaim_idle_ms: int = 30_000,
        reclaim_interval: float = 5.0,
        max_deliveries: int = 5,
        registry: Registry = REGISTRY,
    ) -> None:
        unknown = [t for t in handlers if t not in registry]
        if unknown:
            raise ValueError(f"{service} subscribes to unknown event types: {unknown}")
        self.service = service
        self.group = service
        self.pool = pool
        self.redis = redis
        self.handlers = dict(handlers)
        self.keys = keys
        self.name = name
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.reclaim_idle_ms = reclaim_idle_ms
        self.reclaim_interval = reclaim_interval
        self.max_deliveries = max_deliveries
        self.registry = registry
        logical = sorted({registry.get(t).stream for t in handlers})
        self.stream_of: dict[str, str] = {keys.stream(s): s for s in logical}
        self._own_pending_first = True
        self._database_first = False
        self._last_group_rebuild = 0.0

    # -- set-up ---------------------------------------------------------------------------------------

    async def ensure_groups(self) -> None:
        for key in self.stream_of:
            await ensure_group(self.redis, key, self.group)

    async def _rebuild_groups(self) -> None:
        """NOGROUP: Redis lost the group (and probably everything). Recreate it, at most twice a second."""
        wait = 0.5 - (time.monotonic() - self._last_group_rebuild)
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_group_rebuild = time.monotonic()
        await self.ensure_groups()
        log.warning("consumer group was missing and has been recreated", extra={"group": self.group})

    # -- loops ----------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        if not self.stream_of:
            return
        await self._with_retries(stop, self.ensure_groups)
        tasks = [asyncio.create_task(self._read_loop(stop)), asyncio.create_task(self._reclaim_loop(stop))]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t

    async def _with_retries(self, stop: asyncio.Event, step: Callable[[], Awaitable[Any]]) -> None:
        backoff = Backoff()
        while not stop.is_set():
            try:
                await step()
                return
            except TRANSIENT as exc:
                log.warning("consumer waiting for its servers", extra={"error": repr(exc)})
                await backoff.wait(stop)

    async def _read_loop(self, stop: asyncio.Event) -> None:
        # No wait between passes: the blocking XREADGROUP is the wait, and wakes the moment an entry arrives.
        # An outage and Redis's refusals are retried here; a bug crashes the consumer to the runtime's guard.
        self._database_first = False
        await repeat(
            "consumer read",
            lambda: self._read_pass(stop),
            stop,
            interval=0,
            backoff=Backoff(),
            again=lambda _seen: True,
            retry=(ResponseError,),
        )

    async def _read_pass(self, stop: asyncio.Event) -> int:
        if self._database_first:
            # Every read of our pending entries counts as a delivery in Redis: reading them again while
            # PostgreSQL is away would spend their deliveries on the outage and dead-letter good events.
            await self._with_retries(stop, self._database_answers)
            self._database_first = False
            if stop.is_set():
                return 0
        try:
            return await self.read_once()
        except TRANSIENT:
            self._own_pending_first = True
            self._database_first = True
            raise
        except ResponseError as exc:
            if not _group_lost(exc):
                raise
            await self._with_retries(stop, self._rebuild_groups)
            return 0

    async def _database_answers(self) -> None:
        async with self.pool.acquire() as conn:
            await conn.fetchval("select 1")

    async def read_once(self) -> int:
        """Read and handle one batch; returns the number of entries seen."""
        if self._own_pending_first:
            # After a restart under the same name, or an outage: what was delivered to us and not
            # acknowledged comes first (id 0 reads our own pending list).
            response: Any = await self.redis.xreadgroup(
                self.group, self.name, dict.fromkeys(self.stream_of, "0"), count=self.batch_size
            )
            if not any(entries for _, entries in response or []):
                self._own_pending_first = False
                return 0
        else:
            response = await self.redis.xreadgroup(
                self.group,
                self.name,
                dict.fromkeys(self.stream_of, ">"),
                count=self.batch_size,
                block=self.block_ms,
            )
        seen = 0
        for key, entries in response or []:
            key_s = key.decode() if isinstance(key, bytes) else key
            valid = [(eid, fields) for eid, fields in entries if fields]  # a deleted entry reads as empty
            await self.handle_entries(key_s, valid)
            gone = [eid for eid, fields in entries if not fields]
            if gone:
                await self.redis.xack(key_s, self.group, *gone)
            seen += len(entries)
        return seen

    async def _reclaim_loop(self, stop: asyncio.Event) -> None:
        # The interval comes before every pass, after an outage too: a claim counts as a delivery. An outage is
        # retried silently (the read loop reports it); a bug crashes the consumer to the runtime's guard.
        await repeat(
            "consumer reclaim",
            self._reclaim_pass,
            stop,
            interval=self.reclaim_interval,
            backoff=Backoff(),
            retry=(),
            interval_first=True,
            quiet=True,
        )

    async def _reclaim_pass(self) -> None:
        try:
            # A claim counts as a delivery: none while the database cannot take the handling.
            await self._database_answers()
            await self.reclaim_once()
        except ResponseError as exc:
            if not _group_lost(exc):
                log.exception("reclaim failed")
            # A lost group: the read loop recreates it, and the next pass claims again.

    async def reclaim_once(self) -> int:
        """Claim entries idle longer than the limit (a dead or stuck consumer's) and handle them."""
        claimed_total = 0
        for key in self.stream_of:
            start = "0-0"
            while True:
                claimed: Any = await self.redis.xautoclaim(
                    key, self.group, self.name, self.reclaim_idle_ms, start_id=start, count=self.batch_size
                )
                next_start, entries, deleted = claimed
                if deleted:
                    # Trimmed or deleted while pending (Redis 7 reports them): nothing left to handle.
                    await self.redis.xack(key, self.group, *deleted)
                entries = [(eid, f) for eid, f in entries if f]
                if entries:
                    claimed_total += len(entries)
                    await self._handle_claimed(key, entries)
                start = next_start.decode() if isinstance(next_start, bytes) else next_start
                if start == "0-0":
                    break
        return claimed_total

    async def _handle_claimed(self, key: str, entries: list[Entry]) -> None:
        ids = [e[0] for e in entries]
        pending = await self.redis.xpending_range(
            key, self.group, min=min(ids), max=max(ids), count=len(ids) * 4 + 10, consumername=self.name
        )
        deliveries = {p["message_id"]: int(p["times_delivered"]) for p in pending}
        retry: list[Entry] = []
        for eid, fields in entries:
            count = deliveries.get(eid, 1)
            if count > self.max_deliveries:
                reason = await self._last_failure(key, eid) or "kept failing"
                await self.dead_letter(
                    key, Bad(eid.decode(), _raw(fields), f"gave up after {count - 1} deliveries: {reason}"), count - 1
                )
            else:
                retry.append((eid, fields))
        if retry:
            await self.handle_entries(key, retry)

    # -- handling -------------------------------------------------------------------------------------

    def _classify(self, entries: list[Entry]) -> tuple[list[tuple[str, Event]], list[str], list[Bad]]:
        todo: list[tuple[str, Event]] = []
        skip: list[str] = []
        bad: list[Bad] = []
        for eid_b, fields in entries:
            eid = eid_b.decode()
            raw = entry_event(fields)
            if raw is None:
                bad.append(Bad(eid, _raw(fields), "entry has neither a '__data__' nor an 'event' field"))
                continue
            try:
                event = self.registry.parse(raw)
            except UnknownEventType:
                skip.append(eid)  # a type nobody here handles (or a newer one): not ours to judge
                continue
            except (ValidationError, ValueError) as exc:
                bad.append(Bad(eid, raw.decode(errors="replace"), f"invalid event: {exc}"))
                continue
            if event.type in self.handlers:
                todo.append((eid, event))
            else:
                skip.append(eid)
        return todo, skip, bad

    async def handle_entries(self, key: str, entries: list[Entry]) -> None:
        if not entries:
            return
        todo, skip, bad = self._classify(entries)
        for b in bad:
            await self.dead_letter(key, b, 1)
        done = await self._apply(key, todo) if todo else []
        acks = skip + done
        if acks:
            await self.redis.xack(key, self.group, *acks)

    async def _apply(self, key: str, todo: list[tuple[str, Event]]) -> list[str]:
        stream = self.stream_of[key]
        try:
            # Optimistic: the whole batch in one transaction.
            async with self.pool.acquire() as conn, conn.transaction():
                await self._handle_batch(conn, stream, [event for _, event in todo])
            return [eid for eid, _ in todo]
        except TRANSIENT:
            raise
        except Exception:
            if len(todo) == 1:
                await self._record_failure(key, todo[0][0], stream)
                return []
        # Something in the batch failed: one transaction each, so the others still go through.
        done: list[str] = []
        for eid, event in todo:
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    await self._handle_one(conn, stream, event)
                done.append(eid)
            except TRANSIENT:
                raise
            except Exception:
                await self._record_failure(key, eid, stream)
        return done

    async def _handle_batch(self, conn: Conn, stream: str, events: list[Event]) -> None:
        """Like ``_handle_one`` for each event, in order, with one round trip for all processed-event records."""
        if len(events) == 1:
            await self._handle_one(conn, stream, events[0])
            return
        # Inserted in id order: two consumers holding overlapping batches (a reclaim race) lock in one order.
        envs = sorted((e.envelope for e in events), key=lambda env: env.id)
        rows = await conn.fetch(
            "insert into processed_events (event_id, stream, type, tenant) "
            "select u.id, $2, u.type, u.tenant from unnest($1::uuid[], $3::text[], $4::text[]) as u(id, type, tenant) "
            "on conflict do nothing returning event_id",
            [env.id for env in envs],
            stream,
            [env.type for env in envs],
            [env.tenant for env in envs],
        )
        fresh = {r["event_id"] for r in rows}
        todo: list[Event] = []
        for event in events:
            if event.envelope.id in fresh:
                fresh.discard(event.envelope.id)  # the same event twice in one batch: the second is a duplicate
                todo.append(event)
        if len(todo) < len(events):
            EVENTS_DUPLICATE.labels(self.service, stream).inc(len(events) - len(todo))
        await self._run_handlers(conn, stream, todo)

    async def _handle_one(self, conn: Conn, stream: str, event: Event) -> None:
        env = event.envelope
        fresh = await conn.fetchval(
            "insert into processed_events (event_id, stream, type, tenant) values ($1, $2, $3, $4) "
            "on conflict do nothing returning true",
            env.id,
            stream,
            env.type,
            env.tenant,
        )
        if not fresh:
            EVENTS_DUPLICATE.labels(self.service, stream).inc()
            return
        await self._run_handlers(conn, stream, [event])

    async def _run_handlers(self, conn: Conn, stream: str, events: list[Event]) -> None:
        """Each event's handler, in stream order; a ``Batched`` one once per run of consecutive events of its type."""
        for type_, run in groupby(events, key=lambda e: e.type):
            handler = self.handlers[type_]
            if isinstance(handler, Batched):
                await self._run_batched(conn, handler, type_, list(run))
            else:
                for event in run:
                    await self._run_handler(conn, handler, event)
        if events:
            EVENTS_CONSUMED.labels(self.service, stream).inc(len(events))

    async def _run_handler(self, conn: Conn, handler: Handler, event: Event) -> None:
        env = event.envelope
        tokens = (event_id_var.set(str(env.id)), correlation_id_var.set(env.correlationid or str(env.id)))
        started = time.perf_counter()
        try:
            with handling(env.type, _traceparent(env), self.service):
                await handler(conn, event)
        finally:
            event_id_var.reset(tokens[0])
            correlation_id_var.reset(tokens[1])
        HANDLER_SECONDS.labels(self.service, env.type).observe(time.perf_counter() - started)

    async def _run_batched(self, conn: Conn, handler: Batched, type_: str, events: list[Event]) -> None:
        started = time.perf_counter()
        with handling_batch(type_, [_traceparent(e.envelope) for e in events], self.service):
            await handler.handle(conn, events)
        # One observation per call: the histogram tells what a handler call costs, whatever it was given.
        HANDLER_SECONDS.labels(self.service, type_).observe(time.perf_counter() - started)

    async def _record_failure(self, key: str, entry_id: str, stream: str) -> None:
        error = _current_error()
        EVENTS_FAILED.labels(self.service, stream).inc()
        log.warning("handler failed; the entry stays pending", extra={"entry_id": entry_id, "error": error})
        async with self.pool.acquire() as conn:
            await conn.execute(
                "insert into delivery_failures (stream, entry_id, error) values ($1, $2, $3) "
                "on conflict (stream, entry_id) do update set error = excluded.error, "
                "failures = delivery_failures.failures + 1, last_at = now()",
                stream,
                entry_id,
                error,
            )

    async def _last_failure(self, key: str, entry_id: bytes) -> str | None:
        async with self.pool.acquire() as conn:
            value = await conn.fetchval(
                "select error from delivery_failures where stream = $1 and entry_id = $2",
                self.stream_of[key],
                entry_id.decode(),
            )
        return str(value) if value is not None else None

    async def dead_letter(self, key: str, bad: Bad, deliveries: int) -> None:
        """Record in PostgreSQL (where the raw entry stays deletable), tell the dead-letter stream, ack."""
        stream = self.stream_of[key]
        event_id = type_ = tenant = None
        with contextlib.suppress(Exception):
            env = self.registry.parse(bad.raw).envelope
            event_id, type_, tenant = env.id, env.type, env.tenant
        if event_id is None:
            with contextlib.suppress(Exception):
                head = json.loads(bad.raw)
                type_, tenant = head.get("type"), head.get("tenant")
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "insert into dead_letters (stream, entry_id, event_id, type, tenant, raw, error, deliveries) "
                "values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict (stream, entry_id) do update set "
                "error = excluded.error, deliveries = excluded.deliveries, status = 'open', resolved_at = null",
                stream,
                bad.entry_id,
                event_id,
                type_,
                tenant,
                bad.raw,
                bad.error[:4000],
                deliveries,
            )
            await conn.execute(
                "delete from delivery_failures where stream = $1 and entry_id = $2", stream, bad.entry_id
            )
        # Only a reference goes to Redis: its AOF would keep personal data long after an erasure.
        await self.redis.xadd(
            self.keys.dead_letters(self.service),
            {"stream": stream, "entry_id": bad.entry_id, "type": str(type_ or ""), "error": bad.error[:500]},
        )
        await self.redis.xack(key, self.group, bad.entry_id)
        EVENTS_DEAD_LETTERED.labels(self.service, stream).inc()
        log.error("entry dead-lettered", extra={"stream": stream, "entry_id": bad.entry_id, "error": bad.error})

    async def retry_dead_letter(self, dead_letter_id: int) -> bool:
        """Handle a dead letter again, now, in this process; True if it went through."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow("select * from dead_letters where id = $1", dead_letter_id)
        if row is None:
            raise LookupError(f"no dead letter {dead_letter_id}")
        event = self.registry.parse(row["raw"])
        handler = self.handlers.get(event.type)
        if handler is None:
            raise LookupError(f"{self.service} does not handle {event.type}")
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await self._handle_one(conn, row["stream"], event)
                await conn.execute(
                    "update dead_letters set status = 'retried', resolved_at = now() where id = $1", row["id"]
                )
        except Exception:
            async with self.pool.acquire() as conn:
                await conn.execute("update dead_letters set error = $2 where id = $1", row["id"], _current_error())
            return False
        return True


def _traceparent(env: Envelope) -> str | None:
    """The envelope's tracing extension, looked up among its extras: ``getattr`` on a pydantic model raises and
    catches an AttributeError for every event that has none."""
    value = (env.model_extra or {}).get("traceparent")
    return value if isinstance(value, str) else None


def _group_lost(exc: ResponseError) -> bool:
    """NOGROUP, or (Redis 7) a blocked read woken because its stream was deleted under it."""
    text = str(exc)
    return "NOGROUP" in text or "no longer exists" in text


def _raw(fields: dict[bytes, bytes]) -> str:
    raw = entry_event(fields)
    if raw is not None:
        return raw.decode(errors="replace")

    return json.dumps({k.decode(errors="replace"): v.decode(errors="replace") for k, v in fields.items()})


def _current_error() -> str:

    exc = sys.exc_info()[1]
    return "".join(traceback.format_exception_only(exc)).strip()[:4000] if exc else "unknown error"


async def accept_newer(conn: Conn, subject: str, sequence: int | None) -> bool:
    """For projections: True if ``sequence`` is newer than anything applied for ``subject`` (and record it).

    Events of one aggregate can arrive out of order (redelivery, reclaim, replay after Redis lost its data);
    a projection that applies only newer snapshots ends in the same state whatever the order.
    """
    if sequence is None:
        return True
    applied = await conn.fetchval(
        "insert into aggregate_versions (subject, sequence) values ($1, $2) on conflict (subject) do update "
        "set sequence = excluded.sequence where aggregate_versions.sequence < excluded.sequence returning true",
        subject,
        sequence,
    )
    return bool(applied)


async def accept_newer_many(conn: Conn, items: Sequence[tuple[str, int | None]]) -> list[bool]:
    """``accept_newer`` for several subjects in one round trip, each subject at most once."""
    known = [(subject, sequence) for subject, sequence in items if sequence is not None]
    if len({subject for subject, _ in known}) != len(known):
        raise ValueError("accept_newer_many takes each subject once")
    applied: set[str] = set()
    if known:
        rows = await conn.fetch(
            "insert into aggregate_versions (subject, sequence) select * from unnest($1::text[], $2::bigint[])"
            " on conflict (subject) do update set sequence = excluded.sequence"
            " where aggregate_versions.sequence < excluded.sequence returning subject",
            [subject for subject, _ in known],
            [sequence for _, sequence in known],
        )
        applied = {r["subject"] for r in rows}
    return [sequence is None or subject in applied for subject, sequence in items]
