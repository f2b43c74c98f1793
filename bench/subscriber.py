"""Benchmark: what the subscriber kit (civic/subscriber) costs on top of a plain FastStream subscriber.

In one run, on the configured Redis (``REDIS_URL``; localhost default), N CloudEvents in civic's entry format
(``__data__``, ``position``) are written to a stream, then read by

- ``plain_faststream`` (the baseline of the ratio): a FastStream stream subscriber in a consumer group whose
  handler takes a pydantic model of the envelope;
- ``kit``: the kit's subscription of the same stream (reader and claimer, typed model, ``types=`` filter, the
  guard running), handler taking the kit's generated model.

The clock runs from the broker's start until the N-th handler call returned; both brokers have no logger
(FastStream logs every message otherwise). One message per handler call, as both are used. Three
alternating rounds; the best of each is printed.

    REDIS_URL=... python -m bench.subscriber [--events 5000]

Last line: ``kit_vs_plain_faststream: <kit events/s ÷ plain events/s>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import redis.asyncio as aioredis
from faststream.redis import RedisBroker, StreamSub
from pydantic import BaseModel

from bench.common import REDIS_URL
from civic.subscriber import CivicSubscriber
from civic.subscriber.events import RegistrationMeetingCancelledV1

TYPE = "civic.registration.meeting.cancelled.v1"


class Envelope(BaseModel):
    id: str
    type: str
    tenant: str
    data: dict[str, Any]


def event() -> str:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": str(uuid4()),
            "source": "/civic/registration",
            "type": TYPE,
            "time": datetime.now(UTC).isoformat(),
            "subject": f"meeting/{uuid4()}",
            "datacontenttype": "application/json",
            "tenant": "kreis-dithmarschen",
            "aggregatesequence": 1,
            "data": {"meeting_id": str(uuid4()), "reason": "Sturm"},
        }
    )


async def fill(redis: aioredis.Redis, key: str, n: int) -> None:
    pipe = redis.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd(key, {"__data__": event(), "position": str(i + 1)})
    await pipe.execute()
    await redis.xgroup_create(key, "bench", id="0")


async def plain(redis: aioredis.Redis, prefix: str, n: int) -> float:
    key = f"{prefix}:stream:registration"
    await fill(redis, key, n)
    done = asyncio.Event()
    count = 0
    broker = RedisBroker(REDIS_URL, logger=None)

    @broker.subscriber(stream=StreamSub(key, group="bench", consumer="c1"))
    async def handle(e: Envelope) -> None:
        nonlocal count
        count += 1
        if count == n:
            done.set()

    started = time.perf_counter()
    await broker.start()
    await done.wait()
    elapsed = time.perf_counter() - started
    await broker.stop()
    return n / elapsed


async def kit(redis: aioredis.Redis, prefix: str, n: int) -> float:
    await fill(redis, f"{prefix}:stream:registration", n)
    done = asyncio.Event()
    count = 0
    sub = CivicSubscriber(REDIS_URL, group="bench", prefix=prefix, consumer="c1")
    broker = RedisBroker(REDIS_URL, logger=None)

    @sub.subscriber(broker, "registration", types=[RegistrationMeetingCancelledV1])
    async def handle(e: RegistrationMeetingCancelledV1) -> None:
        nonlocal count
        count += 1
        if count == n:
            done.set()

    started = time.perf_counter()
    await sub.start()
    await broker.start()
    await done.wait()
    elapsed = time.perf_counter() - started
    await broker.stop()
    await sub.stop()
    return n / elapsed


async def main(n: int) -> None:
    redis = aioredis.Redis.from_url(REDIS_URL)
    results: dict[str, float] = {}
    try:
        # Alternating, three rounds, the best of each: the first run also pays for imports and warm-up.
        for _ in range(3):
            for name, run in (("plain_faststream", plain), ("kit", kit)):
                prefix = f"bench{secrets.token_hex(4)}"
                try:
                    rate = await run(redis, prefix, n)
                finally:
                    keys = [k async for k in redis.scan_iter(f"{prefix}:*")]
                    if keys:
                        await redis.delete(*keys)
                results[name] = max(rate, results.get(name, 0.0))
        for name, rate in results.items():
            print(f"{name}: {rate:,.0f} events/s ({n} events, best of 3)")
    finally:
        await redis.aclose()
    print(f"kit_vs_plain_faststream: {results['kit'] / results['plain_faststream']:.2f}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=5000)
    asyncio.run(main(p.parse_args().events))
