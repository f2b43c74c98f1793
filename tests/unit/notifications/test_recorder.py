"""The outcome recorder's group commit: a commit waits for the mails other workers have on the wire, for at
most ``outcome_linger_seconds``, and not at all when no other mail is on the wire, nor for a worker's mail that
waits for this commit itself."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from services.notifications.domain import Answer
from services.notifications.loops import Recorder
from services.notifications.settings import NotificationSettings

LEASE = datetime(2026, 12, 1, tzinfo=UTC)
SENT = Answer(True, False, "250 ok")


class Commits(Recorder):
    """The recorder with its statement replaced by a list of the batches it would have written."""

    def __init__(self, linger: float) -> None:
        ctx: Any = SimpleNamespace(uows=lambda _store: None)
        super().__init__(ctx, NotificationSettings(outcome_linger_seconds=linger))
        self.batches: list[list[str]] = []

    async def _commit(self, items: list[tuple[Any, datetime, Answer]]) -> None:
        self.batches.append([row["id"] for row, _, _ in items])


async def test_a_commit_waits_for_the_mail_another_worker_has_on_the_wire() -> None:
    rec = Commits(linger=5.0)
    first, second = object(), object()
    rec.on_wire(second)
    one = rec.record({"id": "a"}, LEASE, SENT, first)
    await asyncio.sleep(0.05)
    assert rec.batches == [] and not one.done()  # waiting for the second worker's answer
    two = rec.record({"id": "b"}, LEASE, SENT, second)
    await asyncio.wait_for(asyncio.gather(one, two), 1)
    assert rec.batches == [["a", "b"]]


async def test_alone_on_the_wire_an_outcome_is_committed_at_once() -> None:
    rec = Commits(linger=5.0)
    started = time.monotonic()
    await asyncio.wait_for(rec.record({"id": "a"}, LEASE, SENT, object()), 1)
    assert rec.batches == [["a"]] and time.monotonic() - started < 1


async def test_the_wait_ends_after_the_linger_or_when_the_other_worker_stops() -> None:
    rec = Commits(linger=0.05)
    slow = object()
    rec.on_wire(slow)  # its answer does not come
    await asyncio.wait_for(rec.record({"id": "a"}, LEASE, SENT, object()), 1)
    assert rec.batches == [["a"]]

    rec = Commits(linger=5.0)
    rec.on_wire(slow)
    waiting = rec.record({"id": "b"}, LEASE, SENT, object())
    await asyncio.sleep(0.05)
    rec.off_wire(slow)  # stopped in the middle of its mail: no outcome will follow
    await asyncio.wait_for(waiting, 1)
    assert rec.batches == [["b"]]


async def test_a_commit_waits_for_a_workers_next_mail_until_that_worker_waits_for_the_commit() -> None:
    rec = Commits(linger=5.0)  # two mails of a connection may be out unrecorded (the default)
    worker = object()
    one = rec.record({"id": "a"}, LEASE, SENT, worker)
    rec.on_wire(worker)  # its next mail, which does not wait for "a" to be committed
    await asyncio.sleep(0.05)
    assert rec.batches == [] and not one.done()  # waiting for that mail's answer
    two = rec.record({"id": "b"}, LEASE, SENT, worker)
    rec.on_wire(worker)  # as if its third went out: that one waits for "a", so the commit does not wait for it
    await asyncio.wait_for(asyncio.gather(one, two), 1)
    assert rec.batches == [["a", "b"]]
