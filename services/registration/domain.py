"""The rules of registration, free of HTTP and SQL: meetings, seats, waiting list, windows, contacts, answers.

Everything here is a pure function over plain values (or an entity holding them) so the rules can be tested
without a server. Refusals are ``shared.errors`` exceptions; shared/http maps them to problem documents.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

import phonenumbers

from shared.errors import Conflict, FieldProblem, Invalid, Unavailable

BERLIN = ZoneInfo("Europe/Berlin")

Status = Literal["confirmed", "waitlisted", "refused"]


#: One bad field of a request (a JSON pointer, what is wrong, a stable code).
FieldError = FieldProblem


def invalid(errors: list[FieldError]) -> Invalid:
    return Invalid("validation", detail="Some fields are missing or invalid.", fields=errors)


class Busy(Unavailable):
    """The meeting's lock was not had within the lock timeout: too many registrations at once."""

    def __init__(self) -> None:
        super().__init__("busy", "Busy", detail="too many registrations at once; try again")


# --- seats -------------------------------------------------------------------------------------------------------


def seats_left(capacity: int | None, confirmed_seats: int) -> int | None:
    """Free seats; ``None`` means unlimited."""
    if capacity is None:
        return None
    return max(capacity - confirmed_seats, 0)


def allocate(capacity: int | None, confirmed_seats: int, requested: int, *, waitlist: bool) -> Status:
    """Where a new registration of ``requested`` seats (the person plus companions) goes.

    The model of the seat rule, not the code that runs: the rule runs in SQL (``decide_seats`` in
    migrations/001_init.sql), under the meeting's lock, for a whole batch of registrations in one round trip,
    which a rush needs. Deciding here instead would take a round trip per registration while the lock is held.
    tests/integration/registration/test_seat_properties.py replays every decision PostgreSQL made through this
    function and requires the same answers, so the two cannot drift apart unnoticed.
    """
    if requested < 1:
        raise ValueError("a registration needs at least one seat")
    left = seats_left(capacity, confirmed_seats)
    if left is None or requested <= left:
        return "confirmed"
    return "waitlisted" if waitlist else "refused"


@dataclass(frozen=True)
class Waiting:
    registration_id: Any
    seats: int


def promotable(capacity: int | None, confirmed_seats: int, waiting: Sequence[Waiting]) -> list[Any]:
    """Registrations to promote, first in first out, while seats remain.

    Strict FIFO: the head of the list is never skipped for a smaller group behind it, so nobody overtakes
    someone who waited longer (a group of four waits for four free seats).
    """
    out: list[Any] = []
    left = seats_left(capacity, confirmed_seats)
    for w in waiting:
        if left is not None and w.seats > left:
            break
        out.append(w.registration_id)
        if left is not None:
            left -= w.seats
    return out


def may_promote(capacity: int | None, confirmed_seats: int, seats: int) -> bool:
    """Staff may move a waiting registration up by hand (whatever its place) only into seats that are free."""
    left = seats_left(capacity, confirmed_seats)
    return left is None or seats <= left


# --- the call-back list ------------------------------------------------------------------------------------------

CallbackReason = Literal["promoted", "meeting_changed", "meeting_cancelled"]


def needs_call(reg: Mapping[str, Any]) -> bool:
    """Nobody can mail a person without an e-mail address (registered by phone, or in person): staff call them
    when their registration changes by itself (promoted, the meeting moved or cancelled)."""
    return not reg.get("email") and bool(reg.get("phone"))


def changed_for_attendees(before: Meeting, after: Meeting) -> set[UUID | None]:
    """The seat pools whose people must hear of an edit: all (``None`` in the set) when the meeting's time or
    place changed, else the slots whose times changed. Other edits (a description, the seats) concern nobody's
    plans."""
    if (before.starts_at, before.ends_at, before.venue) != (after.starts_at, after.ends_at, after.venue):
        return {None}
    old = {s.id: (s.starts_at, s.ends_at) for s in before.slots}
    return {s.id for s in after.slots if s.id in old and old[s.id] != (s.starts_at, s.ends_at)}


# --- registration window -----------------------------------------------------------------------------------------

WindowState = Literal["open", "not_yet_open", "closed"]


def window_state(now: datetime, opens_at: datetime | None, closes_at: datetime | None) -> WindowState:
    if opens_at is not None and now < opens_at:
        return "not_yet_open"
    if closes_at is not None and now >= closes_at:
        return "closed"
    return "open"


def default_closes_at(starts_at: datetime, closes_at: datetime | None) -> datetime:
    """Without an explicit end, registration closes when the meeting starts (as Decidim does)."""
    return closes_at if closes_at is not None else starts_at


# --- contacts ----------------------------------------------------------------------------------------------------


class InvalidPhone(ValueError):
    pass


def normalise_phone(raw: str, region: str = "DE") -> str:
    """E.164 for a number as people write it (``0481/97-3501``, ``+49 481 973501``)."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(str(exc)) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(raw: str) -> str:
    """Case-insensitive comparison key of an address (the local part is treated case-insensitively, as
    practically every mail system does)."""
    return raw.strip().lower()


def contact_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# --- questions and answers ---------------------------------------------------------------------------------------

QuestionKind = Literal["text", "yes_no", "single", "multiple"]


@dataclass(frozen=True)
class Question:
    id: str
    label: str
    kind: QuestionKind
    required: bool = False
    options: tuple[str, ...] = ()


def check_questions(questions: Sequence[Question]) -> list[FieldError]:
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, q in enumerate(questions):
        if q.id in seen:
            errors.append(FieldError(f"/questions/{i}/id", "question ids must be unique", "duplicate"))
        seen.add(q.id)
        if q.kind in ("single", "multiple") and len(q.options) < 2:
            errors.append(FieldError(f"/questions/{i}/options", "a choice needs at least two options", "too_short"))
        if q.kind in ("text", "yes_no") and q.options:
            errors.append(FieldError(f"/questions/{i}/options", f"a {q.kind} question has no options", "unexpected"))
        if len(set(q.options)) != len(q.options):
            errors.append(FieldError(f"/questions/{i}/options", "options must be unique", "duplicate"))
    return errors


def check_answers(questions: Sequence[Question], answers: Mapping[str, Any]) -> list[FieldError]:
    """Every required question answered, every answer of the right shape, no answers to unknown questions."""
    errors: list[FieldError] = []
    known = {q.id: q for q in questions}
    for key in answers:
        if key not in known:
            errors.append(FieldError(f"/answers/{key}", "no such question", "unknown"))
    for q in questions:
        where = f"/answers/{q.id}"
        value = answers.get(q.id)
        empty = value is None or value == "" or value == []
        if empty:
            if q.required:
                errors.append(FieldError(where, "this question must be answered", "missing"))
            continue
        if q.kind == "text":
            if not isinstance(value, str) or len(value) > 2000:
                errors.append(FieldError(where, "expected text of at most 2000 characters", "type"))
        elif q.kind == "yes_no":
            if not isinstance(value, bool):
                errors.append(FieldError(where, "expected true or false", "type"))
        elif q.kind == "single":
            if not isinstance(value, str) or value not in q.options:
                errors.append(FieldError(where, f"expected one of {list(q.options)}", "choice"))
        elif q.kind == "multiple" and (
            not isinstance(value, list)
            or not all(isinstance(v, str) and v in q.options for v in value)
            or len(set(value)) != len(value)
        ):
            errors.append(FieldError(where, f"expected distinct values from {list(q.options)}", "choice"))
    return errors


# --- age band ----------------------------------------------------------------------------------------------------


def check_age(
    age: int | None, min_age: int | None, max_age: int | None, guardian_required: bool, guardian_consent: bool
) -> list[FieldError]:
    errors: list[FieldError] = []
    if min_age is not None or max_age is not None:
        if age is None:
            errors.append(FieldError("/age", "this meeting is for an age band; state the age", "missing"))
        elif (min_age is not None and age < min_age) or (max_age is not None and age > max_age):
            errors.append(FieldError("/age", f"this meeting is for ages {min_age} to {max_age}", "out_of_range"))
    if guardian_required and not guardian_consent and (age is None or age < 18):
        errors.append(FieldError("/guardian_consent", "a guardian's consent is required", "missing"))
    return errors


# --- days --------------------------------------------------------------------------------------------------------


def local_day(at: datetime) -> date:
    return at.astimezone(BERLIN).date()


def days_of(starts_at: datetime, ends_at: datetime) -> tuple[date, date]:
    """First and last local day a meeting (or slot) covers; a meeting ending at midnight ends the day before."""
    last = (ends_at - timedelta(microseconds=1)).astimezone(BERLIN).date()
    first = local_day(starts_at)
    return first, max(first, last)


#: The years a meeting's times may lie in. Tickets carry the meeting's day as days since 1970 in 16 bits (until
#: 2149), so a meeting in the year 378 once passed validation and failed signing its tickets with a 500.
YEARS = (2000, 2100)


def within_years(value: datetime) -> datetime:
    if not YEARS[0] <= value.year <= YEARS[1]:
        raise ValueError(f"must lie in the years {YEARS[0]} to {YEARS[1]}")
    return value


def as_berlin(value: datetime) -> datetime:
    """Naive times from staff forms are Berlin wall-clock time."""
    return value.replace(tzinfo=BERLIN) if value.tzinfo is None else value


# --- meetings ----------------------------------------------------------------------------------------------------


@dataclass
class Slot:
    id: UUID
    starts_at: datetime
    ends_at: datetime
    capacity: int | None


@dataclass
class Meeting:
    id: UUID
    tenant: str
    status: str
    title: str
    description: str
    venue: dict[str, Any] | None
    starts_at: datetime
    ends_at: datetime
    capacity: int | None
    waitlist: bool
    registration_opens_at: datetime | None
    registration_closes_at: datetime | None
    attestations: list[dict[str, str]]
    questions: list[dict[str, Any]]
    max_companions: int
    min_age: int | None
    max_age: int | None
    guardian_consent: bool
    reminder_offsets: list[int]
    process_id: UUID | None
    signing_key: bytes
    public_key: bytes
    cancel_reason: str | None
    created_at: datetime
    updated_at: datetime
    slots: list[Slot] = field(default_factory=list)

    @property
    def closes_at(self) -> datetime:
        return default_closes_at(self.starts_at, self.registration_closes_at)

    def question_rules(self) -> list[Question]:
        return [
            Question(q["id"], q["label"], q["kind"], bool(q.get("required")), tuple(q.get("options") or ()))
            for q in self.questions
        ]

    def slot(self, slot_id: UUID | None) -> Slot | None:
        return next((s for s in self.slots if s.id == slot_id), None)

    def capacity_of(self, slot_id: UUID | None) -> int | None:
        if slot_id is None:
            return self.capacity
        s = self.slot(slot_id)
        return s.capacity if s else None

    @property
    def total_capacity(self) -> int | None:
        """The meeting's capacity; for a series of slots the sum of theirs (unlimited if any slot is)."""
        if not self.slots:
            return self.capacity
        caps = [s.capacity for s in self.slots]
        return None if any(c is None for c in caps) else sum(c for c in caps if c is not None)

    def pools(self) -> list[UUID | None]:
        """The seat pools of a meeting: each slot, or the meeting itself when it has none."""
        return [s.id for s in self.slots] or [None]


@dataclass(frozen=True)
class Counts:
    confirmed_seats: int
    waitlisted: int


# --- applicants --------------------------------------------------------------------------------------------------

Channel = Literal["online", "email", "phone", "in_person"]
CancelledBy = Literal["citizen", "staff", "meeting_cancelled"]


@dataclass
class Applicant:
    """A registration as submitted; ``contact_checked`` gives it with its contact details normalised."""

    name: str
    email: str | None
    phone: str | None
    privacy_consent: bool
    companions: int = 0
    answers: dict[str, Any] = field(default_factory=dict)
    attestations: list[str] = field(default_factory=list)
    slot_id: UUID | None = None
    age: int | None = None
    guardian_consent: bool = False
    locale: str = "de"
    channel: Channel = "online"
    accessibility_needs: str | None = None


def contact_checked(a: Applicant) -> Applicant:
    """The applicant with e-mail and phone normalised, once the rules every form shares hold (a phone we can
    call, consent to the privacy notice); these are checked before the meeting is looked at."""
    errors: list[FieldError] = []
    phone = None
    if a.phone:
        try:
            phone = normalise_phone(a.phone)
        except InvalidPhone as exc:
            errors.append(FieldError("/phone", f"not a phone number we can call: {exc}", "phone"))
    if not a.privacy_consent:
        errors.append(FieldError("/privacy_consent", "consent to the privacy notice is required", "missing"))
    if errors:
        raise invalid(errors)
    return replace(
        a,
        name=a.name.strip(),
        email=normalise_email(a.email) if a.email else None,
        phone=phone,
        accessibility_needs=(a.accessibility_needs or "").strip() or None,
    )


def check_applicant(meeting: Meeting, a: Applicant) -> list[FieldError]:
    """What a meeting asks of a registration (privacy consent: ``contact_checked``)."""
    errors: list[FieldError] = []
    if not a.email and not a.phone:
        errors.append(FieldError("/email", "give an e-mail address or a phone number", "missing"))
    if a.companions > meeting.max_companions:
        errors.append(FieldError("/companions", f"at most {meeting.max_companions} companions allowed", "too_many"))
    required = {att["id"] for att in meeting.attestations}
    missing = sorted(required - set(a.attestations))
    if missing:
        errors.append(FieldError("/attestations", f"please confirm {missing}", "missing"))
    unknown = sorted(set(a.attestations) - required)
    if unknown:
        errors.append(FieldError("/attestations", f"unknown attestations {unknown}", "unknown"))
    if meeting.slots:
        if a.slot_id is None:
            errors.append(FieldError("/slot_id", "choose a time slot", "missing"))
        elif meeting.slot(a.slot_id) is None:
            errors.append(FieldError("/slot_id", "no such time slot", "unknown"))
    elif a.slot_id is not None:
        errors.append(FieldError("/slot_id", "this meeting has no time slots", "unexpected"))
    errors += check_answers(meeting.question_rules(), a.answers)
    errors += check_age(a.age, meeting.min_age, meeting.max_age, meeting.guardian_consent, a.guardian_consent)
    return errors


def person(email: str | None, phone: str | None) -> tuple[str | None, str | None]:
    """The normalised e-mail address and phone number a staff request names (at least one)."""
    errors: list[FieldError] = []
    normalised = None
    if not email and not phone:
        errors.append(FieldError("/email", "give an e-mail address or a phone number", "missing"))
    if phone:
        try:
            normalised = normalise_phone(phone)
        except InvalidPhone as exc:
            errors.append(FieldError("/phone", str(exc), "phone"))
    if errors:
        raise invalid(errors)
    return (normalise_email(email) if email else None), normalised


def check_window(meeting: Meeting, now: datetime) -> None:
    state = window_state(now, meeting.registration_opens_at, meeting.closes_at)
    if state == "open":
        return
    # Berlin wall-clock times: what the citizen reads on the meeting's page.
    opens_at = meeting.registration_opens_at
    opens = opens_at.astimezone(BERLIN).isoformat() if opens_at else None
    closes = meeting.closes_at.astimezone(BERLIN).isoformat()
    raise Conflict(
        "registration-window",
        "Registration closed" if state == "closed" else "Registration not yet open",
        detail=f"registration is open from {opens or 'publication'} until {closes}",
        window={"opens_at": opens, "closes_at": closes},
        state=state,
    )
