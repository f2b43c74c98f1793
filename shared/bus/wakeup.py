"""Waking loops on PostgreSQL ``NOTIFY`` instead of polling: the relay on new outbox rows, the mail senders on
new deliveries, the content service's page cache on changed content. Polling stays as the fallback for the
moments the listening connection is being re-established (and for work that becomes due later, such as a
retry)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Any

import asyncpg

from shared.db import Conn
from shared.loops import repeat


class Wakeup:
    """``LISTEN`` on ``channel`` on a connection of its own (``run``); every ``NOTIFY`` wakes every waiter.

    A waiter notes ``generation()`` before it looks for work and passes it to ``wait``: a notification that came
    in between is not lost, ``wait`` returns at once.

    ``on_notify`` is called with each notification's payload, and with None whenever the connection has been
    (re-)established: notifications sent while nobody listened are lost, so anything may have changed.
    ``listening`` says whether notifications reach this process right now; a cache that relies on them must
    not while it is False. ``heartbeat`` (seconds) checks the connection that often, so one that died without
    the socket noticing (a silent network loss) is given up within two heartbeats rather than never.
    """

    def __init__(
        self,
        database_url: str,
        channel: str,
        *,
        on_notify: Callable[[str | None], None] | None = None,
        heartbeat: float | None = None,
    ) -> None:
        self.database_url = database_url
        self.channel = channel
        self.on_notify = on_notify
        self.heartbeat = heartbeat
        self._generation = 0
        self._event = asyncio.Event()
        self._listening = False

    @property
    def name(self) -> str:
        """The listening connection's ``application_name``."""
        return f"civic-listen-{self.channel}"[:63]

    @property
    def listening(self) -> bool:
        return self._listening

    def generation(self) -> int:
        return self._generation

    def notify(self) -> None:
        self._generation += 1
        self._event.set()
        self._event = asyncio.Event()

    def _received(self, payload: str | None) -> None:
        if self.on_notify is not None:
            self.on_notify(payload)
        self.notify()

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
            transient=(OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError),
            retry=(),
            quiet=True,
        )

    async def _listen(self, stop: asyncio.Event) -> None:
        """One listening connection, until it is lost or ``stop``."""
        conn: Conn | None = None
        try:
            # Named, so an operator sees in pg_stat_activity what the idle connection is for.
            conn = await asyncpg.connect(self.database_url, server_settings={"application_name": self.name})
            lost = asyncio.Event()

            def gone(_conn: object) -> None:
                self._listening = False  # at once: from here on, notifications may be missed
                lost.set()

            conn.add_termination_listener(gone)
            await conn.add_listener(self.channel, lambda _c, _pid, _channel, payload: self._received(payload))
            self._received(None)  # whatever was committed while we were not listening
            self._listening = True
            while not await self._ended(stop, lost):
                # A connection that cannot answer within a heartbeat is given up (TimeoutError): a new one is
                # opened after a backoff.
                await conn.fetchval("select 1", timeout=self.heartbeat)
        finally:
            self._listening = False
            if conn is not None and not conn.is_closed():
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1)

    async def _ended(self, stop: asyncio.Event, lost: asyncio.Event) -> bool:
        """Whether ``stop`` or ``lost`` came within a heartbeat (or ever, without heartbeats)."""
        stopped = asyncio.create_task(stop.wait())
        dropped = asyncio.create_task(lost.wait())
        try:
            await asyncio.wait({stopped, dropped}, timeout=self.heartbeat, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            dropped.cancel()
        return stop.is_set() or lost.is_set()


class Turns:
    """Wake-ups for the workers of a queue, handed out one at a time: each ``notify`` wakes one waiting worker,
    not all of them. Waking every worker of a process for each batch of queued work made each of them look for
    it, and all but one found nothing: a claim each, for nothing, on every wake-up. A worker that finds more than
    it takes (a full batch) calls ``notify`` itself, so a burst draws in as many workers as it needs.

    A ``notify`` while no worker waits is kept for the next one to wait (at most ``keep`` of them, the number of
    workers), so none is lost between a worker's look and its wait. ``notify_all`` wakes every worker: after the
    listening connection was (re-)established anything may have changed. The same ``generation``/``wait``
    interface as ``Wakeup``, for ``repeat``; ``received`` is a ``Wakeup``'s ``on_notify``.
    """

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._kept = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    def generation(self) -> int:
        return 0  # what a worker may have missed is kept as a turn, not told by a generation

    def notify(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._kept = min(self.keep, self._kept + 1)

    def notify_all(self) -> None:
        self._kept = self.keep
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def received(self, payload: str | None) -> None:
        if payload is None:
            self.notify_all()
        else:
            self.notify()

    async def wait(self, since: int, timeout: float, stop: asyncio.Event) -> None:
        """Until this worker's turn, ``stop``, or ``timeout`` seconds (``since`` is not used)."""
        if self._kept:
            self._kept -= 1
            return
        if stop.is_set():
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(turn)
        stopped: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({turn, stopped}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not turn.done():
                turn.cancel()  # timed out or stopped: a later notify goes to another worker
