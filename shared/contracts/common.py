"""Payloads any service may publish about what it owns."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from shared.contracts.envelope import Payload


class DeadlineKind(StrEnum):
    """Every kind of deadline a service registers (shared/bus/deadlines.py takes nothing else). The payloads'
    ``kind`` stays a string on the wire, as first published, so a kind added later breaks no consumer."""

    REGISTRATION_CLOSES = "registration_closes"
    MEETING_STARTS = "meeting_starts"
    SURVEY_CLOSES = "survey_closes"


class DeadlineApproachingV1(Payload):
    """A deadline the producing service owns is ``offset_seconds`` away (or was, if ``late``). The base of each
    producer's own payload class, so a consumer can handle every deadline with one handler."""

    deadline_id: UUID
    #: A ``DeadlineKind`` value.
    kind: str
    subject_id: str
    due_at: datetime
    offset_seconds: int
    late: bool = False
    title: str | None = None
