"""The deadline scheduler: "deadline approaching" exactly once per deadline, offset and due time.

A service registers the deadlines it owns (in its own schema); ``tick`` finds reminders whose moment has
come and, in one transaction, records the decision (unique per deadline, offset and due time) and the event in
the outbox. Several processes may tick at once: the unique key lets only one of them record it. A reminder
whose moment passed while nothing ran goes out once, marked late; it is skipped when the deadline itself has
passed, or when a nearer reminder of the same deadline is also due (one reminder, the most urgent, not two).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import asyncpg

from shared.bus.outbox import Outbox
from shared.clock import Clock, SystemClock
from shared.contracts.common import DeadlineApproachingV1, DeadlineKind
from shared.contracts.registration import MeetingDeadlineApproachingV1
from shared.contracts.surveys import SurveyDeadlineApproachingV1
from shared.db import Conn
from shared.loops import repeat

DEFAULT_OFFSETS = (timedelta(hours=72), timedelta(hours=24))

#: The payload a reminder of each kind goes out as: its producer's own class.
PAYLOADS: dict[DeadlineKind, type[DeadlineApproachingV1]] = {
    DeadlineKind.REGISTRATION_CLOSES: MeetingDeadlineApproachingV1,
    DeadlineKind.MEETING_STARTS: MeetingDeadlineApproachingV1,
    DeadlineKind.SURVEY_CLOSES: SurveyDeadlineApproachingV1,
}


@dataclass(frozen=True)
class Decision:
    deadline_id: UUID
    offset_seconds: int
    outcome: str


async def register_deadline(
    conn: Conn,
    *,
    tenant: str,
    kind: DeadlineKind,
    subject_id: str,
    due_at: datetime,
    offsets: Sequence[timedelta] = DEFAULT_OFFSETS,
    title: str | None = None,
) -> UUID:
    """Create or move the deadline ``(kind, subject_id)``. Moving it arms its reminders afresh."""
    value = await conn.fetchval(
        "insert into deadlines (id, tenant, kind, subject_id, title, due_at, offsets) "
        "values ($1, $2, $3, $4, $5, $6, $7) on conflict (kind, subject_id) do update set "
        "due_at = excluded.due_at, offsets = excluded.offsets, title = excluded.title, cancelled = false "
        "returning id",
        uuid4(),
        tenant,
        kind,
        subject_id,
        title,
        due_at,
        sorted({int(o.total_seconds()) for o in offsets}),
    )
    return UUID(str(value))


async def cancel_deadline(conn: Conn, *, kind: DeadlineKind, subject_id: str) -> None:
    await conn.execute("update deadlines set cancelled = true where kind = $1 and subject_id = $2", kind, subject_id)


class DeadlineScheduler:
    def __init__(
        self,
        pool: asyncpg.Pool,
        outbox: Outbox,
        *,
        clock: Clock | None = None,
        interval: float = 10.0,
        late_after: timedelta = timedelta(minutes=5),
        horizon: timedelta = timedelta(days=60),
    ) -> None:
        self.pool = pool
        self.outbox = outbox
        self.clock = clock or SystemClock()
        self.interval = interval
        self.late_after = late_after
        self.horizon = horizon

    async def run(self, stop: asyncio.Event) -> None:
        # Only an outage is retried here; a bug reaches the runtime's guard, which logs it and starts afresh.
        await repeat("deadline scheduler", self.tick, stop, interval=self.interval, retry=())

    async def tick(self) -> list[Decision]:
        now = self.clock.now()
        decisions: list[Decision] = []
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "select d.id, d.tenant, d.kind, d.subject_id, d.title, d.due_at, o.off "
                "from deadlines d cross join unnest(d.offsets) as o(off) "
                "where not d.cancelled and d.due_at - make_interval(secs => o.off) <= $1 "
                "and d.due_at > $1 - $2::interval "
                "and not exists (select 1 from deadline_reminders r where r.deadline_id = d.id "
                "  and r.offset_seconds = o.off and r.due_at = d.due_at) "
                "order by d.due_at - make_interval(secs => o.off) "
                "for update of d skip locked",
                now,
                self.horizon,
            )
            nearest: dict[UUID, int] = {}
            for row in rows:
                nearest[row["id"]] = min(nearest.get(row["id"], row["off"]), row["off"])
            for row in rows:
                moment = row["due_at"] - timedelta(seconds=row["off"])
                if row["due_at"] <= now or row["off"] != nearest[row["id"]]:
                    outcome = "skipped"
                elif now - moment > self.late_after:
                    outcome = "late"
                else:
                    outcome = "sent"
                inserted = await conn.fetchval(
                    "insert into deadline_reminders (deadline_id, offset_seconds, due_at, outcome, decided_at) "
                    "values ($1, $2, $3, $4, $5) on conflict do nothing returning true",
                    row["id"],
                    row["off"],
                    row["due_at"],
                    outcome,
                    now,
                )
                if not inserted:
                    continue
                if outcome != "skipped":
                    await self.outbox.record(
                        conn,
                        PAYLOADS[DeadlineKind(row["kind"])](
                            deadline_id=row["id"],
                            kind=row["kind"],
                            subject_id=row["subject_id"],
                            due_at=row["due_at"],
                            offset_seconds=row["off"],
                            late=outcome == "late",
                            title=row["title"],
                        ),
                        tenant=row["tenant"],
                        subject=f"deadline/{row['id']}",
                    )
                decisions.append(Decision(row["id"], row["off"], outcome))
        return decisions
