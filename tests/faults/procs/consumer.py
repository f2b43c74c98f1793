"""A consuming service as a process: the real Consumer with an effect that counts every application.

Environment: DATABASE_URL, REDIS_URL, CIVIC_PREFIX, CIVIC_SCHEMA (its schema, also its group), CIVIC_NAME
(consumer name), CIVIC_RECLAIM_IDLE_MS, CIVIC_MAX_DELIVERIES, CIVIC_BATCH, CIVIC_POISON (a code whose handling
always fails), CIVIC_FAULT, once, at the first opportunity:
- ``kill_before_effect``: SIGKILL inside the handler's transaction, before the effect;
- ``kill_before_xack``: SIGKILL after the batch's transaction committed, before XACK;
- ``pause_before_handle``: SIGSTOP after reading a batch, before its transaction;
- ``pause_in_handler``: SIGSTOP inside the transaction, after the processed-event record, before the effect.
"""

from __future__ import annotations

import asyncio
from typing import Any

from shared.bus.consumer import Consumer, Entry
from shared.contracts.content import QrScannedV1
from shared.contracts.registry import Event
from shared.db import Conn, create_pool
from tests.faults.procs.common import (
    QR_SCANNED,
    FaultyRedis,
    configure_logging,
    connect_redis,
    die,
    env,
    fault,
    install_stop,
    keys,
    pause,
    record_effect,
    say,
)


class Once:
    def __init__(self) -> None:
        self.fired = False

    def __call__(self) -> bool:
        first = not self.fired
        self.fired = True
        return first


FIRST = Once()
#: The task that paused: when its handle_entries call returns, the stale batch has been dealt with for good.
PAUSED_IN: list[asyncio.Task[Any] | None] = [None]


class FaultyConsumer(Consumer):
    async def handle_entries(self, key: str, entries: list[Entry]) -> None:
        if entries and fault() == "pause_before_handle" and FIRST():
            PAUSED_IN[0] = asyncio.current_task()
            pause()
        await super().handle_entries(key, entries)
        if PAUSED_IN[0] is not None and PAUSED_IN[0] is asyncio.current_task():
            PAUSED_IN[0] = None
            say("paused batch done")


async def handle(conn: Conn, event: Event) -> None:
    assert isinstance(event.payload, QrScannedV1)
    if event.payload.code == env("CIVIC_POISON", "-"):
        raise RuntimeError("poison: this entry can never be handled")
    if fault() == "kill_before_effect" and FIRST():
        die()
    if fault() == "pause_in_handler" and FIRST():
        PAUSED_IN[0] = asyncio.current_task()
        pause()
    await record_effect(conn, event)


def kill_once() -> None:
    if FIRST():
        die()


async def main() -> None:
    configure_logging()
    stop = asyncio.Event()
    install_stop(stop)
    schema = env("CIVIC_SCHEMA")
    pool = await create_pool(env("DATABASE_URL"), schema, max_size=4)
    redis = connect_redis()
    faulty = FaultyRedis(redis, before={"xack": kill_once} if fault() == "kill_before_xack" else None)
    consumer = FaultyConsumer(
        schema,
        pool,
        faulty,  # type: ignore[arg-type]
        {QR_SCANNED: handle},
        keys=keys(),
        name=env("CIVIC_NAME", "c1"),
        batch_size=int(env("CIVIC_BATCH", "50")),
        block_ms=100,
        reclaim_idle_ms=int(env("CIVIC_RECLAIM_IDLE_MS", "500")),
        reclaim_interval=0.1,
        max_deliveries=int(env("CIVIC_MAX_DELIVERIES", "3")),
    )
    await consumer.ensure_groups()
    say("started")
    await consumer.run(stop)
    await redis.aclose()
    await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
