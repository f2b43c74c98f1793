"""Two replicas of a service run a relay each: one publishes at a time (an advisory lock per service), so the
stream holds every event once and in outbox order. A control with the lock taken apart shows what it prevents."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from shared import db
from shared.bus.relay import Relay
from shared.settings import Settings
from tests.integration.bus_fixtures import BusRig, make_rig
from tests.support import eventually, running


@pytest.fixture
async def rig(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[BusRig]:
    r = await make_rig(settings, redis)
    try:
        yield r
    finally:
        await r.close()


async def _second_replica(rig: BusRig) -> tuple[Relay, object]:
    """A relay on a pool of its own, as a second process of the same service would have."""
    schema = await rig.producer_pool.fetchval("select current_schema()")
    pool = await db.create_pool(rig.settings.database_url, schema, max_size=4)
    relay = Relay("content", pool, rig.redis, database_url=rig.settings.database_url, keys=rig.keys, poll_seconds=0.05)
    return relay, pool


async def _positions(rig: BusRig) -> list[int]:
    return [int(fields[b"position"]) for _, fields in await rig.redis.xrange(rig.keys.stream("content"))]


async def test_two_replicas_publish_each_event_once_in_order(rig: BusRig) -> None:
    other, pool = await _second_replica(rig)
    try:
        first = rig.relay(batch_size=20)
        first.poll_seconds = 0.05
        async with running(first.run, other.run):
            for _ in range(15):
                await rig.publish(20)
                await asyncio.sleep(0.01)

            async def all_published() -> bool:
                return len(await _positions(rig)) >= 300

            await eventually(all_published, timeout=30, what="300 entries in the stream")
            await asyncio.sleep(0.5)  # a second publication of anything would show now
        positions = await _positions(rig)
        assert len(positions) == 300 == len(set(positions))
        assert positions == sorted(positions), "the stream is out of outbox order"
    finally:
        await pool.close()  # type: ignore[attr-defined]


async def test_concurrent_batches_of_two_replicas_and_the_control_without_the_lock(rig: BusRig) -> None:
    other, pool = await _second_replica(rig)
    try:
        await rig.publish(100)
        first = rig.relay(batch_size=500)
        published = sorted(await asyncio.gather(first.publish_batch(), other.publish_batch()))
        assert published == [0, 100], "both replicas published the same batch"
        assert len(await _positions(rig)) == 100

        # Control: the same race with the lock taken apart (each replica its own key) publishes twice.
        other._lock_key = "relay:content-without-the-shared-lock"
        await rig.publish(100)
        both = await asyncio.gather(first.publish_batch(), other.publish_batch())
        assert both == [100, 100], both
        assert len(await _positions(rig)) == 300
    finally:
        await pool.close()  # type: ignore[attr-defined]
