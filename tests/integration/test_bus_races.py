"""Redis losing its data at the most awkward moment, reproduced deterministically in one process.

The relay checks that Redis still knows it (the ``alive`` marker) before each batch; Redis can restart between
that check and the batch's XADDs. The batch then lands in the new, empty Redis, is consumed there, and a
maintenance pass may measure the new stream's watermark before the relay notices the loss. The recovery
publishes again only what lies at or after the watermark: measured in the new Redis, it would skip every event
the old Redis held unconsumed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

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


class LosesDataAfterCheck:
    """A Redis client through which the server 'restarts' (this prefix's keys vanish) right after the relay's
    alive check answered yes."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self.armed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def exists(self, *names: Any) -> int:
        answer = int(await self._client.exists(*names))
        if self.armed:
            self.armed = False
            keys = [k async for k in self._client.scan_iter(f"{self._prefix}:*")]
            if keys:
                await self._client.delete(*keys)
        return answer


async def test_redis_restarting_between_the_alive_check_and_the_xadd_loses_nothing(rig: BusRig) -> None:
    flaky = LosesDataAfterCheck(rig.redis, rig.settings.stream_prefix)
    relay = rig.relay()
    relay.redis = flaky  # type: ignore[assignment]
    consumer = rig.consumer()
    maintenance = rig.maintenance()

    await rig.publish(10)
    await relay.publish_batch()  # the first call finds no marker, recovers (nothing to do) and publishes
    await consumer.ensure_groups()
    await consumer.read_once()  # its own pending list: empty
    await consumer.read_once()  # consumed: the first ten
    await maintenance.run_once()
    assert await rig.effects() == 10

    await rig.publish(10)
    await relay.publish_batch()  # published to the old Redis; nobody reads them before the restart
    flaky.armed = True
    await rig.publish(10)
    await relay.publish_batch()  # the alive check passes, then Redis restarts, then the XADDs

    async with running(consumer.run):
        # The batch that reached the new Redis is consumed there, and maintenance measures the new stream
        # before the relay has published again.
        await eventually(lambda: _at_least(rig, 20), what="the batch in the new Redis consumed")
        await maintenance.run_once()
        async with running(relay.run, maintenance.run):
            await eventually(lambda: _at_least(rig, 30), timeout=10, what="all 30 events, none lost")
    assert await rig.effects() == 30


async def _at_least(rig: BusRig, n: int) -> bool:
    return await rig.effects() >= n
