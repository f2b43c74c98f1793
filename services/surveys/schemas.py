"""Request bodies of the HTTP API (pydantic); the rules themselves live in domain.py."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, Field

from services.surveys import domain
from shared.http.text import Visible

IdStr = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
Kind = Literal["single_choice", "multiple_choice", "free_text", "scale", "ranking", "number", "yes_no", "matrix"]


class OptionIn(BaseModel):
    id: str = IdStr
    label: str = Field(min_length=1, max_length=500)


class ConditionIn(BaseModel):
    """Show the question only if the earlier question ``question`` was answered with one of ``any_of``."""

    question: str
    any_of: list[str] = Field(min_length=1)


class QuestionIn(BaseModel):
    id: str = IdStr
    kind: Kind
    text: str = Field(min_length=1, max_length=2000)
    required: bool = False
    help: str = Field("", max_length=2000)
    options: list[OptionIn] = Field(default_factory=list, max_length=200)
    max_selections: int | None = None
    max_length: int | None = None
    min: float | None = None
    max: float | None = None
    integer: bool = False
    rows: list[OptionIn] = Field(default_factory=list, max_length=100)
    condition: ConditionIn | None = None


class SectionIn(BaseModel):
    id: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,40}$")
    title: str = Field("", max_length=300)
    description: str = Field("", max_length=5000)
    questions: list[QuestionIn] = Field(min_length=1, max_length=300)


class SurveyIn(BaseModel):
    title: Annotated[str, Field(min_length=1, max_length=300), Visible]
    slug: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]{0,79}$")
    introduction: str = Field("", max_length=20_000)
    estimated_minutes: int | None = Field(None, ge=1, le=600)
    opens_at: AwareDatetime
    closes_at: AwareDatetime
    results_public: bool = False
    process_id: UUID | None = None
    access: Literal["public", "token"] = "public"
    #: Hours before closing at which "deadline approaching" goes out; the service's default if omitted.
    reminder_offsets_hours: list[Annotated[int, Field(ge=1, le=24 * 60)]] | None = Field(None, max_length=10)
    sections: list[SectionIn] = Field(min_length=1, max_length=50)

    def questionnaire(self) -> domain.Questionnaire:
        return domain.questionnaire_from_dict(self.definition())

    def definition(self) -> dict[str, Any]:
        return {"sections": [s.model_dump(mode="json", exclude_none=True) for s in self.sections]}


class ResponseIn(BaseModel):
    answers: dict[str, Any] = Field(default_factory=dict)
    #: Client-chosen random key; a retry with the same key stores nothing twice. The header Idempotency-Key
    #: may carry it instead.
    submission_key: str | None = Field(None, min_length=8, max_length=200)
    #: The single-use access code of a letter-based survey.
    token: str | None = Field(None, max_length=64)
    #: The resume code of a draft whose answers are submitted (``answers`` then add to or replace them);
    #: the draft ends with the response.
    draft: str | None = Field(None, min_length=1, max_length=64)


class AccessCodeIn(BaseModel):
    #: The code from the letter, as typed (case and dashes do not matter).
    code: str = Field(min_length=1, max_length=64)


class DraftSectionIn(BaseModel):
    #: The answers of this section's questions, as in a submission; a question left out loses its old answer.
    answers: dict[str, Any] = Field(default_factory=dict)
    #: True when the person leaves to resume later: required questions may stay blank (bad answers are
    #: still refused).
    partial: bool = False


class TokensIn(BaseModel):
    count: int = Field(ge=1, le=20_000)


class RemovalIn(BaseModel):
    """Remove a free text that names someone: the text only (``text``) or the whole response (``response``)."""

    scope: Literal["text", "response"] = "text"
    reason: str = Field("", max_length=500)


# --- answers (documentation only: the routes build these bodies themselves; the API test checks them) ----------


class SurveyOut(BaseModel):
    """A survey as the public sees it; staff also see the tenant, reminders and life-cycle times."""

    id: UUID
    slug: str
    title: str
    introduction: str
    estimated_minutes: int | None
    opens_at: AwareDatetime
    closes_at: AwareDatetime
    state: Literal["draft", "published", "open", "closed"]
    access: Literal["public", "token"]
    results_public: bool
    process_id: UUID | None
    url: str = Field(description="the public page of the survey (what the QR code leads to)")
    sections: list[dict[str, Any]] | None = Field(None, description="the questionnaire, where the answer has it")
    tenant: str | None = Field(None, description="staff only")
    reminder_offsets_hours: list[int] | None = Field(None, description="staff only")
    created_at: AwareDatetime | None = Field(None, description="staff only")
    updated_at: AwareDatetime | None = Field(None, description="staff only")
    published_at: AwareDatetime | None = Field(None, description="staff only")
    opened_at: AwareDatetime | None = Field(None, description="staff only")
    closed_at: AwareDatetime | None = Field(None, description="staff only")


class CodesOut(BaseModel):
    count: int
    codes: list[str] = Field(description="single-use access codes, shown only in this answer")


class ReceiptOut(BaseModel):
    survey_id: UUID
    day: str = Field(description="the day the response was recorded (no finer time is kept)")
    status: Literal["recorded"]


class QuestionResultOut(BaseModel):
    id: str
    kind: Kind
    text: str
    answered: int
    options: list[dict[str, Any]] | None = None
    yes: int | None = None
    no: int | None = None
    distribution: dict[str, int] | None = None
    sum: float | None = None
    mean: float | None = None
    rows: list[dict[str, Any]] | None = None


class ResultsOut(BaseModel):
    survey_id: UUID
    title: str
    state: Literal["draft", "published", "open", "closed"]
    responses: int
    questions: list[QuestionResultOut]


class TextOut(BaseModel):
    id: UUID
    text: str


class TextsOut(BaseModel):
    items: list[TextOut]
    next_after: UUID | None = Field(description="pass as `after` for the next page; null on the last")


class RemovalOut(BaseModel):
    """A removal of a free text or a whole response: what, why, by whom and when (never which response)."""

    removal_id: UUID
    scope: Literal["text", "response"]
    question_id: str
    removed_at: AwareDatetime
    reason: str | None = None
    removed_by: str | None = None


class AccessCodeOut(BaseModel):
    valid: Literal[True]


class DraftSectionStateOut(BaseModel):
    id: str
    shown: bool
    answered: list[str]
    missing: list[str]


class DraftOut(BaseModel):
    """A draft's answers and where it stands (``resume_code`` only in the answer that started it)."""

    survey_id: UUID
    expires_at: AwareDatetime
    resume_code: str | None = Field(None, description="shown only once, when the draft is started")
    answers: dict[str, Any]
    sections: list[DraftSectionStateOut]
    shown: list[str] = Field(description="the questions shown for the answers so far")
    errors: list[dict[str, Any]] = Field(description="what a submission would be refused for now")
