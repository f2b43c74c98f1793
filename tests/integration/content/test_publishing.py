"""Scheduled publishing and phase starts by the background loop, each event exactly once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from services.content import loops
from services.content.service import definition
from shared.http.app import create_app
from shared.settings import Settings
from tests.integration.content.helpers import clock, make_process, ok, outbox_events, staff
from tests.support import eventually, serve

PUBLISHED = "civic.content.content.published.v1"
PHASE_STARTED = "civic.content.phase.started.v1"


async def test_scheduled_items_publish_once_when_due(settings: Settings, prefix: str) -> None:
    c = clock()
    app = create_app([definition], settings, clock=c)
    async with serve(app) as client:
        ctx = app.state.civic["content"]
        h = staff(prefix, settings)
        p = await make_process(client, h)
        news = await ok(
            await client.post(
                "/api/content/staff/articles",
                headers=h,
                json={
                    "kind": "news",
                    "slug": "preis",
                    "process_id": p["id"],
                    "title": {"de": "1. Platz"},
                    "body": {"de": "Gewonnen."},
                },
            ),
            201,
        )
        at = (c.now() + timedelta(hours=2)).isoformat()
        sched = await ok(
            await client.post(f"/api/content/staff/processes/{p['id']}/publish", headers=h, json={"publish_at": at})
        )
        assert sched["status"] == "scheduled"
        await ok(
            await client.post(f"/api/content/staff/articles/{news['id']}/publish", headers=h, json={"publish_at": at})
        )
        url = f"/api/content/public/{prefix}/processes/smart-city"

        await loops.publishing_pass(ctx)
        assert (await client.get(url)).status_code == 404
        assert await outbox_events(ctx.pool, prefix, PUBLISHED) == []

        c.advance(timedelta(hours=2))

        async def visible() -> bool:
            return (await client.get(url)).status_code == 200

        await eventually(visible, what="the scheduled process is published by the loop")
        page = (await client.get(url)).json()
        assert [n["slug"] for n in page["news"]["items"]] == ["preis"]
        for _ in range(3):
            await loops.publishing_pass(ctx)
        events = await outbox_events(ctx.pool, prefix, PUBLISHED)
        assert sorted(e["data"]["kind"] for e in events) == ["news", "process"]
        process_event = next(e for e in events if e["data"]["kind"] == "process")
        assert process_event["data"]["title"] == "Modellprojekt Smart City"
        assert process_event["subject"] == f"process/{p['id']}"
        assert process_event["data"]["url"].endswith(f"/{prefix}/verfahren/smart-city")


async def test_phase_start_is_announced_once_on_its_day(settings: Settings, prefix: str) -> None:
    c = clock()  # 20 October 2021
    app = create_app([definition], settings, clock=c)
    async with serve(app) as client:
        ctx = app.state.civic["content"]
        h = staff(prefix, settings)
        p = await make_process(client, h)
        base = f"/api/content/staff/processes/{p['id']}"
        running = await ok(
            await client.post(
                f"{base}/phases",
                headers=h,
                json={"title": {"de": "Strategie"}, "starts_on": "2021-10-01", "ends_on": "2022-09-30"},
            ),
            201,
        )
        later = await ok(
            await client.post(
                f"{base}/phases", headers=h, json={"title": {"de": "Umsetzung"}, "starts_on": "2022-10-01"}
            ),
            201,
        )
        await ok(
            await client.post(
                f"{base}/phases",
                headers=h,
                json={"title": {"de": "Vorlauf"}, "starts_on": "2021-01-01", "ends_on": "2021-06-30"},
            ),
            201,
        )
        # Drafts announce nothing.
        await loops.publishing_pass(ctx)
        assert await outbox_events(ctx.pool, prefix, PHASE_STARTED) == []

        await ok(await client.post(f"{base}/publish", headers=h))

        async def started() -> list[str]:
            return [e["data"]["phase_id"] for e in await outbox_events(ctx.pool, prefix, PHASE_STARTED)]

        # The running phase is announced on publication; the phase that ended before it never is.
        assert await eventually(started, what="the running phase announced") == [running["id"]]

        # 30 September 2022, 23:59 Berlin: not yet.
        c.set(c.now().replace(year=2022, month=9, day=30, hour=21, minute=59))
        for _ in range(2):
            await loops.publishing_pass(ctx)
        assert await started() == [running["id"]]

        # Midnight in Berlin (22:00 UTC in summer time): the implementation phase starts.
        c.advance(timedelta(minutes=1))
        await eventually(lambda: _has(started, later["id"]), what="the later phase announced")
        for _ in range(3):
            await loops.publishing_pass(ctx)
        ids = await started()
        assert ids == [running["id"], later["id"]]
        event = (await outbox_events(ctx.pool, prefix, PHASE_STARTED))[-1]
        assert event["data"]["title"] == "Umsetzung" and event["data"]["starts_on"] == "2022-10-01"


async def _has(probe, item: str) -> bool:  # type: ignore[no-untyped-def]
    return item in await probe()


async def test_concurrent_passes_publish_each_item_once(settings: Settings, prefix: str) -> None:
    """Replicas running the loop at the same moment: the guarded transitions leave one event per item."""
    c = clock()
    app = create_app([definition], settings, clock=c, background=False)
    async with serve(app) as client:
        ctx = app.state.civic["content"]
        h = staff(prefix, settings)
        at = (c.now() + timedelta(minutes=5)).isoformat()
        for i in range(6):
            p = await make_process(client, h, slug=f"prozess-{i}")
            await ok(
                await client.post(
                    f"/api/content/staff/processes/{p['id']}/phases",
                    headers=h,
                    json={"title": {"de": "Phase"}, "starts_on": "2021-10-21"},
                ),
                201,
            )
            await ok(
                await client.post(f"/api/content/staff/processes/{p['id']}/publish", headers=h, json={"publish_at": at})
            )
        c.advance(timedelta(days=1))
        results = await asyncio.gather(*(loops.publishing_pass(ctx) for _ in range(6)))
        assert sum(results) == 12  # 6 publications + 6 phase starts, however the passes interleave
        assert len(await outbox_events(ctx.pool, prefix, PUBLISHED)) == 6
        assert len(await outbox_events(ctx.pool, prefix, PHASE_STARTED)) == 6
        assert sum(await asyncio.gather(*(loops.publishing_pass(ctx) for _ in range(3)))) == 0
