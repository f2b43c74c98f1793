"""Registration's background work: retention (anonymising registrations of meetings long over, deleting expired
data exports)."""

from __future__ import annotations

from services.registration.settings import settings_of
from services.registration.store import Store
from services.registration.use_cases import privacy
from shared.loops import Loop, every
from shared.service import ServiceContext


def loops(ctx: ServiceContext) -> list[Loop]:
    settings = settings_of(ctx)
    uows = ctx.uows(Store)

    async def retention() -> None:
        await privacy.anonymise_due(uows(), settings.retention_days, now=ctx.clock.now())
        await privacy.expire_exports(uows(), now=ctx.clock.now())

    return [every("retention", retention, interval=settings.retention_interval_seconds)]
