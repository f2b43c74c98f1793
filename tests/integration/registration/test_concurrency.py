"""No overbooking under concurrency, in pretix's manner: many registrations at once for few seats, with a
control run that must overbook without the lock (so the test is known to see the race). The control replaces
``decide_seats`` in the test's database for its duration by the same function without the meeting's lock and
with a ``pg_sleep`` between counting and writing; production code has no switch for it."""

from __future__ import annotations

import asyncio
import json
import random
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from services.registration import domain
from services.registration.store import MEETINGS, Store
from services.registration.use_cases import registrations
from services.registration.use_cases.common import Urls
from shared import db
from shared.contracts.registration import registrant_context
from shared.logs import request_id_var
from shared.privacy import open_sealed, own_key
from shared.service import ServiceContext
from tests.integration.registration.conftest import Rig

SEATS = 100
PEOPLE = 1_000


@pytest.fixture
async def wide(rig: Rig) -> AsyncIterator[ServiceContext]:
    """The service's context with a pool of 20 connections, so 20 registrations really run at once."""
    pool = await db.create_pool(rig.settings.database_url, "registration", min_size=20, max_size=20)
    c = rig.ctx
    try:
        yield ServiceContext(c.name, c.settings, pool, c.redis, c.outbox, c.clock, c.keys)
    finally:
        await pool.close()


def applicant(run: int, i: int) -> domain.Applicant:
    return domain.Applicant(
        name=f"Person {i}",
        email=f"run{run}-person{i}@example.org",
        phone=None,
        privacy_consent=True,
        attestations=["3g"],
        answers={"accessible": False},
    )


async def register(ctx: ServiceContext, meeting_id: UUID, a: domain.Applicant) -> registrations.Outcome:
    return await registrations.register(ctx.uows(Store), meeting_id, a, now=ctx.clock.now(), urls=Urls.of(ctx.settings))


async def cancel(ctx: ServiceContext, registration_id: UUID, tenant: str) -> dict[str, Any]:
    return await registrations.cancel(
        ctx.uows(Store)(),
        by="staff",
        registration_id=registration_id,
        tenant=tenant,
        now=ctx.clock.now(),
        urls=Urls.of(ctx.settings),
    )


async def rush(ctx: ServiceContext, meeting_id: UUID, run: int, people: int = PEOPLE) -> list[Any]:
    return await asyncio.gather(
        *(register(ctx, meeting_id, applicant(run, i)) for i in range(people)), return_exceptions=True
    )


MIGRATION = Path(__file__).parents[3] / "services/registration/migrations/001_init.sql"
LOCK = re.compile(r"^ *perform set_config\('lock_timeout'.*\n *perform pg_advisory_xact_lock\(.*\n", re.M)
DECIDED = "        v_rid[n] := p_ids[n];\n"


def decide_seats_sql() -> str:
    text = MIGRATION.read_text()
    return text[text.index("create function decide_seats(") :]


def without_the_lock(sql: str, sleep: float) -> str:
    """``decide_seats`` without the meeting's lock, sleeping between counting and writing: the race widened."""
    unlocked, n = LOCK.subn("", sql)
    assert n == 1, "the lock of decide_seats is not where the control run expects it"
    assert sql.count(DECIDED) == 1
    return unlocked.replace(DECIDED, DECIDED + f"        perform pg_sleep({sleep});\n")


async def tally(ctx: ServiceContext, meeting_id: str) -> dict[str, int]:
    rows = await ctx.pool.fetch(
        "select status, count(*) as n, sum(seats) as seats from registrations where meeting_id = $1 group by status",
        UUID(meeting_id),
    )
    return {r["status"]: int(r["n"]) for r in rows}


async def test_a_thousand_at_once_for_a_hundred_seats(rig: Rig, wide: ServiceContext) -> None:
    for run in range(3):
        m = await rig.meeting(capacity=SEATS)
        results = await rush(wide, UUID(m["id"]), run)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert errors == []
        assert await tally(wide, m["id"]) == {"confirmed": SEATS, "waitlisted": PEOPLE - SEATS}
        positions = sorted(r.position for r in results if r.position is not None)
        assert positions == list(range(1, PEOPLE - SEATS + 1))
        await assert_counters_match(wide, UUID(m["id"]))


async def test_control_without_the_lock_overbooks(rig: Rig, wide: ServiceContext) -> None:
    m = await rig.meeting(capacity=SEATS)
    mid = UUID(m["id"])
    uows = wide.uows(Store)
    meeting = await MEETINGS.get(uows, mid)
    assert meeting is not None
    # 300 people are enough to show the race; the run stays short. Each decided in a transaction of its own,
    # as many processes would (one process's seat queue would batch them into one).
    claims = [
        registrations.Claim(
            meeting=meeting,
            applicant=domain.contact_checked(applicant(99, i)),
            id=uuid4(),
            secret=secrets.token_urlsafe(24),
            now=wide.clock.now(),
            urls=Urls.of(wide.settings),
            correlation_id=None,
        )
        for i in range(300)
    ]
    original = decide_seats_sql()
    create = "create or replace function decide_seats("
    await wide.pool.execute(without_the_lock(original, 0.01).replace("create function decide_seats(", create, 1))
    try:
        results = await asyncio.gather(
            *(registrations.decide_and_write(uows(), [c]) for c in claims), return_exceptions=True
        )
    finally:
        await wide.pool.execute(original.replace("create function decide_seats(", create, 1))
    assert [r for r in results if isinstance(r, BaseException)] == []
    counts = await tally(wide, m["id"])
    assert counts["confirmed"] > SEATS, counts


async def test_cancellations_and_registrations_at_once_keep_capacity_and_order(rig: Rig, wide: ServiceContext) -> None:
    capacity = 50
    m = await rig.meeting(capacity=capacity)
    mid = UUID(m["id"])
    first = [await register(wide, mid, applicant(7, i)) for i in range(100)]
    confirmed = [o.registration["id"] for o in first if o.registration["status"] == "confirmed"]
    waiting = [o.registration["id"] for o in first if o.registration["status"] == "waitlisted"]
    assert len(confirmed) == capacity
    leaving = random.Random(5).sample(confirmed, 30) + random.Random(6).sample(waiting, 5)
    cancels = [cancel(wide, rid, m["tenant"]) for rid in leaving]
    joins = [register(wide, mid, applicant(8, i)) for i in range(100)]
    calls = cancels + joins
    random.Random(7).shuffle(calls)
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert [r for r in results if isinstance(r, BaseException)] == []
    rows = await wide.pool.fetch(
        "select status, seq, seats from registrations where meeting_id = $1 and status <> 'cancelled' order by seq",
        mid,
    )
    seats = sum(r["seats"] for r in rows if r["status"] == "confirmed")
    assert seats == capacity  # full, never more; nobody waits while a seat is free
    last_confirmed = max(r["seq"] for r in rows if r["status"] == "confirmed")
    first_waiting = min(r["seq"] for r in rows if r["status"] == "waitlisted")
    assert last_confirmed < first_waiting  # promoted first in, first out
    assert len([r for r in rows if r["status"] == "waitlisted"]) == 100 - 35 + 100 - capacity
    await assert_counters_match(wide, mid)


async def assert_counters_match(ctx: ServiceContext, meeting_id: UUID) -> None:
    """The seat counters the lock protects agree with the registrations themselves."""
    row = await ctx.pool.fetchrow(
        "select m.confirmed_seats, m.waitlisted, "
        "(select coalesce(sum(seats), 0) from registrations "
        "where meeting_id = m.id and status = 'confirmed') as seats, "
        "(select count(*) from registrations where meeting_id = m.id and status = 'waitlisted') as waiting "
        "from meetings m where m.id = $1",
        meeting_id,
    )
    assert row is not None
    assert (row["confirmed_seats"], row["waitlisted"]) == (row["seats"], row["waiting"])


async def test_the_same_person_many_times_at_once_gets_one_registration(rig: Rig, wide: ServiceContext) -> None:
    m = await rig.meeting(capacity=SEATS)
    mid = UUID(m["id"])
    await register(wide, mid, applicant(3, 0))  # caches the meeting: the rest meet in one batch
    same = [register(wide, mid, applicant(3, 1)) for _ in range(20)]
    others = [register(wide, mid, applicant(3, i)) for i in range(2, 12)]
    results = await asyncio.gather(*same, *others)
    mine = results[:20]
    assert len({o.registration["id"] for o in mine}) == 1
    assert [o.created for o in mine].count(True) == 1
    assert await tally(wide, m["id"]) == {"confirmed": 12}
    await assert_counters_match(wide, mid)


async def test_a_batch_records_each_outcome_with_its_figures_and_one_seats_change(
    rig: Rig, wide: ServiceContext
) -> None:
    m = await rig.meeting(capacity=3)
    mid = UUID(m["id"])
    await register(wide, mid, applicant(4, 0))

    async def one(i: int) -> registrations.Outcome:
        request_id_var.set(f"request-{i}")  # each task runs in a copy of the context: this request's id
        return await register(wide, mid, applicant(4, i))

    outcomes = await asyncio.gather(*(one(i) for i in range(1, 10)))
    rows = await wide.pool.fetch(
        "select type, envelope from outbox where subject = $1 order by position", f"meeting/{mid}"
    )
    envs = [json.loads(r["envelope"]) for r in rows]
    assert [e["aggregatesequence"] for e in envs] == list(range(1, len(envs) + 1))
    batch = envs[-(2 * 9 + 1) :]  # the nine registrations' events, then the batch's seats change
    kinds = [e["type"].split(".")[-2] for e in batch]
    assert kinds == ["received", "confirmed"] * 2 + ["received", "waitlisted"] * 7 + ["seats_changed"]
    by_registration = {o.registration["id"]: o for o in outcomes}
    for received, outcome in zip(batch[0:-1:2], batch[1:-1:2], strict=True):
        rid = UUID(received["data"]["registration_id"])
        assert UUID(outcome["data"]["registration_id"]) == rid
        n = int(by_registration[rid].registration["name"].split()[-1])
        assert received["correlationid"] == outcome["correlationid"] == f"request-{n}"
    assert [e["data"]["seats_left"] for e in batch[1:4:2]] == [1, 0]
    assert [e["data"]["position"] for e in batch[5:-1:2]] == list(range(1, 8))
    for e in batch[1:4:2]:  # the ticket travels sealed under the registration's key
        key = await own_key(wide.pool, UUID(e["data"]["key_id"]))
        assert key is not None
        assert open_sealed(key, e["data"]["sealed"], context=registrant_context(UUID(e["data"]["key_id"])))[
            "ticket_code"
        ]
    assert batch[-1]["data"] == {
        "meeting_id": str(mid), "capacity": 3, "confirmed": 3, "waitlisted": 7, "seats_left": 0
    }  # fmt: skip


async def test_a_batch_numbers_only_what_it_stores_and_keeps_a_ticket_only_with_a_seat(
    rig: Rig, wide: ServiceContext
) -> None:
    """The decision's statement stores the registrations and reserves their events' numbers: a batch of
    people registered already stores and numbers nothing, a batch with repeats numbers only the new ones, and
    the numbers of a meeting's events stay consecutive. A ticket and a confirmation time come only with a seat."""
    m = await rig.meeting(capacity=2)
    mid = UUID(m["id"])
    await register(wide, mid, applicant(5, 0))
    again = await asyncio.gather(*(register(wide, mid, applicant(5, 0)) for _ in range(5)))
    assert not any(o.created for o in again)
    await asyncio.gather(*(register(wide, mid, applicant(5, i % 4)) for i in range(12)))
    await register(wide, mid, applicant(5, 4))
    rows = await wide.pool.fetch("select envelope from outbox where subject = $1 order by position", f"meeting/{mid}")
    envs = [json.loads(r["envelope"]) for r in rows]
    received = [e for e in envs if e["type"].split(".")[-2] == "received"]
    assert len(received) == 5  # persons 0 to 4, once each
    assert [e["aggregatesequence"] for e in envs] == list(range(1, len(envs) + 1))
    last = await wide.pool.fetchval("select last from aggregate_sequences where subject = $1", f"meeting/{mid}")
    assert last == len(envs)
    stored = await wide.pool.fetch(
        "select status, ticket_code, confirmed_at from registrations where meeting_id = $1", mid
    )
    assert sorted(r["status"] for r in stored) == ["confirmed"] * 2 + ["waitlisted"] * 3
    for r in stored:
        seated = r["status"] == "confirmed"
        assert (r["ticket_code"] is not None, r["confirmed_at"] is not None) == (seated, seated)
