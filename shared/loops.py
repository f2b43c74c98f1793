"""Background work that repeats: one helper for the "do a pass, wait, back off on failure" loop every service and
the bus run, so stopping, waking and backing off behave the same everywhere."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from shared.bus.backoff import Backoff
from shared.bus.errors import TRANSIENT
from shared.bus.wakeup import Wakeup

log = logging.getLogger(__name__)

#: A background loop as the service runtime runs it: until ``stop`` is set.
Loop = Callable[[asyncio.Event], Awaitable[None]]


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less when ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def repeat(
    name: str,
    step: Callable[[], Awaitable[object]],
    stop: asyncio.Event,
    *,
    interval: float,
    wakeup: Wakeup | None = None,
    backoff: Backoff | None = None,
    again: Callable[[object], bool] = lambda _result: False,
) -> None:
    """Run ``step`` until ``stop``: after a pass, wait ``interval`` seconds (or until ``wakeup`` fires), or go on
    at once when ``again(result)`` says there is more to do (a full batch). A server that is down
    (``TRANSIENT``) is retried with a growing, jittered wait and logged as a warning; any other failure is a bug,
    logged with its traceback, and retried the same way, since a dead loop would stop its work for good, silently.
    """
    backoff = backoff or Backoff(0.5, 10)
    while not stop.is_set():
        since = wakeup.generation() if wakeup is not None else 0
        try:
            result = await step()
        except asyncio.CancelledError:
            raise
        except TRANSIENT as exc:
            log.warning("%s postponed: a server is unreachable", name, extra={"error": repr(exc)})
            await backoff.wait(stop)
            continue
        except Exception:
            log.exception("%s pass failed", name)
            await backoff.wait(stop)
            continue
        backoff.reset()
        if again(result):
            continue
        if wakeup is not None:
            await wakeup.wait(since, interval, stop)
        else:
            await wait_or_stop(stop, interval)


def every(
    name: str,
    step: Callable[[], Awaitable[object]],
    *,
    interval: float,
    wakeup: Wakeup | None = None,
    again: Callable[[object], bool] = lambda _result: False,
) -> Loop:
    """``repeat`` as a ``Loop`` for a service's ``loops.py``: ``every("retention", sweep, interval=60)``."""

    async def run(stop: asyncio.Event) -> None:
        await repeat(name, step, stop, interval=interval, wakeup=wakeup, again=again)

    return run
