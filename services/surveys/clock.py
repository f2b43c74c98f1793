"""The surveys service's own loop: opening and closing on time, and mixing token surveys' rows."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from services.surveys.config import SurveysConfig
from shared.bus.errors import TRANSIENT
from shared.service import Loop, ServiceContext

log = logging.getLogger(__name__)


def loops(ctx: ServiceContext, config: SurveysConfig) -> list[Loop]:
    from services.surveys.api import surveys_of

    svc, _ = surveys_of(ctx, config)

    async def run(stop: asyncio.Event) -> None:
        last_mix = time.monotonic()
        while not stop.is_set():
            try:
                changed = await svc.tick()
                # A survey that just closed is mixed at once, so its final rows never keep the pairing.
                closed = any(what == "closed" for what, _ in changed)
                if closed or time.monotonic() - last_mix >= config.mix_interval_seconds:
                    last_mix = time.monotonic()
                    for tenant, survey_id in await svc.unmixed():
                        await svc.mix(tenant, survey_id)
            except TRANSIENT as exc:
                log.warning("survey clock postponed", extra={"error": repr(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), config.tick_seconds)

    return [run]
