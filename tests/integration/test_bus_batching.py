"""The batched hot paths of the bus keep the semantics of the one-at-a-time ones."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date

import pytest
import redis.asyncio as aioredis

from shared.bus.consumer import Batched
from shared.bus.outbox import Pending
from shared.contracts.content import QrScannedV1
from shared.contracts.registry import Event
from shared.db import Conn
from shared.settings import Settings
from tests.integration.bus_fixtures import BusRig, make_rig, record_effect
from tests.support import eventually, running


@pytest.fixture
async def rig(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[BusRig]:
    r = await make_rig(settings, redis)
    try:
        yield r
    finally:
        await r.close()


def _scan(i: int, subject: str | None) -> Pending:
    return Pending(QrScannedV1(code=f"b{i}", target_kind="survey", day=date(2021, 10, 1), scans=i), "stadt-a", subject)


async def test_write_numbers_each_subject_consecutively_after_record(rig: BusRig) -> None:
    await rig.publish(7)  # one event on each of qr/c0 .. qr/c6 through Outbox.record
    subjects = ["qr/c1", "qr/new", "qr/c1", None, "qr/new", "qr/c1"]
    async with rig.producer_pool.acquire() as conn, conn.transaction():
        envs = await rig.outbox.write(conn, [_scan(i, s) for i, s in enumerate(subjects)])
    assert [e.aggregatesequence for e in envs] == [2, 1, 3, None, 2, 4]
    rows = await rig.producer_pool.fetch("select envelope from outbox order by position")
    stored = [json.loads(r["envelope"]) for r in rows][7:]
    assert [e.get("aggregatesequence") for e in stored] == [2, 1, 3, None, 2, 4]
    assert await rig.producer_pool.fetchval("select last from aggregate_sequences where subject = 'qr/c1'") == 4


async def test_the_same_event_twice_in_one_batch_has_one_effect(rig: BusRig) -> None:
    key = await _published_twice(rig, 5)
    assert await rig.redis.xlen(key) == 10
    calls = 0

    async def counting(conn: Conn, event: Event) -> None:
        nonlocal calls
        calls += 1
        await record_effect(conn, event)

    consumer = rig.consumer(handler=counting, batch_size=50)  # all ten entries, duplicates included, in one batch
    async with running(consumer.run):
        await eventually(lambda: _acked(rig, key), what="all acknowledged")
    assert await rig.effects() == 5
    assert calls == 5  # not a failed batch retried one by one: the duplicates were recognised up front
    assert await rig.consumer_pool.fetchval("select count(*) from processed_events") == 5


async def _published_twice(rig: BusRig, n: int) -> str:
    async with rig.producer_pool.acquire() as conn, conn.transaction():
        await rig.outbox.write(conn, [_scan(i, f"qr/{i}") for i in range(n)])
    relay = rig.relay()
    await relay.publish_batch()
    await rig.producer_pool.execute("update outbox set published_at = null")  # published again, as after a crash
    await relay.publish_batch()
    return rig.keys.stream("content")


async def test_a_batched_handler_gets_a_batch_s_fresh_events_in_one_call_in_stream_order(rig: BusRig) -> None:
    key = await _published_twice(rig, 5)
    calls: list[list[int]] = []

    async def all_at_once(conn: Conn, events: list[Event]) -> None:
        calls.append([e.payload.scans for e in events if isinstance(e.payload, QrScannedV1)])
        for event in events:
            await record_effect(conn, event)

    consumer = rig.consumer(handler=Batched(all_at_once), batch_size=50)  # all ten entries in one batch
    async with running(consumer.run):
        await eventually(lambda: _acked(rig, key), what="all acknowledged")
    assert calls == [[0, 1, 2, 3, 4]]  # once, without the duplicates, in the order they were written
    assert await rig.effects() == 5
    assert await rig.consumer_pool.fetchval("select count(*) from processed_events") == 5


async def test_a_failing_batched_handler_is_retried_one_event_at_a_time(rig: BusRig) -> None:
    async with rig.producer_pool.acquire() as conn, conn.transaction():
        await rig.outbox.write(conn, [_scan(i, f"qr/{i}") for i in range(5)])
    await rig.relay().publish_batch()
    key = rig.keys.stream("content")
    sizes: list[int] = []

    async def failing_on_2(conn: Conn, events: list[Event]) -> None:
        sizes.append(len(events))
        for event in events:
            if isinstance(event.payload, QrScannedV1) and event.payload.scans == 2:
                raise RuntimeError("scan 2 is broken")
            await record_effect(conn, event)

    consumer = rig.consumer(handler=Batched(failing_on_2), batch_size=50)
    await consumer.ensure_groups()
    await consumer.read_once()  # own pending list: empty
    await consumer.read_once()
    assert sizes == [5, 1, 1, 1, 1, 1]  # the batch rolled back, then each event in a transaction of its own
    assert await rig.effects() == 4
    failures = await rig.consumer_pool.fetch("select error from delivery_failures")
    assert len(failures) == 1 and "scan 2 is broken" in failures[0]["error"]
    assert (await rig.redis.xpending(key, rig.consumer_group))["pending"] == 1  # left for a redelivery


async def _acked(rig: BusRig, key: str) -> bool:
    try:
        info = await rig.redis.xpending(key, rig.consumer_group)
    except Exception:
        return False
    return bool(info["pending"] == 0 and await rig.effects() > 0)
