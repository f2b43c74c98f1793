"""Growing, jittered waits for retrying against a server that is down, without a busy loop."""

from __future__ import annotations

import asyncio
import contextlib
import random


def delay(step: int, initial: float, maximum: float, rng: random.Random | None = None) -> float:
    """The wait before retry ``step`` (0 for the first): doubling from ``initial`` up to ``maximum``, with "full
    jitter" in its upper half, so replicas that lost the same server do not come back in lockstep. The one retry
    formula: loops back off with it, and the mail sender spaces a delivery's attempts with it."""
    ceiling = min(maximum, initial * (2 ** max(0, step)))
    return (rng or random).uniform(ceiling / 2, ceiling)


class Backoff:
    def __init__(self, initial: float = 0.1, maximum: float = 5.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.attempt = 0

    def next_delay(self) -> float:
        wait = delay(self.attempt, self.initial, self.maximum)
        self.attempt += 1
        return wait

    async def wait(self, stop: asyncio.Event | None = None) -> None:
        seconds = self.next_delay()
        if stop is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)

    def reset(self) -> None:
        self.attempt = 0
