"""Payloads any service may publish about what it owns."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from shared.contracts.envelope import Payload


class DeadlineApproachingV1(Payload):
    """A deadline the producing service owns is ``offset_seconds`` away (or was, if ``late``)."""

    deadline_id: UUID
    kind: str
    subject_id: str
    due_at: datetime
    offset_seconds: int
    late: bool = False
    title: str | None = None
