"""The bus against real PostgreSQL and Redis: outbox to effect, duplicates, dead letters, reclaim, loss."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from shared.bus.relay import Relay
from shared.contracts.registry import Event
from shared.db import Conn
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


async def test_committed_events_reach_the_consumer_once(rig: BusRig) -> None:
    await rig.publish(120)
    consumer = rig.consumer()
    async with running(rig.relay().run, consumer.run):
        await eventually(lambda: _equals(rig.effects, 120), what="120 effects")
    assert await rig.producer_pool.fetchval("select count(*) from outbox where published_at is null") == 0
    info = await rig.redis.xpending(rig.keys.stream("content"), rig.consumer_group)
    assert info["pending"] == 0


async def test_events_carry_tenant_and_per_subject_sequence(rig: BusRig) -> None:
    await rig.publish(14)
    rows = await rig.producer_pool.fetch("select envelope from outbox order by position")
    envelopes = [json.loads(r["envelope"]) for r in rows]
    assert {e["tenant"] for e in envelopes} == {"kreis-dithmarschen"}
    by_subject: dict[str, list[int]] = {}
    for e in envelopes:
        by_subject.setdefault(e["subject"], []).append(e["aggregatesequence"])
    assert all(seqs == list(range(1, len(seqs) + 1)) for seqs in by_subject.values())
    assert all(e["specversion"] == "1.0" and e["type"] == "civic.content.qr.scanned.v1" for e in envelopes)


async def test_entries_hold_the_event_in_data_and_the_outbox_position(rig: BusRig) -> None:
    await rig.publish(3)
    await rig.relay().publish_batch()
    entries = await rig.redis.xrange(rig.keys.stream("content"))
    rows = await rig.producer_pool.fetch("select position, envelope from outbox order by position")
    assert [fields for _, fields in entries] == [
        {b"__data__": r["envelope"].encode(), b"position": str(r["position"]).encode()} for r in rows
    ]


async def test_a_rolling_upgrade_loses_nothing(rig: BusRig) -> None:
    """Old relays write the field 'event', new ones '__data__' (or 'event' while old consumers run): every
    entry is handled once, whichever field it has."""
    await rig.publish(4)
    old = Relay(
        "content",
        rig.producer_pool,
        rig.redis,
        database_url=rig.settings.database_url,
        keys=rig.keys,
        batch_size=2,
        event_field="event",
    )
    await old.publish_batch()
    await rig.relay().publish_batch()
    fields = [set(f) for _, f in await rig.redis.xrange(rig.keys.stream("content"))]
    assert fields == [{b"event", b"position"}] * 2 + [{b"__data__", b"position"}] * 2
    consumer = rig.consumer()
    async with running(consumer.run):
        await eventually(lambda: _equals(rig.effects, 4), what="4 effects")
        await eventually(lambda: _pending_zero(rig))
    assert await rig.consumer_pool.fetchval("select count(*) from dead_letters") == 0


async def test_a_duplicate_entry_has_one_effect(rig: BusRig) -> None:
    await rig.publish(5)
    relay = rig.relay()
    await relay.publish_batch()
    # The relay dies after XADD and before marking published: the same rows go out again.
    await rig.producer_pool.execute("update outbox set published_at = null")
    await relay.publish_batch()
    assert await rig.redis.xlen(rig.keys.stream("content")) == 10
    consumer = rig.consumer()
    async with running(consumer.run):
        await eventually(lambda: _pending_zero(rig), what="all entries acknowledged")
    assert await rig.effects() == 5


async def test_malformed_entry_goes_to_dead_letters_at_once(rig: BusRig) -> None:
    await rig.publish(3)
    await rig.relay().publish_batch()
    key = rig.keys.stream("content")
    await rig.redis.xadd(key, {"event": b"{not json"})
    bad = json.dumps(
        {
            "specversion": "1.0",
            "id": "8b0f0c1e-7c4a-4c7b-9d35-1f1f7a1b2c3d",
            "source": "/x",
            "type": "civic.content.qr.scanned.v1",
            "time": "2021-10-01T00:00:00Z",
            "tenant": "t",
            "data": {"code": 5},
        }
    )
    await rig.redis.xadd(key, {"event": bad})
    consumer = rig.consumer()
    async with running(consumer.run):
        await eventually(lambda: _equals(rig.effects, 3))
        await eventually(lambda: _dead(rig, 2), what="two dead letters")
    rows = await rig.consumer_pool.fetch("select error, deliveries, type from dead_letters order by id")
    assert "invalid event" in rows[0]["error"] and rows[0]["deliveries"] == 1
    assert rows[1]["type"] == "civic.content.qr.scanned.v1"
    assert await rig.redis.xlen(rig.keys.dead_letters(rig.consumer_group)) == 2
    assert await _pending_zero(rig)


async def test_a_failing_handler_is_retried_then_dead_lettered_and_can_be_retried(rig: BusRig) -> None:
    calls = 0
    broken = True

    async def flaky(conn: Conn, event: Event) -> None:
        nonlocal calls
        calls += 1
        if broken:
            raise RuntimeError("template missing")
        from tests.integration.bus_fixtures import record_effect

        await record_effect(conn, event)

    await rig.publish(1)
    await rig.relay().publish_batch()
    consumer = rig.consumer(handler=flaky, reclaim_idle_ms=100, max_deliveries=3)
    async with running(consumer.run):
        await eventually(lambda: _dead(rig, 1), what="dead letter after retries")
    assert calls == 3
    row = await rig.consumer_pool.fetchrow("select id, error, deliveries from dead_letters")
    assert "template missing" in row["error"] and row["deliveries"] == 3
    assert await _pending_zero(rig)
    broken = False
    assert await consumer.retry_dead_letter(row["id"]) is True
    assert await rig.effects() == 1
    assert await rig.consumer_pool.fetchval("select status from dead_letters") == "retried"


async def test_entries_of_a_dead_consumer_are_reclaimed(rig: BusRig) -> None:
    await rig.publish(20)
    await rig.relay().publish_batch()
    key = rig.keys.stream("content")
    await rig.consumer("dead").ensure_groups()
    # A consumer reads everything and dies before handling it.
    await rig.redis.xreadgroup(rig.consumer_group, "dead", {key: ">"}, count=100)
    assert (await rig.redis.xpending(key, rig.consumer_group))["pending"] == 20
    live = rig.consumer("live", reclaim_idle_ms=200)
    async with running(live.run):
        await eventually(lambda: _equals(rig.effects, 20), what="reclaimed effects")
        await eventually(lambda: _pending_zero(rig))


async def test_redis_losing_everything_is_recovered_from_the_outbox(rig: BusRig) -> None:
    await rig.publish(30)
    consumer = rig.consumer()
    maintenance = rig.maintenance()
    async with running(rig.relay().run, consumer.run, maintenance.run):
        await eventually(lambda: _equals(rig.effects, 30))
        await eventually(lambda: _watermark_set(rig), what="watermark")
        # Redis restarts without persistence: this prefix's streams, groups and marker vanish.
        keys = [k async for k in rig.redis.scan_iter(f"{rig.settings.stream_prefix}:*")]
        await rig.redis.delete(*keys)
        await rig.publish(30)
        await eventually(lambda: _equals(rig.effects, 60), timeout=20, what="60 effects after loss")
    assert await rig.effects() == 60


async def test_trimming_keeps_what_a_group_has_not_acknowledged(rig: BusRig) -> None:
    await rig.publish(300)
    relay = rig.relay(batch_size=500)
    await relay.publish_batch()
    key = rig.keys.stream("content")
    c = rig.consumer()
    await c.ensure_groups()
    # The group reads 100 and acknowledges none (a paused consumer).
    await rig.redis.xreadgroup(rig.consumer_group, "paused", {key: ">"}, count=100)
    await rig.maintenance().run_once()
    assert await rig.redis.xlen(key) == 300
    async with running(rig.consumer("live", reclaim_idle_ms=100).run):
        await eventually(lambda: _equals(rig.effects, 300))
        await eventually(lambda: _pending_zero(rig))
    await rig.maintenance().run_once()
    assert await rig.redis.xlen(key) < 300


async def _equals(probe, expected: int) -> bool:  # type: ignore[no-untyped-def]
    return bool(await probe() == expected)


async def _pending_zero(rig: BusRig) -> bool:
    try:
        info = await rig.redis.xpending(rig.keys.stream("content"), rig.consumer_group)
    except ResponseError:  # the group does not exist yet
        return False
    return bool(info["pending"] == 0)


async def _dead(rig: BusRig, n: int) -> bool:
    return bool(await rig.consumer_pool.fetchval("select count(*) from dead_letters") == n)


async def _watermark_set(rig: BusRig) -> bool:
    return bool(await rig.producer_pool.fetchval("select count(*) from stream_watermarks"))
