"""Outside consumer groups (`civic subscribers`): trimming waits for them within their limits, and a replay of
the outbox goes to one group's own stream (`civic replay --group`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import pytest
import redis.asyncio as aioredis
from faststream.redis import RedisBroker

from civic import cli
from civic.services import ALL
from civic.subscriber import CivicSubscriber
from civic.subscriber.events import ContentEvent
from shared import db
from shared.bus.maintenance import Maintenance
from shared.bus.relay import Relay
from shared.bus.streams import Keys, ensure_group
from shared.clock import FrozenClock
from shared.contracts.content import QrScannedV1
from shared.metrics import OUTSIDE_GROUP_OVERRUN
from shared.settings import Settings, get_settings
from tests.conftest import REDIS_URL
from tests.support import eventually


@pytest.fixture
async def content(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[asyncpg.Pool]:
    """The content service's schema, migrated, and the CLI pointed at this test's database and prefix."""
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    monkeypatch.setenv("CIVIC_STREAM_PREFIX", settings.stream_prefix)
    get_settings.cache_clear()
    d = ALL["content"]
    await db.migrate(settings.database_url, d.schema, d.all_migrations())
    pool = await db.create_pool(settings.database_url, d.schema, max_size=3)
    await pool.execute("truncate outbox, outside_groups, stream_watermarks")
    try:
        yield pool
    finally:
        await pool.close()
        get_settings.cache_clear()


async def publish(pool: asyncpg.Pool, redis: aioredis.Redis, settings: Settings, n: int) -> list[UUID]:
    from shared.bus.outbox import Outbox

    ids = []
    async with pool.acquire() as conn:
        for i in range(n):
            async with conn.transaction():
                payload = QrScannedV1(code=f"c{i}", target_kind="survey", day=datetime(2021, 10, 1).date(), scans=i)
                ids.append((await Outbox("content").record(conn, payload, tenant="kreis-dithmarschen")).id)
    relay = Relay("content", pool, redis, database_url=settings.database_url, keys=Keys(settings.stream_prefix))
    while await relay.publish_batch():
        pass
    return ids


async def civic_group_reads_everything(redis: aioredis.Redis, key: str) -> None:
    """A civic service's own group that has handled everything."""
    await ensure_group(redis, key, "notifications")
    while entries := await redis.xreadgroup("notifications", "n1", {key: ">"}, count=500):
        for _, got in entries:
            await redis.xack(key, "notifications", *[eid for eid, _ in got])


def maintenance(
    pool: asyncpg.Pool, redis: aioredis.Redis, settings: Settings, clock: FrozenClock | None = None
) -> Maintenance:
    return Maintenance("content", pool, redis, keys=Keys(settings.stream_prefix), clock=clock)


async def test_a_registered_group_within_its_limits_holds_trimming(content, redis, settings) -> None:  # type: ignore[no-untyped-def]
    added = await cli.subscribers("add", "content", "stadtportal", max_lag=10_000, max_age_hours=24)
    assert added["group_created"] is True
    await publish(content, redis, settings, 300)
    key = Keys(settings.stream_prefix).stream("content")
    await civic_group_reads_everything(redis, key)
    await maintenance(content, redis, settings).run_once()
    assert await redis.xlen(key) == 300  # the outside group has read nothing yet: nothing is trimmed
    listed = await cli.subscribers("list", "content", None)
    assert [(g["group"], g["lag"], g["overrun_since"]) for g in listed] == [("stadtportal", 300, None)]


async def test_past_max_lag_trimming_proceeds_and_the_operator_is_told(content, redis, settings, caplog) -> None:  # type: ignore[no-untyped-def]
    await cli.subscribers("add", "content", "vergessen", max_lag=50, max_age_hours=24)
    await publish(content, redis, settings, 300)
    key = Keys(settings.stream_prefix).stream("content")
    await civic_group_reads_everything(redis, key)
    await maintenance(content, redis, settings).run_once()
    assert await redis.xlen(key) < 300
    assert "past its limits" in caplog.text
    [row] = await cli.subscribers("list", "content", None)
    assert row["overrun_since"] is not None
    assert OUTSIDE_GROUP_OVERRUN.labels("vergessen", "content")._value.get() == 1


async def test_past_max_age_trimming_proceeds(content, redis, settings) -> None:  # type: ignore[no-untyped-def]
    await cli.subscribers("add", "content", "langsam", max_lag=10_000, max_age_hours=1)
    await publish(content, redis, settings, 300)
    key = Keys(settings.stream_prefix).stream("content")
    await civic_group_reads_everything(redis, key)
    clock = FrozenClock(datetime.now(UTC))
    await maintenance(content, redis, settings, clock).run_once()
    assert await redis.xlen(key) == 300  # young enough
    clock.advance(timedelta(hours=2))
    await maintenance(content, redis, settings, clock).run_once()
    assert await redis.xlen(key) < 300


async def test_a_replay_goes_to_the_groups_own_stream_and_the_kit_reads_it(content, redis, settings) -> None:  # type: ignore[no-untyped-def]
    ids = await publish(content, redis, settings, 12)
    assert await cli.replay_to_group("content", None, "spaet") == 12
    replay_key = Keys(settings.stream_prefix).replay("content", "spaet")
    assert 0 < await redis.ttl(replay_key) <= cli.REPLAY_TTL_SECONDS
    got: list[UUID] = []
    kit = CivicSubscriber(REDIS_URL, group="spaet", prefix=settings.stream_prefix, consumer="c1")
    broker = RedisBroker(REDIS_URL, logger=None)

    @kit.subscriber(broker, "content", replay=True)
    async def handle(event: ContentEvent) -> None:
        got.append(event.id)

    await kit.start()
    await broker.start()
    try:
        await eventually(lambda: _true(len(got) >= 12), what="the replayed events")
    finally:
        await broker.stop()
        await kit.stop()
    assert got == ids  # in outbox order
    live = Keys(settings.stream_prefix).stream("content")
    assert await redis.xlen(live) == 12  # nothing was published again to everyone


async def test_a_civic_services_name_cannot_be_registered(content) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit):
        await cli.subscribers("add", "content", "notifications")


async def _true(value: bool) -> bool:
    return value
