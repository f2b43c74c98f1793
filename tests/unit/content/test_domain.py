"""Pure rules: phases by date in Europe/Berlin, languages, obfuscation, live states, ETags, QR reporting."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.content import domain
from services.content.domain import MeetingLive, PhaseSpan

STRATEGY = PhaseSpan("strategy", date(2021, 10, 1), date(2022, 9, 30))
IMPLEMENTATION = PhaseSpan("implementation", date(2022, 10, 1), None)


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2021, 9, 30), None),
        (date(2021, 10, 1), "strategy"),
        (date(2022, 9, 30), "strategy"),
        (date(2022, 10, 1), "implementation"),
        (date(2030, 1, 1), "implementation"),
    ],
)
def test_current_phase_follows_the_date_with_both_ends_included(today: date, expected: str | None) -> None:
    found = domain.current_phase([IMPLEMENTATION, STRATEGY], today)
    assert (found.id if found else None) == expected


def test_overlapping_phases_yield_the_one_started_last() -> None:
    a = PhaseSpan("a", date(2024, 1, 1), date(2024, 12, 31))
    b = PhaseSpan("b", date(2024, 6, 1), date(2024, 7, 1))
    assert domain.current_phase([b, a], date(2024, 6, 15)) == b
    assert domain.current_phase([b, a], date(2024, 7, 2)) == a


def test_today_is_the_berlin_date_not_the_utc_date() -> None:
    # 22:30 UTC on 30 September 2022 is already 1 October in Berlin (summer time, UTC+2).
    now = datetime(2022, 9, 30, 22, 30, tzinfo=UTC)
    assert domain.berlin_today(now) == date(2022, 10, 1)
    assert domain.current_phase([STRATEGY, IMPLEMENTATION], domain.berlin_today(now)) == IMPLEMENTATION
    # In winter Berlin is UTC+1: 23:30 UTC on 31 December is New Year's day there.
    assert domain.berlin_today(datetime(2021, 12, 31, 23, 30, tzinfo=UTC)) == date(2022, 1, 1)
    assert domain.berlin_today(datetime(2021, 12, 31, 22, 59, tzinfo=UTC)) == date(2021, 12, 31)
    with pytest.raises(ValueError):
        domain.berlin_today(datetime(2022, 1, 1))


def test_a_page_is_valid_until_the_next_boundary_midnight_in_berlin_or_the_longest_wait() -> None:
    now = datetime(2022, 9, 30, 20, 0, tzinfo=UTC)  # 22:00 in Berlin: the next day begins at 22:00 UTC
    midnight = datetime(2022, 9, 30, 22, 0, tzinfo=UTC)
    assert domain.next_berlin_midnight(now) == midnight
    assert domain.next_berlin_midnight(datetime(2021, 12, 31, 22, 59, tzinfo=UTC)) == datetime(
        2021, 12, 31, 23, 0, tzinfo=UTC
    )
    day = timedelta(days=1)
    assert domain.page_valid_until(now, [], day) == midnight
    soon = now + timedelta(minutes=5)
    # Passed boundaries do not count, nor one exactly now: the page built now shows it passed already.
    assert domain.page_valid_until(now, [now - day, now, soon, now + day], day) == soon
    assert domain.page_valid_until(now, [soon], timedelta(minutes=1)) == now + timedelta(minutes=1)


def test_text_falls_back_to_german() -> None:
    assert domain.localized({"de": "Schritt", "en": "Step"}, "en") == "Step"
    assert domain.localized({"de": "Schritt"}, "en") == "Schritt"
    assert domain.localized({"de": "Schritt", "en": ""}, "en") == "Schritt"
    assert domain.localized(None, "en") is None


@pytest.mark.parametrize(
    ("email", "public"),
    [
        ("digital@example.org", "digital [at] example [dot] org"),
        ("s.beispiel@stadt.example.org", "s.beispiel [at] stadt [dot] example [dot] org"),
        (None, None),
    ],
)
def test_email_is_obfuscated(email: str | None, public: str | None) -> None:
    out = domain.obfuscate_email(email)
    assert out == public
    if out:
        assert "@" not in out


def test_steps_sort_numerically() -> None:
    numbers = ["1.10", "2", "1.2", "1.3.1", "1.1"]
    assert sorted(numbers, key=domain.step_sort_key) == ["1.1", "1.2", "1.3.1", "1.10", "2"]
    assert not domain.valid_step_number("1.")
    assert domain.valid_step_number("1.3.5")


NOW = datetime(2021, 10, 20, 12, tzinfo=UTC)
STARTS = datetime(2021, 10, 28, 16, tzinfo=UTC)


@pytest.mark.parametrize(
    ("meeting", "status"),
    [
        (MeetingLive(known=False), "unknown"),
        (MeetingLive(known=True, starts_at=STARTS, seats_left=10), "open"),
        (MeetingLive(known=True, starts_at=STARTS, seats_left=10, cancelled=True), "cancelled"),
        (MeetingLive(known=True, starts_at=STARTS, seats_left=0, waitlist=True), "waitlist"),
        (MeetingLive(known=True, starts_at=STARTS, seats_left=0, waitlist=False), "full"),
        (MeetingLive(known=True, starts_at=STARTS, opens_at=NOW + timedelta(days=1)), "not_yet_open"),
        (MeetingLive(known=True, starts_at=STARTS, closes_at=NOW), "closed"),
        (MeetingLive(known=True, starts_at=NOW - timedelta(hours=1)), "closed"),
        (MeetingLive(known=True, starts_at=STARTS, closes_at=NOW + timedelta(seconds=1)), "open"),
    ],
)
def test_registration_status_from_window_and_clock(meeting: MeetingLive, status: str) -> None:
    assert domain.registration_status(meeting, NOW) == status


def test_survey_status() -> None:
    opens, closes = NOW - timedelta(days=1), NOW + timedelta(days=1)
    assert domain.survey_status(True, opens, closes, None, NOW) == "open"
    assert domain.survey_status(True, opens, closes, None, closes) == "closed"
    assert domain.survey_status(True, opens, closes, NOW - timedelta(seconds=1), NOW) == "closed"
    assert domain.survey_status(True, NOW + timedelta(hours=1), closes, None, NOW) == "upcoming"
    assert domain.survey_status(False, None, None, None, NOW) == "unknown"


def test_etag_matching() -> None:
    tag = domain.etag_of(b"body")
    assert tag != domain.etag_of(b"body2")
    assert domain.etag_matches(tag, tag)
    assert domain.etag_matches(f'"x", W/{tag}', tag)
    assert domain.etag_matches("*", tag)
    assert not domain.etag_matches('"other"', tag)
    assert not domain.etag_matches(None, tag)


def test_qr_reports_at_most_once_a_minute_and_only_with_new_scans() -> None:
    assert domain.qr_report_due(1, 0, None, NOW)
    assert not domain.qr_report_due(5, 5, None, NOW)
    assert not domain.qr_report_due(6, 5, NOW - timedelta(seconds=59), NOW)
    assert domain.qr_report_due(6, 5, NOW - timedelta(seconds=60), NOW)
