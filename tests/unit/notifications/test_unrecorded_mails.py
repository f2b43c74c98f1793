"""A mail worker sends a mail's content only once the outcome of the mail ``unrecorded_mails_per_connection``
back on its connection is committed: so many mails of a connection are out unrecorded at most, which bounds the
copies a crash can cause, and with 2 the next mail goes to the server while an outcome commits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from services.notifications.domain import Answer, WireAddress
from services.notifications.loops import MailWorker, Prepared
from services.notifications.mails import Lookups
from services.notifications.settings import NotificationSettings
from services.notifications.smtp import Opened
from shared.bus.wakeup import Turns

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
SENT = Answer(True, False, "250 ok")


class Server:
    """The SMTP pool's side of the exchange: which mail's content went out, in order."""

    def __init__(self) -> None:
        self.contents: list[str] = []
        self.changed = asyncio.Event()

    def _opened(self) -> Opened:
        return Opened(SimpleNamespace(session=SimpleNamespace(in_data=False)))  # type: ignore[arg-type]

    async def envelope(self, *_args: Any, **_kw: Any) -> Opened:
        return self._opened()

    async def data(self, _held: Opened, data: bytes) -> Answer:
        self.contents.append(data.decode())
        self.changed.set()
        return SENT

    async def data_then(self, held: Opened, data: bytes, *_args: Any, **_kw: Any) -> tuple[Answer, Opened]:
        return await self.data(held, data), self._opened()

    async def abort(self, _opened: Opened) -> None:
        return None


class Commits:
    """The recorder: an outcome is committed when the test says so."""

    def __init__(self) -> None:
        self.released: dict[str, asyncio.Event] = {}

    def on_wire(self, _worker: object) -> None:
        return None

    def off_wire(self, _worker: object) -> None:
        return None

    def record(self, row: Any, _lease: datetime, _answer: Answer, _worker: object = None) -> asyncio.Task[None]:
        event = self.released.setdefault(row["id"], asyncio.Event())
        return asyncio.create_task(event.wait())

    def commit(self, mail_id: str) -> None:
        self.released.setdefault(mail_id, asyncio.Event()).set()


class Worker(MailWorker):
    def __init__(self, depth: int, rows: list[dict[str, Any]], server: Server, commits: Commits) -> None:
        ctx: Any = SimpleNamespace(uows=lambda _store: None, clock=SimpleNamespace(now=lambda: NOW))
        settings = NotificationSettings(unrecorded_mails_per_connection=depth, sender_batch_size=len(rows))
        super().__init__(ctx, settings, None, server, commits, Turns(keep=1))  # type: ignore[arg-type]
        self.rows = rows

    async def _claim(self, now: datetime, lease_until: datetime) -> tuple[list[Any], Lookups]:
        return self.rows, None  # type: ignore[return-value]

    def _prepare(self, row: Any, lookups: Lookups) -> Prepared:
        return WireAddress(f"{row['id']}@example.org", False), row["id"].encode()


async def _settled(server: Server, at_least: int) -> list[str]:
    """What went out once ``at_least`` contents have and the worker then sent nothing more for a moment."""
    async with asyncio.timeout(2):
        while len(server.contents) < at_least:
            server.changed.clear()
            await server.changed.wait()
    while True:
        server.changed.clear()
        try:
            await asyncio.wait_for(server.changed.wait(), 0.05)
        except TimeoutError:
            return list(server.contents)


async def test_with_two_the_next_content_waits_for_the_outcome_two_mails_back() -> None:
    server, commits = Server(), Commits()
    worker = Worker(2, [{"id": f"m{i}"} for i in range(1, 5)], server, commits)
    sending = asyncio.create_task(worker.send_due())
    assert await _settled(server, 2) == ["m1", "m2"]  # m3 waits for m1's outcome
    commits.commit("m2")
    assert await _settled(server, 2) == ["m1", "m2"]  # m2's outcome is not the one m3 waits for
    commits.commit("m1")
    assert await _settled(server, 4) == ["m1", "m2", "m3", "m4"]  # m4 waited for m2's, committed already
    assert not sending.done()  # the batch ends only when every outcome is committed
    commits.commit("m3")
    commits.commit("m4")
    assert await asyncio.wait_for(sending, 1) == 4


async def test_with_one_each_content_waits_for_the_last_outcome() -> None:
    server, commits = Server(), Commits()
    worker = Worker(1, [{"id": f"m{i}"} for i in range(1, 4)], server, commits)
    sending = asyncio.create_task(worker.send_due())
    assert await _settled(server, 1) == ["m1"]
    commits.commit("m1")
    assert await _settled(server, 2) == ["m1", "m2"]
    commits.commit("m2")
    commits.commit("m3")
    assert await asyncio.wait_for(sending, 1) == 3
    assert server.contents == ["m1", "m2", "m3"]
