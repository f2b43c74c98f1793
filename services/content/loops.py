"""The content service's background work: scheduled publishing, phase starts and aggregated QR scan reports;
and the LISTEN connection that keeps this process's page cache right (pages.py).

Each pass records its events in the transaction of the transition that makes them true (see store.py), so a
second replica or a retry finds nothing left to do.
"""

from __future__ import annotations

from services.content import domain, pages, use_cases
from services.content.store import Store
from shared.loops import Loop, every
from shared.service import ServiceContext


async def publishing_pass(ctx: ServiceContext) -> int:
    """One pass: publish what is due, announce phases that started, report scans; how many events it recorded."""
    uows = ctx.uows(Store)
    now = ctx.clock.now()
    links = use_cases.Links(ctx.settings.public_base_url, ctx.settings.links)
    n = await use_cases.publish_due(uows(), now, links)
    n += await use_cases.announce_phases(uows(), domain.berlin_today(now), now)
    n += await use_cases.report_scans(uows(), now)
    return n


def loops(ctx: ServiceContext) -> list[Loop]:
    # Scheduled times are minute-precise in practice; tests set a short deadline interval and we follow it.
    interval = min(ctx.settings.deadline_interval_seconds, 5.0)

    async def step() -> int:
        return await publishing_pass(ctx)

    return [every("content publishing", step, interval=interval), pages.listener(ctx)]
