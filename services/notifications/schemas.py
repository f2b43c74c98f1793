"""Request and response models of the notifications API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from shared.http.email import Email


class SubscribeIn(BaseModel):
    tenant: str = Field(min_length=1, max_length=63)
    email: Email
    process_id: UUID
    locale: Literal["de", "en"] = "de"


class SubscriptionOut(BaseModel):
    state: Literal["pending", "confirmed", "unsubscribed"]
    detail: str


class DeliveryOut(BaseModel):
    id: UUID
    cause_event_id: UUID
    channel: str
    template: str
    transactional: bool
    state: str
    attempts: int
    next_attempt_at: datetime
    last_answer: str | None
    registration_id: UUID | None
    endpoint_id: UUID | None
    address_kept: bool
    created_at: datetime
    sent_at: datetime | None
    resends: int = Field(default=0, description="How often staff had it sent again.")
    resent_at: datetime | None = None

    @classmethod
    def of(cls, row: Any) -> DeliveryOut:
        return cls(
            id=row["id"],
            cause_event_id=row["cause_event_id"],
            channel=row["channel"],
            template=row["template"],
            transactional=row["transactional"],
            state=row["state"],
            attempts=row["attempts"],
            next_attempt_at=row["next_attempt_at"],
            last_answer=row["last_answer"],
            registration_id=row["registration_id"],
            endpoint_id=row["endpoint_id"],
            address_kept=row["address"] is not None,
            created_at=row["created_at"],
            sent_at=row["sent_at"],
            resends=row["resends"],
            resent_at=row["resent_at"],
        )


class WebhookIn(BaseModel):
    url: str = Field(min_length=1, max_length=2000)
    event_types: list[Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[a-z0-9_.*]+$")]] = Field(
        min_length=1, max_length=50
    )
    description: str | None = Field(default=None, max_length=500)


def endpoint_json(row: Any) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "url": row["url"],
        "event_types": list(row["event_types"]),
        "description": row["description"],
        "enabled": row["enabled"],
        "disabled_reason": row["disabled_reason"],
        "created_at": row["created_at"].isoformat(),
    }


class WebhookOut(BaseModel):
    id: UUID
    url: str
    event_types: list[str]
    description: str | None
    enabled: bool
    disabled_reason: str | None
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="Shown once: verify signatures with it (Standard Webhooks, whsec_ prefix).")
