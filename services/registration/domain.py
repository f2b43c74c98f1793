"""The rules of registration, free of HTTP and SQL: seats, waiting list, windows, contacts, answers.

Everything here is a pure function over plain values so the rules can be tested without a server.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import phonenumbers

BERLIN = ZoneInfo("Europe/Berlin")

Status = Literal["confirmed", "waitlisted", "refused"]


@dataclass(frozen=True)
class FieldError:
    """One bad field of a request, as RFC 9457 ``errors`` entries list them."""

    pointer: str
    detail: str
    code: str = "invalid"

    def as_problem_entry(self) -> dict[str, str]:
        return {"in": "body", "pointer": self.pointer, "detail": self.detail, "code": self.code}


# --- seats -------------------------------------------------------------------------------------------------------


def seats_left(capacity: int | None, confirmed_seats: int) -> int | None:
    """Free seats; ``None`` means unlimited."""
    if capacity is None:
        return None
    return max(capacity - confirmed_seats, 0)


def allocate(capacity: int | None, confirmed_seats: int, requested: int, *, waitlist: bool) -> Status:
    """Where a new registration of ``requested`` seats (the person plus companions) goes."""
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
