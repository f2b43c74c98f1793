"""Proofs 5 and 7 of issue 2: one poison entry among 1,000, and trimming while a consumer is paused."""

from __future__ import annotations

import json
import signal

import pytest

from tests.faults.harness import Cluster
from tests.support import eventually

pytestmark = pytest.mark.faults


async def test_one_poison_entry_among_a_thousand_is_dead_lettered_alone(cluster: Cluster) -> None:
    poison = "a-517"
    cluster.producer("p1", CIVIC_RUN="a", CIVIC_COUNT=1000, CIVIC_TX_SIZE=100)
    cluster.consumer("c1", CIVIC_POISON=poison, CIVIC_MAX_DELIVERIES=3, CIVIC_RECLAIM_IDLE_MS=300)

    async def settled() -> bool:
        dead = await cluster.fetchval("consumer", "select count(*) from dead_letters")
        return dead == 1 and await cluster.effects() == 999 and await cluster.pending() == 0

    await eventually(settled, timeout=60, what="999 effects, one dead letter, nothing pending")
    row = await (await cluster.pool("consumer")).fetchrow("select entry_id, raw, error, deliveries from dead_letters")
    assert json.loads(row["raw"])["data"]["code"] == poison
    assert "poison" in row["error"] and row["deliveries"] == 3
    dead_stream = await cluster.redis.xrange(cluster.keys.dead_letters("consumer"))
    assert [fields[b"entry_id"].decode() for _id, fields in dead_stream] == [row["entry_id"]]

    report = await cluster.report()
    assert len(report.acknowledged) == 1000
    assert report.lost == {poison}
    assert not report.unexpected and report.duplicates == 0


async def test_trimming_while_a_consumer_is_paused_loses_nothing(cluster: Cluster) -> None:
    await cluster.consumer_schema("fast")
    await cluster.declare_groups("consumer", "fast")
    producer = cluster.producer(
        "p1", CIVIC_RUN="a", CIVIC_COUNT=600, CIVIC_TX_SIZE=10, CIVIC_PACE=0.03, CIVIC_MAINTENANCE=1
    )
    sleeper = cluster.consumer("sleeper", CIVIC_BATCH=20)
    cluster.consumer("quick", schema="fast")
    await eventually(lambda: _at_least(cluster, 150), interval=0.02, what="the sleeper handling events")
    sleeper.signal(signal.SIGSTOP)
    await producer.said("written 600", timeout=60)
    # The other group has everything; maintenance may trim only below what the sleeper's group confirmed.
    await eventually(lambda: cluster.drained("fast"), timeout=30, what="the quick group done")
    stopped_at = await cluster.effects()
    assert stopped_at < 600

    async def trimmed() -> bool:
        return int(await cluster.redis.xlen(cluster.stream_key)) < 600

    await eventually(trimmed, what="the stream trimmed while the sleeper is paused")
    assert sleeper.stopped()
    # Everything the paused group has not confirmed is still in the stream.
    handled = await cluster.fetch_codes("consumer", strict=True)
    in_stream = set(await cluster.stream_codes())
    assert set(cluster.acknowledged()) - handled <= in_stream

    sleeper.signal(signal.SIGCONT)
    await eventually(lambda: cluster.drained(), timeout=30, what="the sleeper's group done after resuming")
    (await cluster.report()).assert_clean()
    (await cluster.report("fast")).assert_clean()


async def _at_least(cluster: Cluster, n: int) -> bool:
    return await cluster.effects() >= n
