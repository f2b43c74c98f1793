"""Seats never exceed capacity, whatever staff and citizens do in whatever order (Hypothesis).

Any sequence of registrations (one at a time, or several at once so that ``SeatQueue`` batches them into one
``decide_seats`` call, migrations/001_init.sql), cancellations and capacity changes runs through the HTTP API against
real PostgreSQL. After every step the stored registrations are checked against the rules, and against a model
built from the domain functions (``domain.allocate``, ``domain.promotable``) applied in the order PostgreSQL
decided (``seq``): so the SQL that decides and the domain rules it mirrors must agree.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.registration import domain
from tests.integration.registration.conftest import Rig, citizen

REGISTER = st.tuples(st.just("register"), st.lists(st.integers(0, 2), min_size=1, max_size=4))
CANCEL = st.tuples(st.just("cancel"), st.integers(0, 30))
CAPACITY = st.tuples(st.just("capacity"), st.integers(0, 8))
STEPS = st.lists(st.one_of(REGISTER, CANCEL, CAPACITY), min_size=1, max_size=10)


@dataclass
class Held:
    id: str
    seats: int
    status: str


async def stored(rig: Rig, meeting_id: str) -> tuple[int, int, int, list[Held]]:
    async with rig.ctx.pool.acquire() as conn:
        m = await conn.fetchrow("select capacity, confirmed_seats, waitlisted from meetings where id = $1", meeting_id)
        rows = await conn.fetch(
            "select id, seats, status from registrations where meeting_id = $1 order by seq", meeting_id
        )
    return (
        m["capacity"],
        m["confirmed_seats"],
        m["waitlisted"],
        [Held(str(r["id"]), r["seats"], r["status"]) for r in rows],
    )


def promote(model: list[Held], capacity: int) -> None:
    confirmed = sum(h.seats for h in model if h.status == "confirmed")
    waiting = [domain.Waiting(h, h.seats) for h in model if h.status == "waitlisted"]
    for h in domain.promotable(capacity, confirmed, waiting):
        h.status = "confirmed"


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(capacity=st.integers(0, 6), waitlist=st.booleans(), steps=STEPS)
async def test_seats_never_exceed_capacity(
    rig: Rig, capacity: int, waitlist: bool, steps: list[tuple[str, Any]]
) -> None:
    m = await rig.meeting(capacity=capacity, waitlist=waitlist)
    model: list[Held] = []
    people = 0
    for kind, arg in steps:
        if kind == "register":
            bodies = []
            for companions in arg:
                people += 1
                bodies.append(citizen(people, companions=companions))
            answers = await asyncio.gather(*(rig.register(m["id"], b) for b in bodies))
            for r in answers:
                assert r.status_code in (201, 409), r.text
                if r.status_code == 409:
                    assert r.json()["type"].endswith("/meeting-full"), r.text
            # The model takes the registrations in the order PostgreSQL decided them.
            known = {h.id for h in model}
            _, _, _, rows = await stored(rig, m["id"])
            confirmed = sum(h.seats for h in model if h.status == "confirmed")
            for row in rows:
                if row.id in known:
                    continue
                status = domain.allocate(capacity, confirmed, row.seats, waitlist=waitlist)
                assert status != "refused", "a refused registration was stored"
                model.append(Held(row.id, row.seats, status))
                confirmed += row.seats if status == "confirmed" else 0
            refused = sum(1 for r in answers if r.status_code == 409)
            assert refused == len(bodies) - (len(rows) - len(known))
        elif kind == "cancel" and model:
            target = model[arg % len(model)]
            r = await rig.client.post(f"/api/registration/staff/registrations/{target.id}/cancel", headers=rig.staff)
            assert r.status_code == 200, r.text
            if target.status != "cancelled":
                target.status = "cancelled"
                promote(model, capacity)
        elif kind == "capacity":
            r = await rig.client.patch(
                f"/api/registration/staff/meetings/{m['id']}", json={"capacity": arg}, headers=rig.staff
            )
            confirmed = sum(h.seats for h in model if h.status == "confirmed")
            if arg < confirmed:
                assert r.status_code == 409, r.text
                assert r.json()["type"].endswith("/capacity-below-confirmed")
            else:
                assert r.status_code == 200, r.text
                capacity = arg
                promote(model, capacity)

        cap, counted_seats, counted_waiting, rows = await stored(rig, m["id"])
        seats = sum(h.seats for h in rows if h.status == "confirmed")
        waiting = [h for h in rows if h.status == "waitlisted"]
        assert cap == capacity
        assert seats <= cap, f"{seats} seats confirmed for {cap}"
        assert (counted_seats, counted_waiting) == (seats, len(waiting)), "the meeting's counters drifted"
        # Strict first in, first out: the head of the waiting list never fits into the free seats.
        if waiting:
            assert waiting[0].seats > cap - seats
        if not waitlist:
            assert not waiting
        assert [(h.id, h.status) for h in rows] == [(h.id, h.status) for h in model]
