"""The door page's own logic: the service's answers and refusals as door results, which meetings the door
offers, and codes as scanners type them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from web.client import ApiProblem
from web.console.checkin import door_meetings, normalised, scan_of_answer, scan_of_problem


def refusal(reason: str, status: int = 409, **extra: Any) -> ApiProblem:
    body = {"type": f"checkin-{reason.replace('_', '-')}", "title": "Check-in refused", "reason": reason, **extra}
    return ApiProblem(status=status, type=body["type"], title=body["title"], body=body)


def test_admitted_and_the_same_nonce_again() -> None:
    at = "2026-12-01T17:04:00+00:00"
    first = scan_of_answer(
        {"status": "checked_in", "repeat": False, "checked_in_at": at, "name": "Kim", "companions": 2}, "C"
    )
    assert (first.outcome, first.name, first.companions, first.repeat) == ("admitted", "Kim", 2, False)
    assert first.at == datetime(2026, 12, 1, 17, 4, tzinfo=UTC)
    repeat = scan_of_answer({"status": "checked_in", "repeat": True, "checked_in_at": at}, "C")
    assert (repeat.outcome, repeat.name, repeat.companions, repeat.repeat) == ("admitted", None, 0, True)


def test_refusals() -> None:
    already = scan_of_problem(refusal("already_checked_in", checked_in_at="2026-12-01T17:04:00+00:00"), "C")
    assert already.outcome == "already" and already.at == datetime(2026, 12, 1, 17, 4, tzinfo=UTC)
    assert scan_of_problem(refusal("already_checked_in", checked_in_at=None), "C").at is None
    assert scan_of_problem(refusal("revoked"), "C").outcome == "cancelled"
    named = scan_of_problem(refusal("revoked", registration_id=str(uuid4()), name="Kim", companions=1), "C")
    assert (named.name, named.companions) == ("Kim", 1), "the service names whom it refuses"
    other = uuid4()
    wrong = scan_of_problem(refusal("wrong_meeting", ticket_meeting_id=str(other)), "C")
    assert wrong.outcome == "other_meeting" and wrong.other_meeting_id == other
    assert scan_of_problem(refusal("wrong_meeting"), "C").other_meeting_id is None
    day = scan_of_problem(refusal("invalid_time", valid_on="2026-12-02"), "C")
    assert day.outcome == "wrong_day" and day.valid_on == date(2026, 12, 2)
    for reason in ("invalid_signature", "unknown", "something_new"):
        assert scan_of_problem(refusal(reason), "C").outcome == "unknown"
    assert scan_of_problem(ApiProblem(status=422, type="validation"), "C").outcome == "unknown"


def test_other_problems_are_not_door_results() -> None:
    # A missing meeting or a refused token is the page's error, not "unknown code".
    for status in (403, 404):
        with pytest.raises(ApiProblem):
            scan_of_problem(ApiProblem(status=status), "C")


def test_door_offers_todays_then_the_next_fortnight() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # 13:00 in Berlin

    def m(title: str, starts: timedelta, hours: int = 2, status: str = "published") -> dict[str, Any]:
        s = now + starts
        return {
            "title": title,
            "status": status,
            "starts_at": s.isoformat(),
            "ends_at": (s + timedelta(hours=hours)).isoformat(),
        }

    meetings = [
        m("gestern", timedelta(days=-1)),
        m("heute früh, vorbei", timedelta(hours=-5)),
        m("läuft", timedelta(hours=-1)),
        m("heute abend", timedelta(hours=6)),
        m("seit gestern, mehrtägig", timedelta(days=-1), hours=48),
        m("morgen", timedelta(days=1)),
        m("in drei Wochen", timedelta(days=21)),
        m("abgesagt", timedelta(hours=2), status="cancelled"),
    ]
    todays, later = door_meetings(meetings, now)
    assert [x["title"] for x in todays] == ["seit gestern, mehrtägig", "heute früh, vorbei", "läuft", "heute abend"]
    assert [x["title"] for x in later] == ["morgen"]


def test_codes_as_scanners_type_them() -> None:
    assert normalised("  ABCD EFGH\t\n") == "ABCDEFGH"
    assert normalised("") == ""
