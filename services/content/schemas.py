"""Request and response models of the content API (validated by pydantic; every bad field is listed in the 422
problem), and how a request body becomes the plain values the use cases take."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AnyUrl, BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

from shared.http.email import Email
from shared.http.text import Visible

SLUG = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
Slug = Field(min_length=1, max_length=100, pattern=SLUG)
OptionalSlug = Field(default=None, min_length=1, max_length=100, pattern=SLUG)
#: Positions are stored as PostgreSQL integers; a larger one gave a 500 (int32 overflow), now it is a 422.
POSITION_MAX = 100_000


class Text(BaseModel):
    """A text in German (required) and English (optional; reads fall back to German)."""

    model_config = ConfigDict(extra="forbid")
    de: str = Field(min_length=1, max_length=100_000)
    en: str | None = Field(default=None, max_length=100_000)


class FundingFact(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: Text
    amount: int = Field(ge=0, description="whole euros")
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    source: Text | None = None
    period: Text | None = None


class ProcessIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slug: str = Slug
    title: Text
    motto: Text | None = None
    summary: Text | None = None
    funding: list[FundingFact] = Field(default_factory=list, max_length=50)


def _not_null(value: object) -> object:
    # Called only for values sent explicitly: leaving a field out keeps it, sending null would erase it.
    if value is None:
        raise ValueError("may be left out but not null")
    return value


class ProcessPatch(BaseModel):
    """Fields sent are replaced; fields left out stay. ``motto`` and ``summary`` may be cleared with null."""

    model_config = ConfigDict(extra="forbid")
    slug: str | None = OptionalSlug
    title: Text | None = None
    motto: Text | None = None
    summary: Text | None = None
    funding: list[FundingFact] | None = Field(default=None, max_length=50)

    _required = field_validator("slug", "title", "funding")(_not_null)


class PublishIn(BaseModel):
    """Publish now (no ``publish_at``) or at a time; a time in the past publishes with the next loop run."""

    model_config = ConfigDict(extra="forbid")
    publish_at: datetime | None = None

    @field_validator("publish_at")
    @classmethod
    def aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("publish_at needs a time zone offset")
        return v


class PhaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Text
    description: Text | None = None
    starts_on: date
    ends_on: date | None = None
    position: int | None = Field(default=None, ge=0, le=POSITION_MAX)

    @model_validator(mode="after")
    def ordered(self) -> PhaseIn:
        if self.ends_on is not None and self.ends_on < self.starts_on:
            raise ValueError("ends_on must not be before starts_on")
        return self


class StepIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: str = Field(pattern=r"^\d+(\.\d+)*$", max_length=20, examples=["1.1"])
    kind: Literal["step", "measure", "quick_project"] = "step"
    title: Text
    body: Text | None = Field(default=None, description="Markdown")


class ArticleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["page", "news"]
    slug: str = Slug
    process_id: UUID | None = None
    title: Text
    summary: Text | None = None
    body: Text = Field(description="Markdown, rendered to sanitised HTML")


class ArticlePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slug: str | None = OptionalSlug
    title: Text | None = None
    summary: Text | None = None
    body: Text | None = None

    _required = field_validator("slug", "title", "body")(_not_null)


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=200), Visible]
    role: Text | None = None
    unit: Text | None = None
    email: Email | None = None
    phone: str | None = Field(default=None, max_length=50)
    address: str | None = Field(default=None, max_length=500)
    opening_hours: Text | None = None
    position: int | None = Field(default=None, ge=0, le=POSITION_MAX)


class AttachmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Text
    url: HttpUrl
    media_type: str | None = Field(default=None, max_length=100)
    position: int | None = Field(default=None, ge=0, le=POSITION_MAX)


class RefIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["meeting", "survey"]
    ref_id: UUID
    position: int | None = Field(default=None, ge=0, le=POSITION_MAX)


class PreviewIn(BaseModel):
    """Markdown to render as a page or news item would be, without storing anything."""

    model_config = ConfigDict(extra="forbid")
    body: str = Field(max_length=100_000, description="Markdown")


TargetKind = Literal["survey", "meeting", "page", "url", "app"]
EC = Literal["L", "M", "Q", "H"]


class QrIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target_kind: TargetKind
    target_url: HttpUrl = Field(description="where the short link redirects (a survey, meeting, page, app store)")
    target_id: UUID | None = None
    label: str | None = Field(default=None, max_length=200)
    error_correction: EC = "M"


class QrPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target_kind: TargetKind | None = None
    target_url: HttpUrl | None = None
    target_id: UUID | None = None
    label: str | None = Field(default=None, max_length=200)
    error_correction: EC | None = None


def _plain(value: Any) -> Any:
    # Nested models become the JSON-ready dicts the store writes as jsonb (languages left out stay out).
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, AnyUrl):
        return str(value)
    return value


def fields(body: BaseModel) -> dict[str, Any]:
    """Every field of a request body as plain values (texts as ``{de, en}`` dicts, URLs as strings)."""
    return {name: _plain(getattr(body, name)) for name in type(body).model_fields}


def changes(patch: BaseModel) -> dict[str, Any]:
    """The fields a PATCH body sent (left out: unchanged; sent as null: cleared), as plain values."""
    return {name: _plain(getattr(patch, name)) for name in patch.model_dump(exclude_unset=True)}


Lang = Literal["de", "en"]


# -- answers (documentation only: the routes build these bodies themselves; the API test checks them) ---------

Status = Literal["draft", "scheduled", "published"]
Texts = dict[str, str]
"""A stored text in its languages, e.g. ``{"de": "...", "en": "..."}`` (English may be missing)."""


class ProcessOut(BaseModel):
    tenant: str
    id: UUID
    slug: str
    title: Texts
    motto: Texts | None
    summary: Texts | None
    funding: list[dict[str, object]]
    status: Status
    publish_at: datetime | None
    published_at: datetime | None
    created_at: datetime
    updated_at: datetime
    revision: int


class ProcessFullOut(ProcessOut):
    """A process with all its parts, in all languages, drafts included."""

    phases: list[dict[str, object]]
    steps: list[dict[str, object]]
    contacts: list[dict[str, object]]
    attachments: list[dict[str, object]]
    references: list[dict[str, object]]
    articles: list[dict[str, object]]


class ProcessesOut(BaseModel):
    items: list[ProcessOut]


class PartOut(BaseModel):
    """A phase, step, contact person, attachment or reference of a process, as stored."""

    id: UUID
    tenant: str
    process_id: UUID


class PublicationOut(BaseModel):
    id: UUID
    status: Status
    publish_at: datetime | None = None
    published_at: datetime | None = None


class ArticleOut(BaseModel):
    tenant: str
    id: UUID
    process_id: UUID | None
    kind: Literal["page", "news"]
    slug: str
    title: Texts
    summary: Texts | None
    body_md: Texts
    body_html: Texts
    status: Status
    publish_at: datetime | None
    published_at: datetime | None
    created_at: datetime
    updated_at: datetime


class PreviewOut(BaseModel):
    html: str = Field(description="the sanitised HTML, exactly as a stored body_html would be")


class ArticlesOut(BaseModel):
    items: list[ArticleOut]


class QrOut(BaseModel):
    tenant: str
    code: str
    label: str | None
    target_kind: str
    target_id: UUID | None
    target_url: str
    error_correction: Literal["L", "M", "Q", "H"]
    created_at: datetime
    updated_at: datetime
    short_link: str = Field(description="the printed link, /q/<code>")


class QrListOut(BaseModel):
    items: list[QrOut]


class ScanDayOut(BaseModel):
    day: date
    scans: int


class ScansOut(BaseModel):
    code: str
    days: list[ScanDayOut]
    total: int


class PageOut(BaseModel):
    """One page of a public list, in the requested language."""

    items: list[dict[str, object]]
    page: int
    per_page: int
    total: int
    pages: int


class PublicProcessOut(BaseModel):
    """The public process page in one answer (texts in the requested language)."""

    id: UUID
    slug: str
    language: Literal["de", "en"]
    title: str
    motto: str | None
    summary: str | None
    funding: list[dict[str, object]]
    published_at: datetime | None
    today: date
    current_phase: dict[str, object] | None
    phases: list[dict[str, object]]
    steps: list[dict[str, object]]
    contacts: list[dict[str, object]]
    attachments: list[dict[str, object]]
    meetings: list[dict[str, object]]
    surveys: list[dict[str, object]]
    pages: list[dict[str, object]]
    news: PageOut


class PublicArticleOut(BaseModel):
    """A published page or news item in the requested language (lists leave out ``body_html``)."""

    id: UUID
    kind: Literal["page", "news"]
    slug: str
    title: str | None
    summary: str | None
    published_at: datetime | None
    body_html: str | None = None
