"""The rules of registration as pure functions."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.registration import domain
from services.registration.domain import Question, Waiting


def test_allocate_confirms_while_seats_remain_counting_companions() -> None:
    assert domain.allocate(10, 7, 3, waitlist=True) == "confirmed"
    assert domain.allocate(10, 8, 3, waitlist=True) == "waitlisted"
    assert domain.allocate(10, 8, 3, waitlist=False) == "refused"
    assert domain.allocate(None, 10_000, 5, waitlist=False) == "confirmed"
    assert domain.allocate(0, 0, 1, waitlist=True) == "waitlisted"
    with pytest.raises(ValueError):
        domain.allocate(10, 0, 0, waitlist=True)


def test_seats_left_never_negative_and_none_means_unlimited() -> None:
    assert domain.seats_left(10, 4) == 6
    assert domain.seats_left(3, 5) == 0
    assert domain.seats_left(None, 5) is None


def test_promotion_is_strict_first_in_first_out() -> None:
    waiting = [Waiting("a", 1), Waiting("b", 3), Waiting("c", 1)]
    assert domain.promotable(10, 8, waiting) == ["a"]  # b needs 3, c must not overtake b
    assert domain.promotable(10, 5, waiting) == ["a", "b", "c"]
    assert domain.promotable(10, 10, waiting) == []
    assert domain.promotable(None, 99, waiting) == ["a", "b", "c"]


def test_window() -> None:
    opens = datetime(2021, 10, 5, tzinfo=UTC)
    closes = datetime(2021, 10, 25, 22, tzinfo=UTC)
    assert domain.window_state(datetime(2021, 10, 4, tzinfo=UTC), opens, closes) == "not_yet_open"
    assert domain.window_state(opens, opens, closes) == "open"
    assert domain.window_state(closes, opens, closes) == "closed"
    assert domain.window_state(datetime(2030, 1, 1, tzinfo=UTC), None, None) == "open"
    starts = datetime(2021, 10, 28, 16, tzinfo=UTC)
    assert domain.default_closes_at(starts, None) == starts


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("0481/97-3501", "+49481973501"),
        ("0481 97 3501", "+49481973501"),
        ("+49 (0)481 973501", "+49481973501"),
        ("0049 481 973501", "+49481973501"),
        ("0171 1234567", "+491711234567"),
        ("+43 1 5123456", "+4315123456"),
    ],
)
def test_phone_numbers_become_e164(raw: str, e164: str) -> None:
    assert domain.normalise_phone(raw) == e164


@pytest.mark.parametrize("raw", ["12", "abc", "0481/", "+49 0000"])
def test_invalid_phone_numbers_are_refused(raw: str) -> None:
    with pytest.raises(domain.InvalidPhone):
        domain.normalise_phone(raw)


def test_email_key_and_hash() -> None:
    assert domain.normalise_email("  Person@Example.ORG ") == "person@example.org"
    assert domain.contact_hash("person@example.org") == domain.contact_hash("person@example.org")
    assert len(domain.contact_hash("x")) == 64


QUESTIONS = [
    Question("topic", "Thema", "single", True, ("Bildung", "Mobilität")),
    Question("tags", "Tags", "multiple", False, ("a", "b", "c")),
    Question("note", "Anmerkung", "text"),
    Question("wheelchair", "Rollstuhl?", "yes_no", True),
]


def test_valid_answers_pass() -> None:
    answers = {"topic": "Bildung", "tags": ["a", "c"], "note": "hallo", "wheelchair": False}
    assert domain.check_answers(QUESTIONS, answers) == []
    assert domain.check_answers(QUESTIONS, {"topic": "Mobilität", "wheelchair": True}) == []


def test_each_bad_answer_is_reported_at_its_question() -> None:
    answers = {"topic": "Kochen", "tags": ["a", "a"], "note": 5, "extra": "x"}
    errors = {e.pointer: e.code for e in domain.check_answers(QUESTIONS, answers)}
    assert errors == {
        "/answers/topic": "choice",
        "/answers/tags": "choice",
        "/answers/note": "type",
        "/answers/extra": "unknown",
        "/answers/wheelchair": "missing",
    }


def test_question_definitions_are_checked() -> None:
    qs = [Question("a", "A", "single", options=("x",)), Question("a", "B", "text", options=("y",))]
    assert {e.pointer for e in domain.check_questions(qs)} == {
        "/questions/0/options",
        "/questions/1/id",
        "/questions/1/options",
    }


def test_age_band_and_guardian() -> None:
    assert domain.check_age(12, 10, 17, True, True) == []
    assert [e.pointer for e in domain.check_age(None, 10, 17, False, False)] == ["/age"]
    assert [e.pointer for e in domain.check_age(25, 10, 17, False, False)] == ["/age"]
    assert [e.pointer for e in domain.check_age(12, 10, 17, True, False)] == ["/guardian_consent"]
    assert domain.check_age(30, None, None, True, False) == []


def test_days_are_berlin_days() -> None:
    # 23:30 UTC on 27 Oct is already 28 Oct in Berlin (summer time).
    assert domain.local_day(datetime(2021, 10, 27, 23, 30, tzinfo=UTC)) == date(2021, 10, 28)
    starts, ends = datetime(2021, 10, 28, 16, tzinfo=UTC), datetime(2021, 10, 28, 22, tzinfo=UTC)
    # Ends at midnight Berlin time: the meeting covers one day, not two.
    assert domain.days_of(starts, ends) == (date(2021, 10, 28), date(2021, 10, 28))
    assert domain.days_of(starts, datetime(2021, 10, 30, 8, tzinfo=UTC)) == (date(2021, 10, 28), date(2021, 10, 30))


def test_naive_times_are_berlin_wall_clock() -> None:
    assert domain.as_berlin(datetime(2021, 10, 28, 18)).astimezone(UTC).hour == 16
    assert domain.as_berlin(datetime(2021, 12, 1, 18)).astimezone(UTC).hour == 17
