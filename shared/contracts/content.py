"""Events of the content service: processes, phases, pages, news and QR short links."""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from shared.contracts.envelope import Payload
from shared.contracts.spec import EventSpec, spec


class ContentPublishedV1(Payload):
    content_id: UUID
    kind: Literal["process", "page", "news", "phase", "step", "contact"]
    process_id: UUID | None = None
    title: str
    summary: str | None = None
    language: str = "de"
    url: str | None = None


class PhaseStartedV1(Payload):
    process_id: UUID
    phase_id: UUID
    title: str
    starts_on: date
    ends_on: date | None = None


class QrScannedV1(Payload):
    """Scans of one code on one day so far; published in aggregate, not per scan."""

    code: str
    target_kind: str
    day: date
    scans: int


_P = "civic.content"
EVENTS: list[EventSpec] = [
    spec(f"{_P}.content.published.v1", ContentPublishedV1, "content", "Content was published."),
    spec(f"{_P}.phase.started.v1", PhaseStartedV1, "content", "A phase of a process started."),
    spec(f"{_P}.qr.scanned.v1", QrScannedV1, "content", "A QR short link was scanned (aggregated per day)."),
]
