"""Growing, jittered waits for retrying against a server that is down, without a busy loop."""

from __future__ import annotations

import asyncio
import contextlib
import random


class Backoff:
    def __init__(self, initial: float = 0.1, maximum: float = 5.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.initial * (2**self.attempt))
        self.attempt += 1
        # "Full jitter": replicas that lost the same server do not come back in lockstep.
        return random.uniform(ceiling / 2, ceiling)

    async def wait(self, stop: asyncio.Event | None = None) -> None:
        delay = self.next_delay()
        if stop is None:
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)

    def reset(self) -> None:
        self.attempt = 0
