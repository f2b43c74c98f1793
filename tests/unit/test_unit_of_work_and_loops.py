"""The fake unit of work keeps what a use case recorded only when it commits; the loop helper backs off and
keeps going after a failing pass, and each of its options (what is transient, what is retried, waiting before a
pass, quiet outages) does what the bus's loops rely on."""

from __future__ import annotations

import asyncio
import logging
from datetime import date

import pytest

from shared.bus.backoff import Backoff
from shared.bus.outbox import Pending, Reserved, first_reserved
from shared.bus.wakeup import Wakeup
from shared.contracts.content import QrScannedV1
from shared.contracts.registry import UnknownEventType
from shared.contracts.surveys import SurveyClosedV1
from shared.errors import Conflict, FieldProblem, Invalid
from shared.http.problems import problem_of
from shared.loops import repeat
from shared.unit_of_work import FakeUnitOfWork


def _scan(n: int) -> QrScannedV1:
    return QrScannedV1(code=f"f{n}", target_kind="survey", day=date(2021, 10, 1), scans=n)


async def test_fake_unit_of_work_keeps_events_of_committed_blocks_only() -> None:
    uow: FakeUnitOfWork[dict[str, int]] = FakeUnitOfWork({}, "content")
    async with uow:
        await uow.record(_scan(1), tenant="stadt-a", subject="qr/f")
    with pytest.raises(Conflict):
        async with uow:
            await uow.record(_scan(2), tenant="stadt-a")
            raise Conflict("already-there")
    assert [p.code for p in uow.payloads()] == ["f1"]
    assert (uow.commits, uow.rollbacks) == (1, 1)


async def test_fake_unit_of_work_refuses_a_payload_the_service_does_not_produce() -> None:
    uow: FakeUnitOfWork[None] = FakeUnitOfWork(None, "content")
    with pytest.raises(UnknownEventType):
        async with uow:
            await uow.record(SurveyClosedV1.model_construct(), tenant="stadt-a")


def test_numbers_reserved_must_match_the_events_written() -> None:
    events = [Pending(_scan(n), "stadt-a", "qr/f") for n in (1, 2, 3)] + [Pending(_scan(4), "stadt-a", "qr/g")]
    assert first_reserved(events, {"qr/f": Reserved(12, 3), "qr/g": Reserved(1, 1)}) == {"qr/f": 10, "qr/g": 1}
    for wrong in ({"qr/f": Reserved(12, 2), "qr/g": Reserved(1, 1)}, {"qr/f": Reserved(12, 3)}):
        with pytest.raises(RuntimeError, match="do not match"):
            first_reserved(events, wrong)


async def test_fake_unit_of_work_checks_reserved_numbers_as_the_outbox_does() -> None:
    uow: FakeUnitOfWork[dict[str, int]] = FakeUnitOfWork({}, "content")
    with pytest.raises(RuntimeError):
        async with uow:
            await uow.write([Pending(_scan(1), "stadt-a", "qr/f")], reserved={"qr/f": Reserved(4, 2)})
    assert uow.payloads() == []


def test_domain_errors_become_problems_by_kind() -> None:
    p = problem_of(Invalid("email-invalid", fields=[FieldProblem("/email", "not an address", "email")]))
    assert (p.status, p.type, p.title) == (422, "https://civic.example/problems/email-invalid", "Invalid request")
    assert p.errors == [{"in": "body", "pointer": "/email", "detail": "not an address", "code": "email"}]
    c = problem_of(Conflict("meeting-full", "Meeting is full", detail="No seat is left.", seats_left=0))
    assert (c.status, c.title, c.detail) == (409, "Meeting is full", "No seat is left.")
    assert c.extensions == {"seats_left": 0}


async def test_repeat_goes_on_after_a_failing_pass() -> None:
    stop = asyncio.Event()
    passes: list[int] = []

    async def step() -> None:
        passes.append(len(passes))
        if len(passes) == 1:
            raise RuntimeError("a bug in the first pass")
        if len(passes) == 3:
            stop.set()

    await asyncio.wait_for(repeat("test", step, stop, interval=0.01, backoff=Backoff(0.01, 0.02)), 5)
    assert passes == [0, 1, 2]


async def test_repeat_runs_again_at_once_while_there_is_more() -> None:
    stop = asyncio.Event()
    batches = [100, 100, 3]

    async def step() -> int:
        n = batches.pop(0)
        if not batches:
            stop.set()
        return n

    # An interval of an hour: only "again" can make the three passes happen within the timeout.
    await asyncio.wait_for(repeat("test", step, stop, interval=3600, again=lambda n: n == 100), 5)
    assert batches == []


async def test_repeat_raises_what_it_is_not_told_to_retry() -> None:
    # retry=(): a bug leaves the loop for the runtime's guard instead of being retried in it.
    stop = asyncio.Event()
    passes: list[int] = []

    async def step() -> None:
        passes.append(len(passes))
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        await asyncio.wait_for(repeat("test", step, stop, interval=0.01, retry=()), 5)
    assert passes == [0]


async def test_repeat_backs_off_on_its_own_transient_errors_and_raises_others() -> None:
    class Refused(Exception):
        pass

    stop = asyncio.Event()
    outcomes: list[BaseException | None] = [Refused(), Refused(), None, KeyError("a bug")]
    passes: list[int] = []

    async def step() -> None:
        passes.append(len(passes))
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    with pytest.raises(KeyError):
        await asyncio.wait_for(
            repeat("test", step, stop, interval=0.01, backoff=Backoff(0.01, 0.02), transient=(Refused,), retry=()),
            5,
        )
    assert passes == [0, 1, 2, 3]


async def test_repeat_with_interval_first_waits_before_every_pass_even_after_a_failure() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    started = loop.time()
    times: list[float] = []

    async def step() -> None:
        times.append(loop.time())
        if len(times) == 1:
            raise ConnectionError("the server is down")
        stop.set()

    await asyncio.wait_for(
        repeat("test", step, stop, interval=0.2, backoff=Backoff(0.01, 0.02), interval_first=True, quiet=True), 5
    )
    assert len(times) == 2
    assert times[0] - started >= 0.2  # not at once: the interval comes first
    assert times[1] - times[0] >= 0.2  # the backoff after the failure, then the interval again


async def test_repeat_with_interval_first_stops_without_another_pass() -> None:
    stop = asyncio.Event()
    passes: list[int] = []

    async def step() -> None:
        passes.append(len(passes))
        stop.set()

    await asyncio.wait_for(repeat("test", step, stop, interval=0.01, interval_first=True), 5)
    assert passes == [0]


async def test_repeat_logs_an_outage_unless_quiet(caplog: pytest.LogCaptureFixture) -> None:
    async def run(quiet: bool) -> None:
        stop = asyncio.Event()
        failures = [ConnectionError("refused")]

        async def step() -> None:
            if failures:
                raise failures.pop()
            stop.set()

        await asyncio.wait_for(repeat("outage", step, stop, interval=0.01, backoff=Backoff(0.01, 0.02), quiet=quiet), 5)

    with caplog.at_level(logging.WARNING, logger="shared.loops"):
        await run(quiet=True)
        assert not [r for r in caplog.records if "outage" in r.getMessage()]
        await run(quiet=False)
        assert [r.levelno for r in caplog.records if "outage" in r.getMessage()] == [logging.WARNING]


async def test_a_subscription_list_runs_every_handler_of_a_type_in_order() -> None:
    from typing import Any, cast

    from shared.bus.outbox import Outbox
    from shared.contracts.registry import REGISTRY
    from shared.service import ServiceContext, bind, on

    seen: list[str] = []

    async def first(ctx: ServiceContext, conn: Any, envelope: Any, payload: QrScannedV1) -> None:
        seen.append(f"first {payload.code}")

    async def second(ctx: ServiceContext, conn: Any, envelope: Any, payload: QrScannedV1) -> None:
        seen.append(f"second {envelope.tenant}")

    table = bind(cast(ServiceContext, None), [on(QrScannedV1, first), on(QrScannedV1, second)])
    assert list(table) == [REGISTRY.type_of(QrScannedV1)]
    env = Outbox("content").envelope(_scan(5), tenant="stadt-a", subject=None)
    await table[env.type](cast(Any, None), REGISTRY.parse(env.model_dump(mode="json")))
    assert seen == ["first f5", "second stadt-a"]


async def test_a_type_with_a_batch_subscription_runs_each_subscription_over_the_whole_run() -> None:
    from typing import Any, cast

    from shared.bus.consumer import Batched
    from shared.bus.outbox import Outbox
    from shared.contracts.envelope import Envelope
    from shared.contracts.registry import REGISTRY
    from shared.service import ServiceContext, bind, on, on_batch

    seen: list[str] = []

    async def each(ctx: ServiceContext, conn: Any, envelope: Any, payload: QrScannedV1) -> None:
        seen.append(f"each {payload.code}")

    async def many(ctx: ServiceContext, conn: Any, events: list[tuple[Envelope, QrScannedV1]]) -> None:
        seen.append("many " + ",".join(p.code for _, p in events))

    table = bind(cast(ServiceContext, None), [on_batch(QrScannedV1, many), on(QrScannedV1, each)])
    handler = table[REGISTRY.type_of(QrScannedV1)]
    assert isinstance(handler, Batched)
    outbox = Outbox("content")
    events = [
        REGISTRY.parse(outbox.envelope(_scan(i), tenant="stadt-a", subject=None).model_dump_json()) for i in (1, 2)
    ]
    await handler.handle(cast(Any, None), events)
    assert seen == ["many f1,f2", "each f1", "each f2"]


async def test_repeat_with_spacing_makes_a_burst_of_wakeups_one_pass_and_a_quiet_spell_none() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    wakeup = Wakeup("postgresql://unused", "test")  # notified by hand, never listening
    times: list[float] = []

    async def step() -> None:
        times.append(loop.time())
        if len(times) == 3:
            stop.set()

    async def burst_then_quiet() -> None:
        for _ in range(20):  # a burst right after the first pass: one more pass, 0.2 s after the first
            await asyncio.sleep(0.005)
            wakeup.notify()
        await asyncio.sleep(0.5)  # quiet for longer than the spacing: the next wake-up goes at once
        woken.append(loop.time())
        wakeup.notify()

    woken: list[float] = []
    burst = asyncio.create_task(burst_then_quiet())
    await asyncio.wait_for(repeat("test", step, stop, interval=3600, wakeup=wakeup, spacing=0.2), 5)
    await burst
    assert len(times) == 3
    assert times[1] - times[0] >= 0.2
    assert times[2] - woken[0] < 0.1


async def test_turns_wake_one_waiting_worker_a_notify_and_keep_a_turn_nobody_waited_for() -> None:
    from shared.bus.wakeup import Turns

    turns, stop, woken = Turns(keep=2), asyncio.Event(), []

    async def worker(name: str) -> None:
        await turns.wait(turns.generation(), 5, stop)
        woken.append(name)

    tasks = [asyncio.create_task(worker(n)) for n in ("a", "b", "c")]
    await asyncio.sleep(0.01)
    turns.notify()
    await asyncio.sleep(0.01)
    assert woken == ["a"]  # one worker, the one waiting longest
    turns.notify_all()
    await asyncio.gather(*tasks)
    assert sorted(woken) == ["a", "b", "c"]
    # No one waits: the turns are kept (at most ``keep``), so a worker that looked just before is not left asleep.
    turns.notify()
    started = asyncio.get_running_loop().time()
    await turns.wait(0, 5, stop)
    await turns.wait(0, 5, stop)  # notify_all's kept turn
    assert asyncio.get_running_loop().time() - started < 1
    await turns.wait(0, 0.05, stop)  # none left: the timeout ends the wait
    assert asyncio.get_running_loop().time() - started >= 0.05
