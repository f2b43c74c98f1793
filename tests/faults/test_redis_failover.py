"""A Redis primary SIGKILLed under Sentinel while registrations and survey responses flow through the API and
mails go out.

civic connects through three Sentinels and asks for one replica per batch (``WAIT 1``). The replica is paused
(SIGSTOP) for a second before the primary is killed, so the relay's WAITs time out (counted in
``civic_relay_replication_timeouts_total``) while the primary keeps accepting entries. (The kernel still
buffers the replication stream for the paused replica, so the promoted replica often has everything; the
relay's republishing of entries a failover did lose is proven deterministically in
tests/integration/test_bus_failover.py.) Then the old primary comes back empty and Sentinel makes it a replica
of the new one. The ledger: no acknowledged registration lost, no event missing at the notifications
service, no seat or mail twice; no acknowledged survey response lost or stored twice, the result counters equal
to the stored responses, every ``response.completed`` event in the new primary's stream; the times to
promotion, to accepted writes and to flowing events are printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from civic.devservers import EmbeddedPostgres
from tests.faults.sentinel import Server, Topology, start_topology
from tests.faults.system import ResponseRush, Rush, System, drained, ledger, survey_ledger
from tests.support import eventually

pytestmark = pytest.mark.faults

TARGET = 300


@pytest.fixture
async def servers() -> AsyncIterator[tuple[Path, EmbeddedPostgres, Topology]]:
    folder = Path(tempfile.mkdtemp(prefix="civic-sentinel-"))
    pg = EmbeddedPostgres(folder / "pg").start()
    try:
        topology = await start_topology(folder)
    except BaseException:
        pg.stop("immediate")
        raise
    try:
        yield folder, pg, topology
    finally:
        topology.stop()
        pg.stop("immediate")
        if not os.environ.get("CIVIC_FAULTS_KEEP"):
            shutil.rmtree(folder, ignore_errors=True)


def _metric(text: str, name: str) -> float:
    return sum(float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE))


async def test_redis_primary_killed_under_sentinel(servers: tuple[Path, EmbeddedPostgres, Topology]) -> None:
    folder, pg, topology = servers
    env = {
        "DATABASE_URL": pg.url,
        "REDIS_URL": "redis://127.0.0.1/0",
        "CIVIC_REDIS_SENTINELS": topology.sentinel_addresses,
        "CIVIC_REDIS_MASTER_NAME": "civic",
        "CIVIC_REDIS_WAIT_REPLICAS": "1",
        "CIVIC_REDIS_WAIT_TIMEOUT_MS": "100",
    }
    system = await System(folder, env).start()
    try:
        meeting = await system.create_meeting(capacity=TARGET * 20)
        first = topology.primary.client()
        try:
            survey = await system.open_survey(first)
        finally:
            await first.aclose()
        rush = Rush(system.base_url, meeting)
        answers = ResponseRush(system.base_url, survey)
        stop = asyncio.Event()
        rushing = asyncio.create_task(rush.run(stop, TARGET))
        answering = asyncio.create_task(answers.run(stop))
        await eventually(lambda: _acknowledged(rush, TARGET // 5), timeout=60, what="the rush under way")
        assert answers.acknowledged, "no survey response acknowledged before the kill"
        before_kill = len(answers.acknowledged)

        topology.replica.signal(signal.SIGSTOP)  # replication stalls; the primary keeps accepting entries
        await asyncio.sleep(1.0)
        killed_at = time.monotonic()
        old_primary_port = topology.primary.port
        topology.primary.kill()
        topology.replica.signal(signal.SIGCONT)

        async def failed_over() -> bool:
            return await topology.master_port() == topology.replica.port

        await eventually(failed_over, timeout=30, interval=0.1, what="Sentinel promoting the replica")
        promoted_at = time.monotonic()

        # Events flow again: the relays publish to the new primary and the consumers handle what they read.
        async with httpx.AsyncClient(base_url=system.base_url, timeout=5) as client:

            async def counters() -> tuple[float, float]:
                text = (await client.get("/metrics")).text
                return _metric(text, "civic_events_published_total"), _metric(text, "civic_events_consumed_total")

            published, consumed = await counters()

            async def flowing() -> bool:
                now_published, now_consumed = await counters()
                return now_published > published and now_consumed > consumed

            await eventually(flowing, timeout=60, interval=0.05, what="events flowing after the failover")
        flowing_at = time.monotonic()

        # The old primary returns, empty; Sentinel turns it into a replica of the new one.
        topology.primary = Server(topology.primary.folder, port=old_primary_port, args=topology.primary.args).start()

        async def rejoined() -> bool:
            return await topology.role(topology.primary) == "slave"

        await eventually(rejoined, timeout=60, interval=0.2, what="the old primary replicating the new one")
        stop.set()
        await asyncio.wait_for(asyncio.gather(rushing, answering), timeout=180)

        first_ok = rush.first_ok_after(killed_at)
        assert first_ok is not None
        first_answer = answers.first_ok_after(killed_at)
        assert first_answer is not None, "no survey response accepted after the kill"
        print(
            f"\nRedis primary SIGKILL: promoted after {promoted_at - killed_at:.2f} s; a registration was accepted "
            f"{first_ok - killed_at:.2f} s after the kill, a survey response {first_answer - killed_at:.2f} s after "
            f"it; events were published and consumed again {flowing_at - killed_at:.2f} s after it; "
            f"{rush.unavailable} registration and {answers.unavailable} response answers were 503; "
            f"{len(answers.acknowledged) - before_kill} responses acknowledged after the kill"
        )
        assert not rush.unexpected, f"answers other than 201/503: {rush.unexpected[:5]}"
        assert rush.without_retry_after == 0
        assert not answers.unexpected, f"response answers other than 201/200/503: {answers.unexpected[:5]}"
        assert answers.without_retry_after == 0

        seen: Counter[str] = Counter()
        current: list[aioredis.Redis] = []

        async def primary() -> aioredis.Redis:
            # Whoever Sentinel names now: the ledger's group is read where the relays publish.
            while current:
                await current.pop().aclose()
            current.append(aioredis.Redis(host="127.0.0.1", port=await topology.master_port() or 0))
            return current[0]

        try:
            await eventually(
                lambda: drained(system, rush, pg.url, answers, primary, seen), timeout=120, interval=0.5, what="drained"
            )
            await asyncio.sleep(2)
            final = await ledger(system, rush, pg.url)
            responses = await survey_ledger(system, answers, pg.url, await primary(), seen)
        finally:
            while current:
                await current.pop().aclose()
        async with httpx.AsyncClient(base_url=system.base_url, timeout=5) as client:
            metrics = (await client.get("/metrics")).text
        timeouts = _metric(metrics, "civic_relay_replication_timeouts_total")
        lost = _metric(metrics, "civic_redis_entries_lost_total")
        print(
            f"WAIT timeouts: {timeouts:.0f}; entries the failover lost and the relay published again: {lost:.0f}; "
            f"mails sent again with the same Message-ID: {final.resent_mails}"
        )
        print(responses.line())
        assert timeouts > 0, "no WAIT timed out while the replica was paused: WAIT was not exercised"
        final.assert_clean()
        responses.assert_clean()
    finally:
        system.stop()
        with contextlib.suppress(Exception):
            print(system.log()[-4000:])


async def _acknowledged(rush: Rush, n: int) -> bool:
    return len(rush.acknowledged) >= n
