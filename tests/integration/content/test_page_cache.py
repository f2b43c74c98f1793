"""The process page kept in the process (services/content/pages.py): answered from the cache while nothing it
shows changed, and right again after a change by another connection (as another replica or an event handler
makes it) once its notification arrives, after a staff edit in this process at once, when the clock passes one
of its boundaries, and while the listener is down.

The app runs without its background loops; each test runs the page listener itself (``pages.listener``, the
loop ``loops.py`` runs in production), so it can stop and start it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest

from services.content import pages
from services.content.service import definition
from shared import db
from shared.clock import FrozenClock
from shared.http.app import create_app
from shared.service import ServiceContext
from shared.settings import Settings
from tests.integration.content.helpers import START, clock, make_process, ok, staff
from tests.support import eventually, running, serve

SLUG = "smart-city"


@pytest.fixture
async def app_ctx(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, FrozenClock, ServiceContext]]:
    c = clock()
    app = create_app([definition], settings, clock=c, background=False)
    async with serve(app) as client:
        yield client, c, app.state.civic["content"]


@pytest.fixture
async def other(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A connection of its own on the content schema: a change through it reaches this process only as a
    notification, as one by another replica or by an event handler does."""
    conn = await db.connect(settings.database_url, "content")
    try:
        yield conn
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def listening(ctx: ServiceContext) -> AsyncIterator[pages.PageCache]:
    cache = pages.page_cache(ctx)
    async with running(pages.listener(ctx)):

        async def up() -> bool:
            return cache.listening

        await eventually(up, what="the page listener listening")
        yield cache


async def settled(cache: pages.PageCache, other: asyncpg.Connection) -> None:
    """Until the notifications of everything committed so far have reached the cache: PostgreSQL delivers them
    in commit order, so once a marker sent now has arrived, so have they."""
    marker = f"marker-{uuid4()}"
    before = cache.stamp(marker)
    await other.execute("select pg_notify($1, $2)", pages.CHANNEL, marker)

    async def came() -> bool:
        return cache.stamp(marker) != before

    await eventually(came, what="the notifications")


async def published(client: httpx.AsyncClient, h: dict[str, str]) -> dict[str, Any]:
    p = await make_process(client, h, SLUG)
    await ok(await client.post(f"/api/content/staff/processes/{p['id']}/publish", headers=h))
    return p


def raw(tenant: str) -> tuple[str, str, bytes]:
    """The cache's key for the plain request (no query string), as the route looks it up."""
    return tenant, SLUG, b""


async def test_a_change_by_another_connection_shows_once_notified(
    app_ctx: tuple[httpx.AsyncClient, FrozenClock, ServiceContext],
    other: asyncpg.Connection,
    settings: Settings,
    prefix: str,
) -> None:
    client, c, ctx = app_ctx
    h = staff(prefix, settings)
    p = await published(client, h)
    url = f"/api/content/public/{prefix}/processes/{SLUG}"
    async with listening(ctx) as cache:
        first = await client.get(url)
        assert first.json()["motto"] == "Die co-kreative Stadt"
        etag = first.headers["etag"]
        assert cache.fresh(raw(prefix), c.now()) is not None  # answered without PostgreSQL from now on
        assert (await client.get(url, headers={"If-None-Match": etag})).status_code == 304

        await other.execute(
            "update processes set motto = $2 where tenant = $1 and slug = $3",
            prefix,
            json.dumps({"de": "Von nebenan"}),
            SLUG,
        )
        await settled(cache, other)
        changed = await client.get(url, headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.json()["motto"] == "Von nebenan"

        # The live state of a meeting, as the event handlers keep it: a row of the projection.
        meeting_id = uuid4()
        ref = {"kind": "meeting", "ref_id": str(meeting_id)}
        await ok(await client.post(f"/api/content/staff/processes/{p['id']}/references", headers=h, json=ref), 201)
        assert (await ok(await client.get(url)))["meetings"][0]["registration"] == "unknown"
        await other.execute(
            "insert into meeting_state (tenant, meeting_id, title, starts_at, seats_left, updated_at)"
            " values ($1, $2, 'Auftakt', $3, 5, $4)",
            prefix,
            meeting_id,
            START + timedelta(days=8),
            START,
        )
        await settled(cache, other)
        meeting = (await ok(await client.get(url)))["meetings"][0]
        assert meeting["title"] == "Auftakt" and meeting["registration"] == "open"

        # A staff edit in this process shows on the very next read, before any notification is needed.
        await ok(
            await client.patch(f"/api/content/staff/processes/{p['id']}", headers=h, json={"motto": {"de": "Neu"}})
        )
        assert (await ok(await client.get(url)))["motto"] == "Neu"

        # Another tenant's changes leave this tenant's page in the cache.
        await settled(cache, other)
        await client.get(url)
        assert cache.fresh(raw(prefix), c.now()) is not None
        other_tenant = f"{prefix}-b"
        await published(client, staff(other_tenant, settings))
        await other.execute("update processes set motto = null where tenant = $1", other_tenant)
        await settled(cache, other)
        assert cache.fresh(raw(prefix), c.now()) is not None


async def test_the_clock_alone_changes_a_cached_page_at_its_boundaries(
    app_ctx: tuple[httpx.AsyncClient, FrozenClock, ServiceContext],
    other: asyncpg.Connection,
    settings: Settings,
    prefix: str,
) -> None:
    client, c, ctx = app_ctx
    h = staff(prefix, settings)
    p = await published(client, h)
    meeting_id = uuid4()
    ref = {"kind": "meeting", "ref_id": str(meeting_id)}
    await ok(await client.post(f"/api/content/staff/processes/{p['id']}/references", headers=h, json=ref), 201)
    url = f"/api/content/public/{prefix}/processes/{SLUG}"
    closes = c.now() + timedelta(seconds=30)  # sooner than pages.LONGEST
    await other.execute(
        "insert into meeting_state (tenant, meeting_id, title, starts_at, registration_closes_at, seats_left,"
        " updated_at) values ($1, $2, 'Auftakt', $3, $4, 5, $5)",
        prefix,
        meeting_id,
        START + timedelta(days=8),
        closes,
        START,
    )
    async with listening(ctx) as cache:
        page = await client.get(url)
        assert page.json()["meetings"][0]["registration"] == "open"
        etag = page.headers["etag"]
        c.set(closes - timedelta(seconds=1))
        assert cache.fresh(raw(prefix), c.now()) is not None
        assert (await client.get(url, headers={"If-None-Match": etag})).status_code == 304

        # Registration closes by the clock: no change is stored, no notification comes, the page changes.
        c.set(closes)
        closed = await client.get(url, headers={"If-None-Match": etag})
        assert closed.status_code == 200 and closed.json()["meetings"][0]["registration"] == "closed"

        # So does today's date, at midnight in Berlin (22:00 UTC in summer time).
        today = closed.json()["today"]
        c.set(START.replace(hour=21, minute=59, second=59))
        assert (await ok(await client.get(url)))["today"] == today
        c.set(START.replace(hour=22, minute=0, second=0))
        assert (await ok(await client.get(url)))["today"] != today


async def test_without_the_listener_every_request_asks_postgresql(
    app_ctx: tuple[httpx.AsyncClient, FrozenClock, ServiceContext],
    other: asyncpg.Connection,
    settings: Settings,
    prefix: str,
) -> None:
    client, c, ctx = app_ctx
    await published(client, staff(prefix, settings))
    url = f"/api/content/public/{prefix}/processes/{SLUG}"

    async def motto(value: str) -> None:
        await other.execute("update processes set motto = $2 where tenant = $1", prefix, json.dumps({"de": value}))

    async with listening(ctx) as cache:
        etag = (await client.get(url)).headers["etag"]
        assert cache.fresh(raw(prefix), c.now()) is not None
    assert not cache.listening and cache.fresh(raw(prefix), c.now()) is None

    # Nobody hears this change's notification; the version query sees it.
    await motto("Ohne Zuhörer")
    changed = await client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.json()["motto"] == "Ohne Zuhörer"
    etag = changed.headers["etag"]
    assert (await client.get(url, headers={"If-None-Match": etag})).status_code == 304
    await motto("Noch einmal")
    assert (await ok(await client.get(url)))["motto"] == "Noch einmal"

    # Listening again, the cache forgets what it kept meanwhile (notifications sent then were lost) and
    # keeps pages again.
    before = cache.stamp(prefix)
    async with listening(ctx):
        assert cache.stamp(prefix) != before
        assert (await ok(await client.get(url)))["motto"] == "Noch einmal"
        assert cache.fresh(raw(prefix), c.now()) is not None


async def test_a_lost_listening_connection_is_opened_again_and_the_cache_forgets_meanwhile(
    app_ctx: tuple[httpx.AsyncClient, FrozenClock, ServiceContext],
    settings: Settings,
    prefix: str,
) -> None:
    client, c, ctx = app_ctx
    await published(client, staff(prefix, settings))
    url = f"/api/content/public/{prefix}/processes/{SLUG}"
    async with listening(ctx) as cache:
        await client.get(url)
        assert cache.fresh(raw(prefix), c.now()) is not None
        before = cache.stamp(prefix)
        admin = await asyncpg.connect(settings.database_url)  # the login user may end any connection
        try:
            killed = await admin.fetchval(
                "select count(pg_terminate_backend(pid)) from pg_stat_activity"
                " where datname = current_database() and application_name = $1",
                f"civic-listen-{pages.CHANNEL}",
            )
        finally:
            await admin.close()
        assert killed == 1

        async def again() -> bool:
            return cache.listening and cache.stamp(prefix) != before

        # Whether or not a request came while it was down: once back, nothing kept from before is used.
        await eventually(again, what="the listener back, the cache emptied")
        assert cache.fresh(raw(prefix), c.now()) is None
        await client.get(url)
        assert cache.fresh(raw(prefix), c.now()) is not None
