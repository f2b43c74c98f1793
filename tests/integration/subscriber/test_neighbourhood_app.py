"""The example subscriber (clients/faststream/neighbourhood_app.py): its handler under FastStream's
TestRedisBroker, then the whole app against civic's relay and real Redis, and its AsyncAPI document."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import sys
from datetime import UTC, datetime
from types import ModuleType
from uuid import uuid4

import httpx
from faststream.redis import TestRedisBroker

from shared.contracts.registration import MeetingCancelledV1, MeetingPublishedV1, Venue
from tests.conftest import REDIS_URL
from tests.integration.subscriber.board import Board
from tests.integration.subscriber.conftest import TENANT, Civic
from tests.node import node_ready
from tests.support import eventually

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
APP = os.path.join(ROOT, "clients", "faststream", "neighbourhood_app.py")


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("neighbourhood_app", APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["neighbourhood_app"] = module
    spec.loader.exec_module(module)
    return module


def meeting(title: str = "Auftaktveranstaltung Digitalstrategie") -> MeetingPublishedV1:
    return MeetingPublishedV1(
        meeting_id=uuid4(),
        title=title,
        starts_at=datetime(2021, 10, 28, 16, 0, tzinfo=UTC),
        ends_at=datetime(2021, 10, 28, 18, 0, tzinfo=UTC),
        venue=Venue(name="Kreishaus Heide"),
        capacity=80,
        seats_left=80,
        url="https://beteiligung.example.org/veranstaltung/auftakt",
    )


async def test_the_handler_posts_a_tenants_new_meetings_under_the_test_broker(prefix: str) -> None:
    app = load()
    from shared.bus.outbox import Outbox

    outbox = Outbox("registration")
    ours = outbox.envelope(meeting(), tenant=TENANT, subject="meeting/1", sequence=1)
    theirs = outbox.envelope(meeting("Anderswo"), tenant="stadt-heide", subject="meeting/2", sequence=1)
    with Board() as board:
        async with httpx.AsyncClient() as client:
            n = app.create(app.Settings(board_url=board.url, prefix=prefix, redis_url=REDIS_URL), client=client)
            async with TestRedisBroker(n.broker) as broker:
                for env in (ours, theirs):
                    await broker.publish(json.loads(env.model_dump_json()), stream=f"{prefix}:stream:registration")
            await n.kit.stop()
    assert len(board.posts) == 1
    headers, post = board.posts[0]
    assert headers["idempotency-key"] == str(ours.id)
    assert post["title"] == "Neue Veranstaltung: Auftaktveranstaltung Digitalstrategie"
    # 16:00 UTC is 18:00 in Heide on that day.
    assert post["text"] == (
        "Auftaktveranstaltung Digitalstrategie am 28.10.2021, 18:00 Uhr in Kreishaus Heide. Noch 80 freie Plätze."
    )


async def test_the_app_posts_what_civics_relay_published_and_retries_a_failed_post(civic: Civic, prefix: str) -> None:
    app = load()
    published = await civic.record(meeting(), subject="meeting/a")
    await civic.record(meeting("Anderswo"), tenant="stadt-heide", subject="meeting/b")
    await civic.record(MeetingCancelledV1(meeting_id=uuid4()), subject="meeting/c")  # not asked for
    await civic.publish()
    with Board(fail_next=1) as board:
        settings = app.Settings(board_url=board.url, prefix=prefix, redis_url=REDIS_URL, reclaim_idle_ms=300)
        n = app.create(settings)
        running = asyncio.create_task(n.app.run())
        try:
            await eventually(lambda: _true(len(board.posts) >= 1), timeout=20, what="a post after a retry")
            await eventually(lambda: _pending_zero(civic), what="all acknowledged")
        finally:
            n.app.exit()
            await asyncio.wait_for(running, 15)
    assert [h["idempotency-key"] for h, _ in board.posts] == [str(published.id)]
    assert board.fail_next == 0  # the first post failed and the entry was delivered again


def test_the_committed_asyncapi_document_is_current_and_parses() -> None:
    app = load()
    path = os.path.join(ROOT, "clients", "faststream", "neighbourhood_app.asyncapi.json")
    with open(path) as f:
        assert f.read() == app.asyncapi_json(), "run: python clients/faststream/neighbourhood_app.py --asyncapi"
    import subprocess

    node = node_ready()
    done = subprocess.run(
        [node, os.path.join(ROOT, "clients", "node", "validate-asyncapi.mjs"), path],
        capture_output=True,
        text=True,
        timeout=120,
    )
    result = json.loads(done.stdout)
    assert result["parsed"] is True, result
    assert not [d for d in result["diagnostics"] if d["severity"] == "error"]


async def _true(value: bool) -> bool:
    return value


async def _pending_zero(civic: Civic) -> bool:
    return await civic.pending("registration", "nachbarschaft") == 0
