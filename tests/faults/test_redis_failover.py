"""A Redis primary SIGKILLed under Sentinel while registrations flow through the API and mails go out.

civic connects through three Sentinels and asks for one replica per batch (``WAIT 1``). The replica is paused
(SIGSTOP) for a second before the primary is killed, so the relay's WAITs time out (counted in
``civic_relay_replication_timeouts_total``) while the primary keeps accepting entries. (The kernel still
buffers the replication stream for the paused replica, so the promoted replica usually has everything; the
relay's republishing of entries a failover did lose is proven deterministically in
tests/integration/test_bus_failover.py.) Then the old primary comes back empty and Sentinel makes it a replica
of the new one. The ledger: no acknowledged registration lost, no event missing at the notifications
service, no seat or mail twice; the times to promotion, to accepted writes and to flowing events are printed.
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
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from civic.devservers import EmbeddedPostgres
from tests.faults.sentinel import Server, Topology, start_topology
from tests.faults.system import Rush, System, drained, ledger
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
        meeting = await system.create_meeting(capacity=TARGET * 3)
        rush = Rush(system.base_url, meeting)
        stop = asyncio.Event()
        rushing = asyncio.create_task(rush.run(stop, TARGET))
        await eventually(lambda: _acknowledged(rush, TARGET // 5), timeout=60, what="the rush under way")

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
        await asyncio.wait_for(rushing, timeout=180)
        stop.set()

        first_ok = rush.first_ok_after(killed_at)
        assert first_ok is not None
        print(
            f"\nRedis primary SIGKILL: promoted after {promoted_at - killed_at:.2f} s; a registration was accepted "
            f"{first_ok - killed_at:.2f} s after the kill; events were published and consumed again "
            f"{flowing_at - killed_at:.2f} s after it; {rush.unavailable} answers were 503"
        )
        assert not rush.unexpected, f"answers other than 201/503: {rush.unexpected[:5]}"
        assert rush.without_retry_after == 0

        await eventually(lambda: drained(system, rush, pg.url), timeout=120, interval=0.5, what="drained")
        await asyncio.sleep(2)
        final = await ledger(system, rush, pg.url)
        async with httpx.AsyncClient(base_url=system.base_url, timeout=5) as client:
            metrics = (await client.get("/metrics")).text
        timeouts = _metric(metrics, "civic_relay_replication_timeouts_total")
        lost = _metric(metrics, "civic_redis_entries_lost_total")
        print(
            f"WAIT timeouts: {timeouts:.0f}; entries the failover lost and the relay published again: {lost:.0f}; "
            f"mails sent again with the same Message-ID: {final.resent_mails}"
        )
        assert timeouts > 0, "no WAIT timed out while the replica was paused: WAIT was not exercised"
        final.assert_clean()
    finally:
        system.stop()
        with contextlib.suppress(Exception):
            print(system.log()[-4000:])


async def _acknowledged(rush: Rush, n: int) -> bool:
    return len(rush.acknowledged) >= n
