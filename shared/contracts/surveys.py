"""Events of the surveys service. Responses are anonymous: nothing here identifies a respondent."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from shared.contracts.common import DeadlineApproachingV1
from shared.contracts.envelope import Payload
from shared.contracts.spec import EventSpec, spec


class SurveyPublishedV1(Payload):
    survey_id: UUID
    title: str
    opens_at: datetime
    closes_at: datetime
    url: str | None = None
    process_id: UUID | None = None
    results_public: bool = False


class SurveyOpenedV1(Payload):
    survey_id: UUID
    title: str
    closes_at: datetime
    process_id: UUID | None = None


class ResponseCompletedV1(Payload):
    """One per stored response; the day only, so the event cannot be paired with a token or a request."""

    survey_id: UUID
    day: date


class SurveyClosedV1(Payload):
    survey_id: UUID
    closed_at: datetime
    responses: int
    process_id: UUID | None = None


class SurveyDeadlineApproachingV1(DeadlineApproachingV1):
    """A survey closes (``survey_closes``) ``offset_seconds`` from now."""


_P = "civic.surveys"
EVENTS: list[EventSpec] = [
    spec(f"{_P}.survey.published.v1", SurveyPublishedV1, "surveys", "A survey was published."),
    spec(f"{_P}.survey.opened.v1", SurveyOpenedV1, "surveys", "A survey opened for responses."),
    spec(f"{_P}.response.completed.v1", ResponseCompletedV1, "surveys", "A response was stored."),
    spec(f"{_P}.survey.closed.v1", SurveyClosedV1, "surveys", "A survey closed."),
    spec(f"{_P}.deadline.approaching.v1", SurveyDeadlineApproachingV1, "surveys", "A survey is about to close."),
]
