"""The subscriber kit (civic/subscriber) reading what civic's real relay wrote into real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator
from uuid import UUID, uuid4

from faststream.redis import RedisBroker

from civic.subscriber import CivicSubscriber, CloudEvent
from civic.subscriber.events import (
    MODELS,
    STREAM_TYPES,
    ContentEvent,
    NotificationsEvent,
    RegistrationEvent,
    RegistrationMeetingCancelledV1,
    SurveysEvent,
)
from shared.contracts.registration import MeetingCancelledV1
from shared.contracts.registry import REGISTRY
from tests.conftest import REDIS_URL
from tests.integration.subscriber.conftest import Civic
from tests.support import eventually

ROOT = __file__.rsplit("/tests/", 1)[0]


@contextlib.asynccontextmanager
async def subscribed(kit: CivicSubscriber, broker: RedisBroker) -> AsyncIterator[None]:
    await kit.start()
    await broker.start()
    try:
        yield
    finally:
        await broker.stop()
        await kit.stop()


async def test_every_public_event_type_from_the_relay_reaches_its_typed_handler_once(civic: Civic, prefix: str) -> None:
    sent = await civic.record_every_type()
    public = {s.type for s in REGISTRY if s.visibility == "public"}
    # Published before the subscriber first starts: a group created at 0 still sees them. The private types
    # go to the private streams, which the kit does not read.
    assert await civic.publish() == len(sent)
    got: list[CloudEvent[object]] = []
    kit = CivicSubscriber(REDIS_URL, group="nachbarschaft", prefix=prefix, consumer="c1")
    broker = RedisBroker(REDIS_URL, logger=None)

    @kit.subscriber(broker, "registration")
    async def registration(event: RegistrationEvent) -> None:
        got.append(event)

    @kit.subscriber(broker, "surveys")
    async def surveys(event: SurveysEvent) -> None:
        got.append(event)

    @kit.subscriber(broker, "content")
    async def content(event: ContentEvent) -> None:
        got.append(event)

    @kit.subscriber(broker, "notifications")
    async def notifications(event: NotificationsEvent) -> None:
        got.append(event)

    async with subscribed(kit, broker):
        await eventually(lambda: _true(len(got) >= len(public)), what="every public event")
        await asyncio.sleep(0.3)  # nothing more arrives
    assert sorted(e.type for e in got) == sorted(public)
    for event in got:
        env = sent[event.type]
        assert type(event) is MODELS[event.type]
        assert event.id == env.id and event.tenant == env.tenant
        assert event.aggregatesequence == env.aggregatesequence and event.subject == env.subject
        assert type(event.data) is REGISTRY.get(event.type).payload
        assert event.data.model_dump(mode="json") == env.data  # type: ignore[attr-defined]
    for stream in STREAM_TYPES:
        assert await civic.pending(stream, "nachbarschaft") == 0


async def test_poison_entries_are_dead_lettered_after_the_delivery_limit(civic: Civic, prefix: str) -> None:
    good = await civic.record(MeetingCancelledV1(meeting_id=uuid4(), reason="Sturm"))
    failing = await civic.record(MeetingCancelledV1(meeting_id=uuid4(), reason="boom"))
    await civic.publish()
    key = civic.stream("registration")
    not_json = await civic.redis.xadd(key, {"__data__": b"{not json"})
    invalid = dict(json.loads(good.model_dump_json()), id=str(uuid4()), data={"meeting_id": "not a uuid"})
    invalid_id = await civic.redis.xadd(key, {"__data__": json.dumps(invalid)})
    calls: dict[str, int] = {}

    kit = CivicSubscriber(
        REDIS_URL, group="nachbarschaft", prefix=prefix, consumer="c1", reclaim_idle_ms=200, max_deliveries=2
    )
    broker = RedisBroker(REDIS_URL, logger=None)

    @kit.subscriber(broker, "registration", types=[RegistrationMeetingCancelledV1])
    async def cancelled(event: RegistrationMeetingCancelledV1) -> None:
        calls[event.data.reason or ""] = calls.get(event.data.reason or "", 0) + 1
        if event.data.reason == "boom":
            raise RuntimeError("the board is down")

    async with subscribed(kit, broker):
        await eventually(lambda: _xlen(civic, kit.dead_letter_stream, 3), timeout=20, what="three dead letters")
        await eventually(lambda: _pending_zero(civic), what="nothing pending")
    assert calls == {"Sturm": 1, "boom": 2}  # the failing one was handed over exactly max_deliveries times
    dead = await civic.redis.xrange(kit.dead_letter_stream)
    by_entry = {fields[b"entry_id"]: fields for _, fields in dead}
    assert set(by_entry) == {not_json, invalid_id, await _entry_of(civic, failing.id)}
    assert all(f[b"deliveries"] == b"2" and f[b"stream"] == key.encode() for f in by_entry.values())
    assert json.loads(by_entry[await _entry_of(civic, failing.id)][b"__data__"])["id"] == str(failing.id)
    assert kit.dead_lettered == 3


async def test_a_killed_subscribers_entries_are_reclaimed_by_another(civic: Civic, prefix: str) -> None:
    ids = [(await civic.record(MeetingCancelledV1(meeting_id=uuid4()))).id for _ in range(5)]
    await civic.publish()
    stuck = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.subscriber.stuck_subscriber",
        REDIS_URL,
        prefix,
        "nb",
        "dead",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert stuck.stdout is not None
        line = await asyncio.wait_for(stuck.stdout.readline(), 30)
        assert line.startswith(b"holding"), line
        owned = await civic.redis.xpending_range(civic.stream("registration"), "nb", "-", "+", 100, "dead")
        assert len(owned) == 5  # everything was delivered to the consumer that is about to die
    finally:
        stuck.send_signal(signal.SIGKILL)
        await stuck.wait()

    got: list[UUID] = []
    kit = CivicSubscriber(REDIS_URL, group="nb", prefix=prefix, consumer="alive", reclaim_idle_ms=300)
    broker = RedisBroker(REDIS_URL, logger=None)

    @kit.subscriber(broker, "registration")
    async def handle(event: RegistrationEvent) -> None:
        got.append(event.id)

    async with subscribed(kit, broker):
        await eventually(lambda: _true(len(got) >= 5), what="the dead consumer's entries handled")
        await eventually(lambda: _pending_zero(civic, "nb"), what="nothing pending")
    assert sorted(got) == sorted(ids)


async def test_a_lost_group_is_recreated_at_0_and_the_subscriber_restarted(civic: Civic, prefix: str) -> None:
    got: set[UUID] = set()
    kit = CivicSubscriber(REDIS_URL, group="nb", prefix=prefix, consumer="c1", guard_interval=0.2)
    broker = RedisBroker(REDIS_URL, logger=None)

    @kit.subscriber(broker, "registration")
    async def handle(event: RegistrationEvent) -> None:
        got.add(event.id)  # by id: what civic publishes again after a loss is a duplicate here

    before = [(await civic.record(MeetingCancelledV1(meeting_id=uuid4()))).id for _ in range(3)]
    async with subscribed(kit, broker):
        await civic.publish()
        await eventually(lambda: _true(got >= set(before)), what="events before the loss")
        # Redis restarts without its data: every key of this installation is gone, the group with them.
        keys = [k async for k in civic.redis.scan_iter(f"{prefix}:*")]
        await civic.redis.delete(*keys)
        after = [(await civic.record(MeetingCancelledV1(meeting_id=uuid4()))).id for _ in range(2)]
        await civic.publish()  # the relay notices the loss and publishes the unconfirmed outbox again
        await eventually(lambda: _true(got >= set(after)), timeout=20, what="events after the loss")
        groups = await civic.redis.xinfo_groups(civic.stream("registration"))
        assert [g["name"] for g in groups] == [b"nb"]
        # Reader and claimer both run again, whether FastStream stopped them on NOGROUP or not.
        await eventually(lambda: _true(all(s.running for s in broker.subscribers)), what="subscribers running")
    assert got == set(before) | set(after)


async def _entry_of(civic: Civic, event_id: UUID) -> bytes:
    for entry_id, fields in await civic.redis.xrange(civic.stream("registration")):
        raw = fields.get(b"__data__")
        if raw and raw.startswith(b"{") and json.loads(raw).get("id") == str(event_id):
            return bytes(entry_id)
    raise LookupError(event_id)


async def _xlen(civic: Civic, key: str, n: int) -> bool:
    return int(await civic.redis.xlen(key)) >= n


async def _pending_zero(civic: Civic, group: str = "nachbarschaft") -> bool:
    return await civic.pending("registration", group) == 0


async def _true(value: bool) -> bool:
    return value
