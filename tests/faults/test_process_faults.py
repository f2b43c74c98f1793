"""Proofs 1-4 of issue 2: producers, relays and consumers killed or paused at the worst moments."""

from __future__ import annotations

import signal

import pytest

from tests.faults.harness import Cluster
from tests.support import eventually

pytestmark = pytest.mark.faults


async def _unpublished(cluster: Cluster) -> int:
    return int(await cluster.fetchval("producer", "select count(*) from outbox where published_at is null") or 0)


async def _all_in_stream(cluster: Cluster) -> bool:
    return set(cluster.acknowledged()) <= set(await cluster.stream_codes())


async def test_producer_killed_after_commit_before_publish_loses_nothing(cluster: Cluster) -> None:
    producer = cluster.producer(
        "p1", CIVIC_RUN="a", CIVIC_COUNT=300, CIVIC_FAULT="kill_before_xadd", CIVIC_FAULT_AFTER=100
    )
    assert await producer.exited() == -signal.SIGKILL
    acknowledged = set(cluster.acknowledged())
    assert len(acknowledged) >= 100
    # The fault window was hit: committed rows that never reached Redis.
    assert await _unpublished(cluster) > 0
    assert not acknowledged <= set(await cluster.stream_codes())

    cluster.producer("p2", CIVIC_RUN="b", CIVIC_START=100_000, CIVIC_COUNT=0)  # the restarted service
    await eventually(lambda: _all_in_stream(cluster), what="every committed event in the stream")
    cluster.consumer("c1")
    await eventually(lambda: cluster.drained(), what="every committed event consumed")
    (await cluster.report()).assert_clean()
    assert await _unpublished(cluster) == 0


async def test_relay_killed_after_xadd_before_marking_published_has_one_effect(cluster: Cluster) -> None:
    producer = cluster.producer(
        "p1", CIVIC_RUN="a", CIVIC_COUNT=300, CIVIC_FAULT="kill_after_xadd", CIVIC_FAULT_AFTER=100
    )
    assert await producer.exited() == -signal.SIGKILL
    in_stream = await cluster.stream_codes()
    # The fault window was hit: entries in Redis whose rows are not marked published.
    published = int(await cluster.fetchval("producer", "select count(*) from outbox where published_at is not null"))
    assert sum(in_stream.values()) > published

    cluster.producer("p2", CIVIC_RUN="b", CIVIC_START=100_000, CIVIC_COUNT=0)
    await eventually(lambda: _all_in_stream(cluster), what="every committed event in the stream")

    async def duplicated() -> bool:
        return any(n > 1 for n in (await cluster.stream_codes()).values())

    await eventually(duplicated, what="the unmarked batch published a second time")
    cluster.consumer("c1")
    await eventually(lambda: cluster.drained(), what="every committed event consumed")
    report = await cluster.report()
    report.assert_clean()
    assert sum((await cluster.stream_codes()).values()) > len(report.read)  # duplicates were delivered


async def _publish(cluster: Cluster, count: int) -> None:
    cluster.producer("p1", CIVIC_RUN="a", CIVIC_COUNT=count, CIVIC_TX_SIZE=20)
    await eventually(lambda: _all_ready(cluster, count), what=f"{count} events in the stream")


async def _all_ready(cluster: Cluster, count: int) -> bool:
    return len(cluster.acknowledged()) == count and await _all_in_stream(cluster)


@pytest.mark.parametrize("fault", ["kill_before_xack", "kill_before_effect"])
async def test_a_killed_consumers_entries_are_reclaimed_with_one_effect(cluster: Cluster, fault: str) -> None:
    await _publish(cluster, 200)
    doomed = cluster.consumer("doomed", CIVIC_FAULT=fault)
    assert await doomed.exited() == -signal.SIGKILL
    held = (await cluster.pending_by_consumer()).get("doomed", 0)
    assert held > 0  # it died holding entries
    effects_before = await cluster.effects()
    if fault == "kill_before_xack":
        assert effects_before == held  # the effects of its batch were committed, nothing acknowledged
    else:
        assert effects_before == 0

    cluster.consumer("live")
    await eventually(lambda: cluster.drained(), what="every event consumed, pending list empty")
    (await cluster.report()).assert_clean()
    assert await cluster.pending() == 0


@pytest.mark.parametrize("fault", ["pause_before_handle", "pause_in_handler"])
async def test_a_paused_consumer_resumed_after_reclaim_has_no_double_effect(cluster: Cluster, fault: str) -> None:
    await _publish(cluster, 200)
    sleeper = cluster.consumer("sleeper", CIVIC_FAULT=fault, CIVIC_RECLAIM_IDLE_MS=500)
    await sleeper.said("pausing")
    await eventually(lambda: _true(sleeper.stopped()), what="sleeper stopped")
    held = (await cluster.pending_by_consumer())["sleeper"]
    assert held > 0

    cluster.consumer("live", CIVIC_RECLAIM_IDLE_MS=500)

    async def reclaimed() -> bool:
        return (await cluster.pending_by_consumer()).get("sleeper", 0) == 0

    # Past the idle time the live consumer takes the sleeper's entries over.
    await eventually(reclaimed, what="the sleeper's entries claimed by the live consumer")
    if fault == "pause_before_handle":
        await eventually(lambda: cluster.drained(), what="all handled while the sleeper sleeps")
    sleeper.signal(signal.SIGCONT)
    await sleeper.said("paused batch done")
    await eventually(lambda: cluster.drained(), what="every event consumed after the resume")
    assert sleeper.popen.poll() is None  # it carried on, it did not crash
    (await cluster.report()).assert_clean()


async def _true(value: bool) -> bool:
    return value
