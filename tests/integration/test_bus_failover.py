"""A Redis failover that loses the newest entries: the relay notices and publishes them again.

A replica holds a prefix of its primary's writes. Promoted after the primary accepted entries it never got,
it has the stream as it was some entries ago, the ``alive`` marker and the consumer group included. The test
builds exactly that state in a real Redis (the stream rebuilt with only its first entries, under their
original ids), then lets the relay and a consumer run: every event must have its effect, once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from shared.metrics import REDIS_ENTRIES_LOST
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


async def _become_a_lagging_replica(rig: BusRig, keep: int) -> None:
    """Replace the stream with its first ``keep`` entries (same ids), as a replica that lagged would hold it."""
    key = rig.keys.stream("content")
    entries = await rig.redis.xrange(key)
    await rig.redis.delete(key)
    for entry_id, fields in entries[:keep]:
        await rig.redis.xadd(key, fields, id=entry_id)
    await rig.redis.xgroup_create(key, rig.consumer_group, id="0")


async def _effects(rig: BusRig, n: int) -> bool:
    return await rig.effects() >= n


async def test_entries_a_failover_lost_are_published_again(rig: BusRig) -> None:
    await rig.publish(50)
    relay = rig.relay()
    assert await relay.publish_batch() == 50
    before = REDIS_ENTRIES_LOST.labels("content", "content")._value.get()
    await _become_a_lagging_replica(rig, keep=20)

    # The next batch notices before it publishes, so what was lost goes out before what is new.
    await rig.publish(10)
    assert await relay.publish_batch() == 0
    assert REDIS_ENTRIES_LOST.labels("content", "content")._value.get() - before == 30
    async with running(relay.run, rig.consumer().run):
        await eventually(lambda: _effects(rig, 60), timeout=20, what="every event's effect")
    assert await rig.effects() == 60


async def test_a_quiet_relay_notices_the_loss_too(rig: BusRig) -> None:
    await rig.publish(30)
    relay = rig.relay()
    assert await relay.publish_batch() == 30
    await _become_a_lagging_replica(rig, keep=10)
    # Nothing new is written: only the relay's idle check can find the 20 missing entries.
    async with running(relay.run, rig.consumer().run):
        await eventually(lambda: _effects(rig, 30), timeout=20, what="the lost events' effects")
    assert await rig.effects() == 30
