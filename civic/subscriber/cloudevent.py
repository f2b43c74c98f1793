"""The CloudEvents 1.0 envelope with a typed ``data``: what a subscriber's handler receives."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

P = TypeVar("P")


class CloudEvent(BaseModel, Generic[P]):
    """civic's envelope: the CloudEvents attributes, civic's extensions, and the payload as ``data``.

    Unknown attributes are kept (``extra="allow"``), so an extension added later does not break a subscriber.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: str = "1.0"
    id: UUID
    source: str
    type: str
    time: datetime
    subject: str | None = None
    datacontenttype: str = "application/json"
    dataschema: str | None = None
    #: The municipality or county the event belongs to.
    tenant: str
    #: The request or chain of events this one belongs to.
    correlationid: str | None = None
    #: The id of the event that caused this one (None when a request did).
    causationid: str | None = None
    #: 1, 2, 3 ... per subject: apply an event only if it is newer than what you applied for its subject.
    aggregatesequence: int | None = Field(default=None, ge=1)
    data: P
