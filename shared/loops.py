"""Background work that repeats: one helper for the "do a pass, wait, back off on failure" loop every service and
the bus run, so stopping, waking and backing off behave the same everywhere."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from shared.bus.backoff import Backoff
from shared.bus.errors import TRANSIENT

if TYPE_CHECKING:  # only named here: the wake-up's own reconnect loop is a ``repeat``
    from shared.bus.wakeup import Wakeup

log = logging.getLogger(__name__)


class Waker(Protocol):
    """What ``repeat`` waits on between passes: a ``Wakeup`` (every waiter woken) or ``Turns`` (one at a time)."""

    def generation(self) -> int: ...

    async def wait(self, since: int, timeout: float, stop: asyncio.Event) -> None: ...


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
    wakeup: Waker | None = None,
    backoff: Backoff | None = None,
    again: Callable[[object], bool] = lambda _result: False,
    transient: tuple[type[BaseException], ...] = TRANSIENT,
    retry: tuple[type[BaseException], ...] = (Exception,),
    interval_first: bool = False,
    quiet: bool = False,
    spacing: float = 0.0,
) -> None:
    """Run ``step`` until ``stop``: after a pass, wait ``interval`` seconds (or until ``wakeup`` fires), or go on
    at once when ``again(result)`` says there is more to do (a full batch). A server that is down (``transient``)
    is retried with a growing, jittered wait and logged as a warning; any other failure is a bug, logged with its
    traceback, and retried the same way, since a dead loop would stop its work for good, silently.

    The options a loop of the bus needs to keep its own behaviour:

    - ``transient``: the errors that mean "a server is unreachable" (the bus's ``TRANSIENT`` unless told).
    - ``retry``: the other errors that are logged and retried; any error outside both is raised, for a loop the
      service runtime guards (it logs the crash and starts the loop afresh after a second). ``retry=()``: a bug
      crashes the loop instead of being retried in it.
    - ``interval_first``: wait ``interval`` before every pass, the first one too and after a failed pass's
      backoff as well: for work that must never come back sooner than its interval (a claim counts as a
      delivery).
    - ``quiet``: transient failures are not logged (another loop of the same process reports the outage).
    - ``spacing``: woken sooner than this after the last pass began, wait for the rest of it first, so that the
      wake-ups of many commits in a burst become one pass (the first one after a quiet spell goes at once).
    """
    backoff = backoff or Backoff(0.5, 10)
    while not stop.is_set():
        if interval_first:
            await wait_or_stop(stop, interval)
            if stop.is_set():
                return
        since = wakeup.generation() if wakeup is not None else 0
        began = time.monotonic()
        try:
            result = await step()
        except asyncio.CancelledError:
            raise
        except transient as exc:
            if not quiet:
                log.warning("%s postponed: a server is unreachable", name, extra={"error": repr(exc)})
            await backoff.wait(stop)
            continue
        except retry:
            log.exception("%s pass failed", name)
            await backoff.wait(stop)
            continue
        backoff.reset()
        if again(result) or interval_first:
            continue
        if wakeup is not None:
            await wakeup.wait(since, interval, stop)
            if (rest := began + spacing - time.monotonic()) > 0:
                await wait_or_stop(stop, rest)
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
