"""The surveys service's own background work: the clock that opens and closes surveys on time, and mixing
token surveys' rows so system columns no longer pair a code with its response."""

from __future__ import annotations

import time

from services.surveys.settings import settings_of
from services.surveys.store import Store
from services.surveys.use_cases import surveys
from shared.loops import Loop, every
from shared.service import ServiceContext


def loops(ctx: ServiceContext) -> list[Loop]:
    settings = settings_of(ctx)
    uows = ctx.uows(Store)
    last_mix = time.monotonic()

    async def clock() -> None:
        nonlocal last_mix
        changed = await surveys.tick(uows, ctx.clock.now())
        # A survey that just closed is mixed at once, so its final rows never keep the pairing.
        closed = any(what == "closed" for what, _ in changed)
        if closed or time.monotonic() - last_mix >= settings.mix_interval_seconds:
            last_mix = time.monotonic()
            for tenant, survey_id in await surveys.unmixed(uows):
                await surveys.mix(uows, tenant, survey_id)

    return [every("survey clock", clock, interval=settings.tick_seconds)]
