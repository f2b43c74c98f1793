"""Benchmark: events per second through the bus, from the outbox write to the committed consumer effect.

In one run, on the configured PostgreSQL and Redis (``DATABASE_URL``, ``REDIS_URL``; localhost defaults):

- ``bus``: a producer records N events through ``Outbox.write`` in transactions of ``--tx`` events (each
  with a subject, so each gets its aggregate sequence number); the ``Relay`` publishes them and a ``Consumer``
  handles them, each effect a row in the consumer's own schema, committed with its processed-event record.
  The handler is a ``Batched`` one (``on_batch`` in a service), making a batch's effects in one
  ``executemany`` as the raw pipeline does. The clock runs from the first write until the N-th effect is
  committed. Producer, relay and consumer share one process and one event loop (uvloop when installed, as
  under uvicorn).
- ``bus_per_event_handler`` (context): the same with a handler of one event at a time (``on``), a round trip
  per effect: what a busy consumer with such a handler spends its time on.

Both pipelines first move one transaction's worth of events outside the clock (connections opened,
statements prepared, the relay listening), so the clock measures the flow, not the start-up.
- ``raw_pipeline`` (the baseline of the ratio): the same work written by hand with asyncpg and redis-py, with
  the same batching, in the same process and event loop: a producer gives the batch's aggregate sequence
  numbers with one upsert and inserts outbox rows (an envelope made with ``json.dumps``) in transactions of
  ``--tx``; a relay loop selects up to 500 unpublished rows, XADDs them in one
  pipeline and marks them published in that transaction; a consumer loop reads XREADGROUP COUNT 100, writes the
  effect rows and a processed-event row per event in one transaction (``executemany``) and XACKs. No pydantic
  envelopes, no validation, no retries, no dead letters, no metrics: what is left is PostgreSQL and Redis doing
  the bus's round trips, so the ratio says what civic's own code costs.
- ``raw_redis_one_at_a_time`` and ``raw_redis_batched`` (context, today's earlier anchors): a bare synchronous
  redis-py loop, one message at a time (XADD, XREADGROUP COUNT 1, XACK), and the same with 100 XADDs pipelined,
  XREADGROUP COUNT 100 and one XACK; no database.

Everything lives under scratch schemas and a unique stream prefix, removed afterwards.

    DATABASE_URL=... REDIS_URL=... python -m bench.bus [--events 10000] [--tx 100]

Last line: ``bus_vs_raw_pipeline: <bus events/s ÷ raw_pipeline events/s>``. The machine may be shared: the raw
pipeline runs before the bus and after each of its ``--rounds`` runs, and each side's fastest run counts, since
other work only ever slows a run down (the baseline, with one run more, has the better chance of a quiet one).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import time
from collections import Counter
from datetime import date
from typing import Any
from uuid import uuid4

import asyncpg
import redis

from bench.common import ADMIN_URL, REDIS_URL
from shared import db
from shared.bus.consumer import Batched, Consumer, Entry
from shared.bus.outbox import Outbox, Pending
from shared.bus.relay import Relay
from shared.bus.streams import Keys, redis_client
from shared.contracts.content import QrScannedV1
from shared.contracts.registry import Event
from shared.db import Conn

QR_SCANNED = "civic.content.qr.scanned.v1"
EFFECTS_SQL = "create table effects (event_id uuid primary key, code text not null, scans int not null)"


async def effect(conn: Conn, event: Event) -> None:
    """The effect of one event, a round trip each (a handler given with ``on``)."""
    assert isinstance(event.payload, QrScannedV1)
    await conn.execute(
        "insert into effects (event_id, code, scans) values ($1, $2, $3)",
        event.envelope.id,
        event.payload.code,
        event.payload.scans,
    )


async def batch_effect(conn: Conn, events: list[Event]) -> None:
    """The effects of a batch's events in one ``executemany``, as the raw pipeline makes them (``on_batch``)."""
    rows = []
    for event in events:
        assert isinstance(event.payload, QrScannedV1)
        rows.append((event.envelope.id, event.payload.code, event.payload.scans))
    await conn.executemany("insert into effects (event_id, code, scans) values ($1, $2, $3)", rows)


class Progress:
    """Events handled so far (their transaction committed, then acknowledged); ``reached`` waits for a count."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = asyncio.Event()

    def add(self, n: int) -> None:
        self.count += n
        self._changed.set()
        self._changed = asyncio.Event()

    async def reached(self, n: int) -> None:
        while self.count < n:
            await self._changed.wait()


class Sink(Consumer):
    """The consumer, counting the entries it is done with."""

    def __init__(self, progress: Progress, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.progress = progress

    async def handle_entries(self, key: str, entries: list[Entry]) -> None:
        await super().handle_entries(key, entries)
        self.progress.add(len(entries))


def items(n: int) -> list[Pending]:
    return [
        Pending(
            QrScannedV1(code=f"c{i}", target_kind="survey", day=date(2021, 10, 1), scans=i),
            "stadt-bench",
            f"qr/{i % 50}",
        )
        for i in range(n)
    ]


async def bus_rate(url: str, redis_url: str, n: int, tx: int, tag: str, *, batched: bool = True) -> tuple[float, int]:
    producer, consumer = f"bench_bus_p_{tag}", f"bench_bus_c_{tag}"
    bus_tables = db.load_migrations(db.BUS_MIGRATIONS)
    await db.migrate(url, producer, bus_tables)
    await db.migrate(url, consumer, [*bus_tables, db.Migration("bench/effects", EFFECTS_SQL)])
    ppool = await db.create_pool(url, producer, max_size=4)
    cpool = await db.create_pool(url, consumer, max_size=4)
    client = redis_client(redis_url)
    keys = Keys(f"bench{tag}")
    # Polling as in production (relay_poll_seconds): NOTIFY wakes the relay; a quicker poll would only make it
    # look for lost entries (a failover's) more often while it waits.
    relay = Relay("content", ppool, client, database_url=url, keys=keys, batch_size=500, poll_seconds=1.0)
    handler = Batched(batch_effect) if batched else effect
    progress = Progress()
    sink = Sink(
        progress, consumer, cpool, client, {QR_SCANNED: handler}, keys=keys, name="bench", batch_size=100, block_ms=100
    )
    await sink.ensure_groups()
    outbox = Outbox("content")
    todo = items(tx + n)  # building payloads is the application's work, not the bus's
    stop = asyncio.Event()
    loops = [asyncio.create_task(relay.run(stop)), asyncio.create_task(sink.run(stop))]
    try:
        async with ppool.acquire() as conn:
            # One transaction's worth through first, outside the clock, as in the raw pipeline: connections
            # opened, statements prepared, the relay listening; the clock measures the flow, not the start.
            async with conn.transaction():
                await outbox.write(conn, todo[:tx])
            await progress.reached(tx)
            started = time.perf_counter()
            for i in range(tx, tx + n, tx):
                async with conn.transaction():
                    await outbox.write(conn, todo[i : i + tx])
        await progress.reached(tx + n)
        elapsed = time.perf_counter() - started
        effects = await cpool.fetchval("select count(*) from effects")
        assert effects == tx + n, f"{effects} effects for {tx + n} events"
        size = len(await ppool.fetchval("select envelope from outbox limit 1"))
    finally:
        stop.set()
        await asyncio.gather(*loops, return_exceptions=True)
        keys_found = [k async for k in client.scan_iter(f"{keys.prefix}:*")]
        if keys_found:
            await client.delete(*keys_found)
        await client.aclose()
        await ppool.close()
        await cpool.close()
        await _drop(url, producer, consumer)
    return n / elapsed, size


async def _drop(url: str, *schemas: str) -> None:
    admin = await asyncpg.connect(url)
    try:
        for schema in schemas:
            await admin.execute(f'drop schema if exists "{schema}" cascade')
            with contextlib.suppress(asyncpg.PostgresError):
                await admin.execute(f'drop role if exists "{db.role_for(schema)}"')
    finally:
        await admin.close()


RAW_SQL = """
create table outbox (position bigserial primary key, id uuid not null, stream text not null,
                     envelope text not null, published_at timestamptz);
create index outbox_unpublished on outbox (position) where published_at is null;
create table processed_events (event_id uuid primary key, processed_at timestamptz not null default now());
create table effects (event_id uuid primary key, code text not null, scans int not null);
create table aggregate_sequences (subject text primary key, last bigint not null);
"""


async def raw_pipeline(url: str, redis_url: str, n: int, tx: int, tag: str) -> float:
    """What the bus does, by hand and with the same batching: events/s from the first write to the N-th effect."""
    schema = f"bench_raw_{tag}"
    admin = await asyncpg.connect(url)
    await admin.execute(f'drop schema if exists "{schema}" cascade; create schema "{schema}"')
    await admin.execute(f'set search_path = "{schema}"; {RAW_SQL}')
    await admin.close()
    pool = await asyncpg.create_pool(url, min_size=4, max_size=8, server_settings={"search_path": schema})
    assert pool is not None
    client = redis_client(redis_url)
    key, group = f"bench{tag}:rawpipe", "g"
    await client.xgroup_create(key, group, id="0", mkstream=True)
    todo = items(tx + n)
    progress = Progress()
    stop = asyncio.Event()

    async def relay() -> None:
        while not stop.is_set():
            async with pool.acquire() as conn, conn.transaction():
                rows = await conn.fetch(
                    "select position, envelope from outbox where published_at is null order by position limit 500"
                )
                if rows:
                    pipe = client.pipeline(transaction=False)
                    for row in rows:
                        pipe.xadd(key, {"__data__": row["envelope"], "position": row["position"]})
                    await pipe.execute()
                    await conn.execute(
                        "update outbox set published_at = now() where position = any($1::bigint[])",
                        [r["position"] for r in rows],
                    )
            if not rows:
                await asyncio.sleep(0.002)

    async def consumer() -> None:
        while not stop.is_set():
            response = await client.xreadgroup(group, "c", {key: ">"}, count=100, block=100)
            for _, entries in response or []:
                events = [json.loads(fields[b"__data__"]) for _, fields in entries]
                async with pool.acquire() as conn, conn.transaction():
                    await conn.executemany(
                        "insert into effects (event_id, code, scans) values ($1, $2, $3)",
                        [(e["id"], e["data"]["code"], e["data"]["scans"]) for e in events],
                    )
                    await conn.executemany(
                        "insert into processed_events (event_id) values ($1)", [(e["id"],) for e in events]
                    )
                await client.xack(key, group, *[eid for eid, _ in entries])
                progress.add(len(entries))

    async def produce(conn: asyncpg.Connection, batch: list[Pending]) -> None:
        rows = []
        async with conn.transaction():
            # Aggregate sequence numbers as the bus gives them: one upsert for the batch's subjects.
            counts = Counter(e.subject for e in batch if e.subject is not None)
            subjects = sorted(counts)
            last = await conn.fetch(
                "insert into aggregate_sequences as a (subject, last) select u.s, u.n"
                " from unnest($1::text[], $2::bigint[]) as u(s, n) order by u.s"
                " on conflict (subject) do update set last = a.last + excluded.last returning subject, last",
                subjects,
                [counts[x] for x in subjects],
            )
            following = {r["subject"]: r["last"] - counts[r["subject"]] + 1 for r in last}
            for payload, tenant, subject in ((e.payload, e.tenant, e.subject) for e in batch):
                event_id = uuid4()
                sequence = None
                if subject is not None:
                    sequence = following[subject]
                    following[subject] += 1
                envelope = json.dumps(
                    {
                        "specversion": "1.0",
                        "id": str(event_id),
                        "source": "/civic/content",
                        "type": QR_SCANNED,
                        "subject": subject,
                        "tenant": tenant,
                        "aggregatesequence": sequence,
                        "data": payload.model_dump(mode="json"),
                    }
                )
                rows.append((event_id, "content", envelope))
            await conn.executemany("insert into outbox (id, stream, envelope) values ($1, $2, $3)", rows)

    loops = [asyncio.create_task(relay()), asyncio.create_task(consumer())]
    try:
        async with pool.acquire() as conn:
            # One transaction's worth through first, outside the clock, as for the bus.
            await produce(conn, todo[:tx])
            await progress.reached(tx)
            started = time.perf_counter()
            for i in range(tx, tx + n, tx):
                await produce(conn, todo[i : i + tx])
        await progress.reached(tx + n)
        elapsed = time.perf_counter() - started
        effects = await pool.fetchval("select count(*) from effects")
        assert effects == tx + n, f"{effects} effects for {tx + n} events"
    finally:
        stop.set()
        await asyncio.gather(*loops, return_exceptions=True)
        await client.delete(key)
        await client.aclose()
        await pool.close()
        admin = await asyncpg.connect(url)
        await admin.execute(f'drop schema if exists "{schema}" cascade')
        await admin.close()
    return n / elapsed


def raw_one_at_a_time(redis_url: str, n: int, size: int, tag: str) -> float:
    r = redis.Redis.from_url(redis_url)
    key = f"bench{tag}:raw1"
    body = b"x" * size
    try:
        r.xgroup_create(key, "g", id="0", mkstream=True)
        started = time.perf_counter()
        for _ in range(n):
            r.xadd(key, {"__data__": body})
            response = r.xreadgroup("g", "c", {key: ">"}, count=1)
            r.xack(key, "g", response[0][1][0][0])
        return n / (time.perf_counter() - started)
    finally:
        r.delete(key)
        r.close()


def raw_batched(redis_url: str, n: int, size: int, tag: str, batch: int = 100) -> float:
    r = redis.Redis.from_url(redis_url)
    key = f"bench{tag}:rawb"
    body = b"x" * size
    try:
        r.xgroup_create(key, "g", id="0", mkstream=True)
        started = time.perf_counter()
        for _ in range(0, n, batch):
            pipe = r.pipeline(transaction=False)
            for _ in range(batch):
                pipe.xadd(key, {"__data__": body})
            pipe.execute()
            response = r.xreadgroup("g", "c", {key: ">"}, count=batch)
            r.xack(key, "g", *[entry_id for entry_id, _ in response[0][1]])
        return n / (time.perf_counter() - started)
    finally:
        r.delete(key)
        r.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--tx", type=int, default=100, help="events per producer transaction")
    parser.add_argument("--raw", type=int, default=3_000, help="messages in a one-at-a-time loop (x5 batched)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of the bus, each followed by the raw pipeline")
    args = parser.parse_args()
    url, redis_url = ADMIN_URL, REDIS_URL
    tag = secrets.token_hex(3)
    runner = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    # The machine is shared: the baseline runs before the bus and after each of its runs; the fastest of each counts.
    size = 440
    pipes = [runner(raw_pipeline(url, redis_url, args.events, args.tx, tag))]
    buses = []
    for _ in range(args.rounds):
        rate, size = runner(bus_rate(url, redis_url, args.events, args.tx, tag))
        buses.append(rate)
        pipes.append(runner(raw_pipeline(url, redis_url, args.events, args.tx, tag)))
    bus, pipeline = max(buses), max(pipes)
    per_event, _ = runner(bus_rate(url, redis_url, args.events, args.tx, tag, batched=False))
    one = raw_one_at_a_time(redis_url, args.raw, size, tag)
    batched = raw_batched(redis_url, args.raw * 5, size, tag)
    print(f"events: {args.events} in transactions of {args.tx}; envelope size {size} bytes")
    print(
        f"bus (outbox write -> committed consumer effect, batch handler): {bus:,.0f} events/s"
        f" (fastest of {', '.join(f'{b:,.0f}' for b in buses)})"
    )
    print(f"bus_per_event_handler (a round trip per effect): {per_event:,.0f} events/s (context)")
    print(
        f"raw_pipeline (the same work by hand, same batching): {pipeline:,.0f} events/s"
        f" (fastest of {', '.join(f'{p:,.0f}' for p in pipes)}, in the order run)"
    )
    print(f"raw_redis_one_at_a_time (XADD + XREADGROUP COUNT 1 + XACK, sync redis-py): {one:,.0f} msg/s (context)")
    print(f"raw_redis_batched (100 pipelined XADD + XREADGROUP COUNT 100 + XACK): {batched:,.0f} msg/s (context)")
    print(f"bus_vs_raw_redis: {bus / one:.3f}, bus_vs_raw_redis_batched: {bus / batched:.3f} (context only)")
    print(f"bus_per_event_handler_vs_raw_pipeline: {per_event / pipeline:.3f} (context only)")
    print(f"bus_vs_raw_pipeline: {bus / pipeline:.3f}")


if __name__ == "__main__":
    main()
