"""What registration subscribes to: only the answers to its data-export requests (it is the source of
everything else it owns)."""

from __future__ import annotations

from services.registration.store import Store
from services.registration.use_cases import privacy
from shared.contracts.envelope import Envelope
from shared.contracts.notifications import PersonExportContributedV1
from shared.db import Conn
from shared.service import ServiceContext, Subscription, on


async def export_contributed(
    ctx: ServiceContext, conn: Conn, envelope: Envelope, payload: PersonExportContributedV1
) -> None:
    await privacy.export_contributed(
        ctx.uows(Store).joined(conn),
        envelope.tenant,
        payload.export_id,
        envelope.source.rsplit("/", 1)[-1],
        payload.sealed,
        now=ctx.clock.now(),
    )


SUBSCRIPTIONS: list[Subscription] = [
    on(PersonExportContributedV1, export_contributed),
]
