"""Waking loops on PostgreSQL ``NOTIFY`` instead of polling: the relay on new outbox rows, the mail senders on
new deliveries. Polling stays as the fallback for the moments the listening connection is being re-established
(and for work that becomes due later, such as a retry)."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg

from shared.db import Conn
from shared.loops import repeat


class Wakeup:
    """``LISTEN`` on ``channel`` on a connection of its own (``run``); every ``NOTIFY`` wakes every waiter.

    A waiter notes ``generation()`` before it looks for work and passes it to ``wait``: a notification that came
    in between is not lost, ``wait`` returns at once.
    """

    def __init__(self, database_url: str, channel: str) -> None:
        self.database_url = database_url
        self.channel = channel
        self._generation = 0
        self._event = asyncio.Event()

    def generation(self) -> int:
        return self._generation

    def notify(self) -> None:
        self._generation += 1
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, since: int, timeout: float, stop: asyncio.Event) -> None:
        """Until a notification after generation ``since``, ``stop``, or ``timeout`` seconds."""
        if self._generation != since or stop.is_set():
            return
        woken = asyncio.create_task(self._event.wait())
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({woken, stopped}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            stopped.cancel()

    async def run(self, stop: asyncio.Event) -> None:
        """Listen until ``stop``: a lost connection is opened again at once, a refused one after a backoff (not
        logged: the loops this wakes report the outage). Any other error ends the listener; its waiters go on
        polling."""
        await repeat(
            f"wake-up on {self.channel}",
            lambda: self._listen(stop),
            stop,
            interval=0,
            again=lambda _result: True,
            transient=(OSError, asyncpg.PostgresError, asyncpg.InterfaceError),
            retry=(),
            quiet=True,
        )

    async def _listen(self, stop: asyncio.Event) -> None:
        """One listening connection, until it is lost or ``stop``."""
        conn: Conn | None = None
        try:
            conn = await asyncpg.connect(self.database_url)
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _c, lost=lost: lost.set())
            await conn.add_listener(self.channel, lambda *_: self.notify())
            self.notify()  # whatever was committed while we were not listening
            stopped = asyncio.create_task(stop.wait())
            gone = asyncio.create_task(lost.wait())
            await asyncio.wait({stopped, gone}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            gone.cancel()
        finally:
            if conn is not None and not conn.is_closed():
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1)
