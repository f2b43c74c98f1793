"""Request and response bodies of the registration API (pydantic validates each field; 422 lists them all)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.registration import domain
from shared.http.email import Email
from shared.http.text import Visible


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VenueIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    street: str | None = Field(default=None, max_length=200)
    postal_code: str | None = Field(default=None, pattern=r"^\d{5}$")
    city: str | None = Field(default=None, max_length=100)
    #: How to get in and what is there: step-free access, lift, induction loop, accessible toilet ...
    accessibility: str | None = Field(default=None, max_length=1000)


class AttestationIn(Strict):
    id: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9_-]+$")
    text: str = Field(min_length=1, max_length=1000)


class QuestionIn(Strict):
    id: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9_-]+$")
    label: str = Field(min_length=1, max_length=500)
    kind: domain.QuestionKind
    required: bool = False
    options: list[str] = Field(default_factory=list, max_length=50)


class SlotIn(Strict):
    id: UUID | None = None
    starts_at: datetime
    ends_at: datetime
    capacity: int | None = Field(default=None, ge=0, le=100_000)

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _berlin(cls, v: datetime) -> datetime:
        return domain.within_years(domain.as_berlin(v))


class MeetingIn(Strict):
    """A meeting as staff write it; times without an offset are Europe/Berlin wall-clock times."""

    title: Annotated[str, Field(min_length=1, max_length=200), Visible]
    description: str = Field(default="", max_length=20_000)
    venue: VenueIn | None = None
    starts_at: datetime
    ends_at: datetime
    capacity: int | None = Field(default=None, ge=0, le=100_000)
    waitlist: bool = True
    registration_opens_at: datetime | None = None
    registration_closes_at: datetime | None = None
    attestations: list[AttestationIn] = Field(default_factory=list, max_length=10)
    questions: list[QuestionIn] = Field(default_factory=list, max_length=50)
    max_companions: int = Field(default=0, ge=0, le=20)
    min_age: int | None = Field(default=None, ge=0, le=120)
    max_age: int | None = Field(default=None, ge=0, le=120)
    guardian_consent: bool = False
    slots: list[SlotIn] = Field(default_factory=list, max_length=500)
    reminder_offsets_hours: list[int] = Field(default_factory=lambda: [72, 24], max_length=10)
    process_id: UUID | None = None

    @field_validator("starts_at", "ends_at", "registration_opens_at", "registration_closes_at")
    @classmethod
    def _berlin(cls, v: datetime | None) -> datetime | None:
        return domain.within_years(domain.as_berlin(v)) if v is not None else None

    @field_validator("reminder_offsets_hours")
    @classmethod
    def _offsets(cls, v: list[int]) -> list[int]:
        if any(h <= 0 or h > 24 * 60 for h in v):
            raise ValueError("offsets are hours between 1 and 1440")
        return v

    def rule_errors(self) -> list[domain.FieldError]:
        """Rules spanning several fields, each reported at the field that breaks it."""
        errors: list[domain.FieldError] = []
        if self.ends_at <= self.starts_at:
            errors.append(domain.FieldError("/ends_at", "must be after starts_at", "order"))
        if (
            self.registration_opens_at
            and self.registration_closes_at
            and self.registration_closes_at <= self.registration_opens_at
        ):
            errors.append(domain.FieldError("/registration_closes_at", "must be after registration_opens_at", "order"))
        if self.registration_closes_at and self.registration_closes_at > self.ends_at:
            errors.append(domain.FieldError("/registration_closes_at", "must not be after the meeting ends", "order"))
        if self.min_age is not None and self.max_age is not None and self.max_age < self.min_age:
            errors.append(domain.FieldError("/max_age", "must not be below min_age", "order"))
        if self.slots and self.capacity is not None:
            errors.append(
                domain.FieldError("/capacity", "a meeting with time slots has capacities per slot", "unexpected")
            )
        for i, s in enumerate(self.slots):
            if s.ends_at <= s.starts_at:
                errors.append(domain.FieldError(f"/slots/{i}/ends_at", "must be after starts_at", "order"))
            if s.starts_at < self.starts_at or s.ends_at > self.ends_at:
                errors.append(domain.FieldError(f"/slots/{i}", "must lie within the meeting", "range"))
        ids = [a.id for a in self.attestations]
        if len(set(ids)) != len(ids):
            errors.append(domain.FieldError("/attestations", "attestation ids must be unique", "duplicate"))
        errors += domain.check_questions(
            [domain.Question(q.id, q.label, q.kind, q.required, tuple(q.options)) for q in self.questions]
        )
        return errors


class MeetingPatch(BaseModel):
    """Any subset of a meeting's fields; the result must again be a valid meeting."""

    model_config = ConfigDict(extra="forbid")

    title: Any = None
    description: Any = None
    venue: Any = None
    starts_at: Any = None
    ends_at: Any = None
    capacity: Any = None
    waitlist: Any = None
    registration_opens_at: Any = None
    registration_closes_at: Any = None
    attestations: Any = None
    questions: Any = None
    max_companions: Any = None
    min_age: Any = None
    max_age: Any = None
    guardian_consent: Any = None
    slots: Any = None
    reminder_offsets_hours: Any = None
    process_id: Any = None


class CancelIn(Strict):
    reason: str | None = Field(default=None, max_length=1000)


class RegistrationIn(Strict):
    name: Annotated[str, Field(min_length=1, max_length=200), Visible]
    email: Email | None = None
    phone: str | None = Field(default=None, max_length=40)
    privacy_consent: bool
    companions: int = Field(default=0, ge=0, le=20)
    answers: dict[str, Any] = Field(default_factory=dict)
    attestations: list[str] = Field(default_factory=list, max_length=10)
    slot_id: UUID | None = None
    age: int | None = Field(default=None, ge=0, le=120)
    guardian_consent: bool = False
    locale: Literal["de", "en"] = "de"
    #: What the person needs to take part (interpreter, wheelchair access ...); shown to staff, erased with the rest.
    accessibility_needs: str | None = Field(default=None, max_length=1000)


class StaffRegistrationIn(RegistrationIn):
    channel: Literal["phone", "email", "in_person"]
    #: Staff may take a registration that came in by post or phone after the online window closed.
    ignore_window: bool = False


class CheckinIn(Strict):
    """A scanned or typed ticket, or (found by name at the door) the registration's id; one of the two."""

    ticket: str | None = Field(default=None, min_length=1, max_length=400)
    registration_id: UUID | None = None
    nonce: str = Field(min_length=8, max_length=100)

    @model_validator(mode="after")
    def _one(self) -> CheckinIn:
        if (self.ticket is None) == (self.registration_id is None):
            raise ValueError("give either ticket or registration_id")
        return self


class ErasureIn(Strict):
    email: Email | None = None
    phone: str | None = Field(default=None, max_length=40)


# --- answers (documentation only: the routes build these bodies themselves; the API test checks them) ----------


class VenueOut(BaseModel):
    name: str
    street: str | None = None
    postal_code: str | None = None
    city: str | None = None


class AttestationOut(BaseModel):
    id: str
    text: str


class QuestionOut(BaseModel):
    id: str
    label: str
    kind: domain.QuestionKind
    required: bool
    options: list[str]


class SlotOut(BaseModel):
    id: UUID
    starts_at: datetime
    ends_at: datetime
    capacity: int | None
    seats_left: int | None


class MeetingOut(BaseModel):
    """A meeting as everybody sees it; staff also see the counters, reminder offsets and the ticket key."""

    id: UUID
    tenant: str
    status: Literal["draft", "published", "cancelled"]
    title: str
    description: str
    venue: VenueOut | None
    starts_at: datetime
    ends_at: datetime
    timezone: Literal["Europe/Berlin"]
    capacity: int | None = Field(description="seats in all (a series of slots: their sum); null: unlimited")
    seats_left: int | None
    waitlist: bool
    registration_opens_at: datetime | None
    registration_closes_at: datetime
    attestations: list[AttestationOut]
    questions: list[QuestionOut]
    max_companions: int
    min_age: int | None
    max_age: int | None
    guardian_consent: bool
    slots: list[SlotOut]
    process_id: UUID | None
    cancel_reason: str | None
    confirmed_seats: int | None = Field(default=None, description="staff only")
    waitlisted: int | None = Field(default=None, description="staff only")
    reminder_offsets_hours: list[int] | None = Field(default=None, description="staff only")
    public_key: str | None = Field(default=None, description="staff only: Ed25519 key verifying tickets, hex")


class MeetingSummaryOut(BaseModel):
    id: UUID
    title: str
    starts_at: datetime
    ends_at: datetime
    venue: VenueOut | None
    status: Literal["draft", "published", "cancelled"]


class RegistrationOut(BaseModel):
    id: UUID
    meeting_id: UUID
    slot_id: UUID | None
    status: Literal["confirmed", "waitlisted", "cancelled"]
    position: int | None = Field(description="place on the waiting list")
    seats: int
    companions: int
    channel: Literal["online", "phone", "email", "in_person"]
    name: str | None
    email: str | None
    phone: str | None
    locale: str
    answers: dict[str, Any] | None
    attestations: list[str] | None
    ticket_code: str | None = Field(description="the ticket, while confirmed")
    manage_url: str | None
    created_at: datetime
    confirmed_at: datetime | None
    cancelled_at: datetime | None
    cancelled_by: str | None
    secret: str | None = Field(default=None, description="only in the answer to registering: the manage link's key")
    checked_in_at: datetime | None = Field(
        default=None, description="staff listings and a single registration for staff: when it was checked in"
    )
    meeting: MeetingSummaryOut | None = Field(default=None, description="only when read by its secret")


class CheckinOut(BaseModel):
    status: Literal["checked_in"]
    registration_id: UUID
    repeat: bool = Field(description="the same scan again (same nonce), answered as before")
    checked_in_at: datetime
    name: str | None = None
    companions: int | None = None


class RevokedOut(BaseModel):
    meeting_id: UUID
    public_key: str
    revoked: list[UUID]


class AttendanceOut(BaseModel):
    meeting_id: UUID
    capacity: int | None
    seats_left: int | None
    confirmed: int
    confirmed_seats: int
    waitlisted: int
    cancelled: int
    checked_in: int
    checked_in_seats: int
    no_shows: int | None = Field(description="confirmed but not checked in; null until the meeting starts")
    attendance_rate: float | None = Field(description="checked in of confirmed; null until the meeting starts")


class DoorHitOut(BaseModel):
    """A registration found by name at the door: no contact, no ticket."""

    registration_id: UUID
    name: str
    status: Literal["confirmed", "waitlisted", "cancelled"]
    companions: int
    checked_in_at: datetime | None


class CallbackOut(BaseModel):
    """A call to make (or made) to a person nobody can mail."""

    id: UUID
    meeting_id: UUID
    registration_id: UUID
    reason: Literal["promoted", "meeting_changed", "meeting_cancelled"]
    created_at: datetime
    done_at: datetime | None
    done_by: str | None = Field(description="the staff person (their subject) who marked it done")
    name: str | None
    phone: str | None
    registration_status: Literal["confirmed", "waitlisted", "cancelled"]
    meeting_title: str
    meeting_starts_at: datetime
    meeting_status: Literal["draft", "published", "cancelled"]


class ErasureOut(BaseModel):
    erasure_id: UUID | None
    registration_ids: list[UUID]


class DataExportOut(BaseModel):
    """Where a person's data export (GDPR Art. 15) stands; the ZIP is ready once ``state`` is complete."""

    export_id: UUID
    state: Literal["pending", "complete"]
    waiting_for: list[str] = Field(description="the services that have not answered yet")
    requested_at: datetime | None = None
    completed_at: datetime | None = None
    expires_at: datetime | None = None
