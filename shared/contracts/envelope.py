"""The CloudEvents 1.0 envelope every civic event travels in.

Extension attributes (lowercase alphanumerics, as CloudEvents requires):
``tenant`` (the municipality or county the event belongs to), ``correlationid`` (the request or chain it is
part of), ``causationid`` (the event that caused it) and ``aggregatesequence`` (1, 2, 3 ... per subject, so a
consumer can tell a stale event from a fresh one when they arrive out of order).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class Payload(BaseModel):
    """Base of every event payload.

    Unknown fields are ignored so that a payload with an added optional field still parses in an older
    consumer; that is the only change a version allows (see docs/events.md).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)


class Envelope(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: UUID
    source: str
    type: str
    time: datetime
    subject: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str | None = None
    tenant: str = Field(min_length=1, max_length=63)
    correlationid: str | None = None
    causationid: str | None = None
    aggregatesequence: int | None = Field(default=None, ge=1)
    data: dict[str, Any]
