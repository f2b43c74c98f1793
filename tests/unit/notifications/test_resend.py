"""Sending a webhook delivery again (use case over a fake unit of work): the same delivery queued with a fresh
count of attempts, idempotent while queued, refused for mails, disabled endpoints and other tenants."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest

from services.notifications import use_cases
from shared.errors import Conflict, NotFound
from shared.unit_of_work import FakeUnitOfWork

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TENANT = "kreis-test"


class DeliveriesStore:
    def __init__(self) -> None:
        self.deliveries: dict[UUID, dict[str, Any]] = {}
        self.endpoint_rows: dict[UUID, dict[str, Any]] = {}

    def add(self, *, channel: str = "webhook", state: str = "given_up", enabled: bool = True) -> UUID:
        endpoint_id = uuid4()
        self.endpoint_rows[endpoint_id] = {"id": endpoint_id, "tenant": TENANT, "enabled": enabled}
        delivery_id = uuid4()
        self.deliveries[delivery_id] = {
            "id": delivery_id,
            "tenant": TENANT,
            "channel": channel,
            "endpoint_id": endpoint_id if channel == "webhook" else None,
            "state": state,
            "attempts": 9,
            "resends": 0,
            "resent_at": None,
            "next_attempt_at": NOW,
        }
        return delivery_id

    async def delivery(self, tenant: str, delivery_id: UUID) -> Any:
        row = self.deliveries.get(delivery_id)
        return row if row is not None and row["tenant"] == tenant else None

    async def endpoints(self, ids: list[UUID]) -> dict[UUID, Any]:
        return {i: self.endpoint_rows[i] for i in ids if i in self.endpoint_rows}

    async def requeue(self, tenant: str, delivery_id: UUID, now: datetime) -> Any:
        row = self.deliveries[delivery_id]
        row.update(state="queued", attempts=0, next_attempt_at=now, resends=row["resends"] + 1, resent_at=now)
        return row


def uow(store: DeliveriesStore) -> Any:
    return FakeUnitOfWork(store, "notifications")


async def test_a_given_up_delivery_is_queued_again_with_fresh_attempts() -> None:
    store = DeliveriesStore()
    delivery_id = store.add()
    row = await use_cases.resend_webhook_delivery(uow(store), TENANT, delivery_id, NOW)
    assert row["state"] == "queued" and row["attempts"] == 0 and row["resends"] == 1 and row["resent_at"] == NOW
    # Idempotent: a second click while it waits sends nothing twice.
    again = await use_cases.resend_webhook_delivery(uow(store), TENANT, delivery_id, NOW)
    assert again["resends"] == 1


async def test_mails_disabled_endpoints_and_other_tenants_are_refused() -> None:
    store = DeliveriesStore()
    with pytest.raises(Conflict) as mail:
        await use_cases.resend_webhook_delivery(uow(store), TENANT, store.add(channel="email"), NOW)
    assert mail.value.code == "not-resendable"
    with pytest.raises(Conflict) as disabled:
        await use_cases.resend_webhook_delivery(uow(store), TENANT, store.add(enabled=False), NOW)
    assert disabled.value.code == "endpoint-disabled"
    with pytest.raises(NotFound):
        await use_cases.resend_webhook_delivery(uow(store), "stadt-anders", store.add(), NOW)
