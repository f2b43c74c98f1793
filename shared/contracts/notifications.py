"""Events of the notifications service. They name the cause and channel, never the address."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from shared.contracts.envelope import Payload
from shared.contracts.spec import EventSpec, spec


class NotificationSentV1(Payload):
    delivery_id: UUID
    cause_event_id: UUID
    channel: Literal["email", "webhook"]
    template: str


class NotificationFailedV1(Payload):
    delivery_id: UUID
    cause_event_id: UUID
    channel: Literal["email", "webhook"]
    template: str
    permanent: bool
    reason: str


class PersonExportContributedV1(Payload):
    """The notifications service's part of a person's data export: its records sealed under the export's key
    (``key_id`` from the request; ``{"records": {...}}`` once opened)."""

    export_id: UUID
    key_id: UUID
    sealed: str


_P = "civic.notifications"
EVENTS: list[EventSpec] = [
    spec(f"{_P}.notification.sent.v1", NotificationSentV1, "notifications", "A message was delivered."),
    spec(
        f"{_P}.notification.failed.v1",
        NotificationFailedV1,
        "notifications",
        "A delivery failed (temporarily or for good).",
    ),
    spec(
        f"{_P}.person.export_contributed.v1",
        PersonExportContributedV1,
        "notifications",
        "The notifications service's records for a data export (sealed).",
        ("sealed",),
        private=True,
    ),
]
