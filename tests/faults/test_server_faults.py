"""Proofs 6 and 8 of issue 2: Redis restarted without persistence and PostgreSQL stopped with ``-m immediate``
while events flow. Both servers are this test's own (see harness.py)."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.faults.harness import Cluster, Proc
from tests.support import eventually

pytestmark = pytest.mark.faults

FLOW = {"CIVIC_RUN": "a", "CIVIC_COUNT": 600, "CIVIC_TX_SIZE": 10, "CIVIC_PACE": 0.05, "CIVIC_MAINTENANCE": 1}


def _newest_acknowledged(cluster: Cluster) -> int:
    return max((int(code.split("-")[1]) for code in cluster.acknowledged()), default=-1)


def _complaints_per_second(procs: list[Proc], since: float) -> Counter[int]:
    """Warnings and errors logged per wall-clock second since ``since`` (lines start with their time)."""
    per_second: Counter[int] = Counter()
    for proc in procs:
        for line in proc.log().splitlines():
            head = line.split(" ", 2)
            if len(head) < 2 or head[1] not in ("WARNING", "ERROR", "CRITICAL"):
                continue
            try:
                at = float(head[0])
            except ValueError:
                continue
            if at >= since:
                per_second[int(at)] += 1
    return per_second


async def test_redis_restarted_without_persistence_while_events_flow(cluster: Cluster) -> None:
    producer = cluster.producer("p1", **FLOW)
    consumer = cluster.consumer("c1")
    await eventually(lambda: _at_least(cluster.effects(), 150), what="events flowing")
    newest_before = _newest_acknowledged(cluster)
    restarted_at = time.time()
    cluster.redis_server.restart()  # no AOF, no RDB: streams, groups and markers are gone

    async def resumed() -> bool:
        # An event committed after the restart has had its effect.
        return await cluster.max_seq() > newest_before

    await eventually(resumed, timeout=10, interval=0.1, what="processing resumed within 10 s")
    resumed_after = time.time() - restarted_at
    await producer.said("written 600", timeout=60)
    await eventually(lambda: cluster.drained(), timeout=30, what="every committed event processed")
    (await cluster.report()).assert_clean()

    complaints = _complaints_per_second([producer, consumer], restarted_at - 1)
    assert complaints, "the restart went unnoticed: the test did not exercise the fault"
    assert max(complaints.values()) < 50, f"a hot loop of errors: {complaints}"
    assert resumed_after < 10


async def test_postgres_stopped_immediately_while_events_flow(cluster: Cluster) -> None:
    producer = cluster.producer("p1", **{**FLOW, "CIVIC_COUNT": 400})
    cluster.consumer("c1")
    await eventually(lambda: _at_least(cluster.effects(), 100), what="events flowing")
    cluster.pg.stop("immediate")  # like a power cut: no checkpoint, crash recovery on start

    async def noticed() -> bool:
        return "transaction failed" in producer.log()

    await eventually(noticed, what="the producer seeing PostgreSQL gone")
    cluster.pg.start()
    await producer.said("written 400", timeout=60)
    await eventually(lambda: cluster.drained(), timeout=30, what="every acknowledged event processed")
    report = await cluster.report()
    report.assert_clean()
    assert len(report.acknowledged) == 400


async def _at_least(value: object, n: int) -> bool:
    return bool(await value >= n)  # type: ignore[misc, operator]
