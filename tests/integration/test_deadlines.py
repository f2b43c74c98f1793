"""The deadline scheduler with a frozen clock: exactly once per deadline and offset, however many schedulers
tick, and the right outcome after downtime (late, skipped) or when a deadline moves or is cancelled."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from shared import db
from shared.bus.deadlines import DeadlineScheduler, cancel_deadline, register_deadline
from shared.bus.outbox import Outbox
from shared.clock import FrozenClock
from tests.support import make_schema

DUE = datetime(2026, 3, 20, 18, 0, tzinfo=UTC)
H72, H24 = timedelta(hours=72), timedelta(hours=24)
APPROACHING = "civic.registration.deadline.approaching.v1"


@dataclass
class Rig:
    url: str
    schema: str
    pool: asyncpg.Pool
    clock: FrozenClock

    def scheduler(self, pool: asyncpg.Pool | None = None) -> DeadlineScheduler:
        return DeadlineScheduler(pool or self.pool, Outbox("registration", clock=self.clock), clock=self.clock)

    async def register(self, subject: str, due: datetime = DUE, offsets: tuple[timedelta, ...] = (H72, H24)) -> str:
        async with self.pool.acquire() as conn, conn.transaction():
            deadline = await register_deadline(
                conn,
                tenant="kreis-lippe",
                kind="registration_closes",
                subject_id=subject,
                due_at=due,
                offsets=offsets,
                title=f"Anmeldeschluss {subject}",
            )
        return str(deadline)

    async def events(self) -> list[dict[str, Any]]:
        rows = await self.pool.fetch("select type, envelope from outbox order by position")
        assert all(r["type"] == APPROACHING for r in rows)
        return [json.loads(r["envelope"])["data"] for r in rows]

    async def outcomes(self) -> dict[tuple[str, int], str]:
        rows = await self.pool.fetch("select deadline_id, offset_seconds, outcome from deadline_reminders")
        return {(str(r["deadline_id"]), r["offset_seconds"]): r["outcome"] for r in rows}


@pytest.fixture
async def rig(database_url: str) -> AsyncIterator[Rig]:
    schema = f"deadlines_{secrets.token_hex(3)}"
    pool = await make_schema(database_url, schema)
    try:
        yield Rig(database_url, schema, pool, FrozenClock(DUE - timedelta(days=10)))
    finally:
        await pool.close()


async def test_five_schedulers_ticking_at_once_publish_each_reminder_once(rig: Rig) -> None:
    deadlines = [await rig.register(f"meeting/{i}") for i in range(4)]
    pools = [await db.create_pool(rig.url, rig.schema, max_size=2) for _ in range(5)]
    try:
        schedulers = [rig.scheduler(p) for p in pools]
        for moment in (DUE - H72 + timedelta(minutes=1), DUE - H24 + timedelta(minutes=1), DUE - timedelta(hours=1)):
            rig.clock.set(moment)
            for _ in range(3):  # several rounds at the same moment: later rounds find nothing left to do
                await asyncio.gather(*(s.tick() for s in schedulers))
    finally:
        for p in pools:
            await p.close()
    events = await rig.events()
    per_reminder = Counter((e["deadline_id"], e["offset_seconds"]) for e in events)
    assert per_reminder == Counter({(d, int(o.total_seconds())): 1 for d in deadlines for o in (H72, H24)})
    assert not any(e["late"] for e in events)
    assert set((await rig.outcomes()).values()) == {"sent"}


async def test_a_reminder_missed_during_downtime_goes_out_once_marked_late(rig: Rig) -> None:
    deadline = await rig.register("meeting/late")
    rig.clock.set(DUE - H72 + timedelta(hours=2))  # everything was down when the 72 h reminder was due
    first = await rig.scheduler().tick()
    again = await rig.scheduler().tick()
    assert [(str(d.deadline_id), d.offset_seconds, d.outcome) for d in first] == [(deadline, 72 * 3600, "late")]
    assert again == []
    events = await rig.events()
    assert [(e["deadline_id"], e["offset_seconds"], e["late"]) for e in events] == [(deadline, 72 * 3600, True)]


async def test_the_larger_offset_is_skipped_when_a_nearer_one_is_also_due(rig: Rig) -> None:
    deadline = await rig.register("meeting/both")
    rig.clock.set(DUE - H24 + timedelta(minutes=2))  # both moments have passed
    await rig.scheduler().tick()
    events = await rig.events()
    assert [(e["offset_seconds"], e["late"]) for e in events] == [(24 * 3600, False)]
    assert await rig.outcomes() == {(deadline, 72 * 3600): "skipped", (deadline, 24 * 3600): "sent"}
    assert await rig.scheduler().tick() == []


async def test_reminders_of_a_deadline_that_passed_are_skipped(rig: Rig) -> None:
    deadline = await rig.register("meeting/over")
    rig.clock.set(DUE + timedelta(hours=1))
    await rig.scheduler().tick()
    assert await rig.events() == []
    assert await rig.outcomes() == {(deadline, 72 * 3600): "skipped", (deadline, 24 * 3600): "skipped"}


async def test_moving_a_deadline_arms_its_reminders_afresh(rig: Rig) -> None:
    deadline = await rig.register("meeting/moved", offsets=(H72,))
    rig.clock.set(DUE - H72 + timedelta(minutes=1))
    await rig.scheduler().tick()
    later = DUE + timedelta(days=7)
    assert await rig.register("meeting/moved", due=later, offsets=(H72,)) == deadline  # same deadline, moved
    assert await rig.scheduler().tick() == []  # the new moment is a week away
    rig.clock.set(later - H72 + timedelta(minutes=1))
    await rig.scheduler().tick()
    await rig.scheduler().tick()
    events = await rig.events()
    assert [(e["offset_seconds"], datetime.fromisoformat(e["due_at"])) for e in events] == [
        (72 * 3600, DUE),
        (72 * 3600, later),
    ]


async def test_a_cancelled_deadline_is_silent(rig: Rig) -> None:
    await rig.register("meeting/cancelled")
    kept = await rig.register("meeting/kept")
    async with rig.pool.acquire() as conn:
        await cancel_deadline(conn, kind="registration_closes", subject_id="meeting/cancelled")
    for moment in (DUE - H72 + timedelta(minutes=1), DUE - H24 + timedelta(minutes=1), DUE + timedelta(hours=1)):
        rig.clock.set(moment)
        await rig.scheduler().tick()
    events = await rig.events()
    assert {e["deadline_id"] for e in events} == {kept}
    assert len(events) == 2
