"""A producing service as a process: writes events through the outbox, relays them, optionally maintains.

Environment: DATABASE_URL, REDIS_URL, CIVIC_PREFIX, CIVIC_SCHEMA (its schema), CIVIC_LEDGER (folder for the
``attempted`` and ``acknowledged`` files), CIVIC_RUN (label of this run's codes), CIVIC_START (first number),
CIVIC_COUNT (events to get acknowledged), CIVIC_TX_SIZE (events per transaction), CIVIC_PACE (seconds between
transactions), CIVIC_MAINTENANCE=1 (run the maintenance task: watermarks and trimming), CIVIC_FAULT
(``kill_before_xadd``: SIGKILL when the relay is about to send a batch; ``kill_after_xadd``: SIGKILL when Redis has
accepted a batch and before it is marked published), CIVIC_FAULT_AFTER (acknowledged events before the fault arms).

A code is written to ``attempted`` before its transaction starts and to ``acknowledged`` only after COMMIT
returned: a transaction whose outcome is unknown (the server died during it) is attempted, not acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import date
from pathlib import Path

import asyncpg

from shared.bus.backoff import Backoff
from shared.bus.errors import TRANSIENT
from shared.bus.maintenance import Maintenance
from shared.bus.outbox import Outbox, Pending
from shared.bus.relay import Relay
from shared.contracts.content import QrScannedV1
from shared.db import create_pool
from tests.faults.procs.common import (
    PRODUCER,
    FaultyRedis,
    configure_logging,
    connect_redis,
    die,
    env,
    fault,
    install_stop,
    keys,
    say,
)

log = logging.getLogger("producer")
TENANT = "kreis-nordfriesland"


class Ledger:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        # O_APPEND writes land in the kernel at once: a SIGKILL right after loses nothing written.
        self._attempted = os.open(folder / "attempted", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._acknowledged = os.open(folder / "acknowledged", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def attempted(self, codes: list[str]) -> None:
        os.write(self._attempted, "".join(f"{c}\n" for c in codes).encode())

    def acknowledged(self, codes: list[str]) -> None:
        os.write(self._acknowledged, "".join(f"{c}\n" for c in codes).encode())


async def write(pool: asyncpg.Pool, ledger: Ledger, progress: list[int], stop: asyncio.Event) -> None:
    run = env("CIVIC_RUN", "r")
    start = int(env("CIVIC_START", "0"))
    count = int(env("CIVIC_COUNT", "0"))
    size = int(env("CIVIC_TX_SIZE", "10"))
    pace = float(env("CIVIC_PACE", "0"))
    outbox = Outbox(PRODUCER)
    backoff = Backoff(0.05, 1.0)
    n = start
    while progress[0] < count and n < start + 3 * count and not stop.is_set():
        numbers = list(range(n, n + size))
        n += size
        codes = [f"{run}-{i}" for i in numbers]
        items = [
            Pending(QrScannedV1(code=c, target_kind="survey", day=date(2021, 10, 1), scans=i), TENANT, f"qr/{i % 7}")
            for c, i in zip(codes, numbers, strict=True)
        ]
        ledger.attempted(codes)
        try:
            async with pool.acquire() as conn, conn.transaction():
                await outbox.write(conn, items)
        except (*TRANSIENT, asyncpg.PostgresError) as exc:
            log.warning("transaction failed; its events count as attempted only", extra={"error": repr(exc)})
            await backoff.wait(stop)
            continue
        backoff.reset()
        ledger.acknowledged(codes)
        progress[0] += len(codes)
        if pace:
            await asyncio.sleep(pace)
    say(f"written {progress[0]}")


async def main() -> None:
    configure_logging()
    url = env("DATABASE_URL")
    stop = asyncio.Event()
    install_stop(stop)
    pool = await create_pool(url, env("CIVIC_SCHEMA"), max_size=4)
    redis = connect_redis()
    progress = [0]
    armed_after = int(env("CIVIC_FAULT_AFTER", "0"))

    def trap() -> None:
        if progress[0] >= armed_after:
            die()

    faulty = FaultyRedis(
        redis,
        before={"pipeline": trap} if fault() == "kill_before_xadd" else None,
        after={"pipeline": trap} if fault() == "kill_after_xadd" else None,
    )
    relay = Relay(PRODUCER, pool, faulty, database_url=url, keys=keys(), batch_size=100, poll_seconds=0.2)  # type: ignore[arg-type]
    tasks = [asyncio.create_task(relay.run(stop))]
    if env("CIVIC_MAINTENANCE", "0") == "1":
        maintenance = Maintenance(PRODUCER, pool, redis, keys=keys(), interval=0.2)
        tasks.append(asyncio.create_task(maintenance.run(stop)))
    say("started")
    await write(pool, Ledger(Path(env("CIVIC_LEDGER"))), progress, stop)
    await stop.wait()
    await asyncio.gather(*tasks, return_exceptions=True)
    await redis.aclose()
    await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
