"""The console's content forms as page logic: forms to the content API's bodies (German texts, English kept),
the page's own checks, the API's problems in German at the form's fields, and the scan chart's numbers."""

from __future__ import annotations

from datetime import date

from web.client import ApiProblem
from web.console import content_form as cf


def form(**fields: str) -> dict[str, list[str]]:
    return {k: [v] for k, v in fields.items()}


def test_a_phase_form_becomes_the_api_body_with_german_texts() -> None:
    phases = cf.PARTS["phasen"].fields
    r = cf.read(phases, form(title=" Planung ", starts_on="2026-01-01", ends_on="", description="Erst *planen*."), "de")
    assert not r.errors
    assert r.body == {
        "title": {"de": "Planung"},
        "starts_on": "2026-01-01",
        "ends_on": None,
        "description": {"de": "Erst *planen*."},
    }
    assert cf.present(r.body) == {k: v for k, v in r.body.items() if k != "ends_on"}


def test_the_page_checks_required_fields_dates_numbers_and_order() -> None:
    r = cf.read(cf.PARTS["phasen"].fields, form(title="", starts_on="1.1.2026", ends_on=""), "de")
    assert [f.name for f in r.errors.fields] == ["title", "starts_on"]
    assert r.errors.of("starts_on") == "Bitte geben Sie Beginn als Datum an."
    backwards = cf.read(cf.PARTS["phasen"].fields, form(title="A", starts_on="2026-03-01", ends_on="2026-02-01"), "de")
    assert backwards.errors.of("ends_on") == "Das Ende darf nicht vor dem Beginn liegen."
    money = cf.read(cf.PARTS["foerderung"].fields, form(label="Land", amount="100.000"), "en")
    assert money.errors.of("amount") == "Please enter Amount in euros as a whole number."
    ref = cf.read(cf.PARTS["verweise"].fields, form(kind="meeting", ref_id="123"), "de")
    assert ref.errors.of("ref_id") is not None and "UUID" in ref.errors.of("ref_id")  # type: ignore[operator]


def test_editing_the_german_keeps_the_english() -> None:
    stored = {"title": {"de": "Alt", "en": "Old"}, "slug": "alt", "motto": None, "summary": None}
    assert cf.values_of(cf.PROCESS_FIELDS, stored) == {"title": "Alt", "slug": "alt", "motto": "", "summary": ""}
    r = cf.read(cf.PROCESS_FIELDS, form(title="Neu", slug="alt", motto="", summary=""), "de", existing=stored)
    assert r.body == {"title": {"en": "Old", "de": "Neu"}, "slug": "alt", "motto": None, "summary": None}


def test_api_problems_land_at_their_fields_in_german() -> None:
    taken = ApiProblem(409, "slug-taken", errors=[{"pointer": "/slug", "code": "unique"}])
    errors = cf.api_errors(taken, cf.PROCESS_FIELDS, "de")
    assert errors.of("slug") == "Dieser Kurzname ist schon vergeben. Bitte wählen Sie einen anderen."
    assert errors.summary == ""
    # A funding fact is added as the list's next item: its pointers belong to the add form's fields.
    funding = ApiProblem(422, "validation", errors=[{"pointer": "/funding/2/label/de", "code": "string_too_short"}])
    assert cf.api_errors(funding, cf.PARTS["foerderung"].fields, "de", item="funding/2").of("label") == (
        "Bitte geben Sie Bezeichnung an."
    )
    elsewhere = ApiProblem(422, "validation", errors=[{"pointer": "/nothing", "code": "missing"}])
    assert cf.api_errors(elsewhere, cf.QR_FIELDS, "de").summary == "Bitte prüfen Sie Ihre Angaben."


def test_the_scan_chart_fills_missing_days_and_scales_to_the_highest() -> None:
    today = date(2026, 12, 1)
    chart = cf.scan_chart([{"day": "2026-11-30", "scans": 2}, {"day": "2026-12-01", "scans": 4}], today, n=7)
    assert chart.days[0].day == date(2026, 11, 25) and chart.days[-1].day == today
    assert [b.scans for b in chart.days] == [0, 0, 0, 0, 0, 2, 4]
    assert chart.total == 6 and chart.peak == 4 and chart.peak_day == today
    assert chart.days[-1].height == 2 * chart.days[-2].height and chart.days[-1].y + chart.days[-1].height == 140
    empty = cf.scan_chart([], today)
    assert len(empty.days) == 30 and empty.peak == 0 and empty.peak_day is None
    assert all(b.height == 0 for b in empty.days)
    # A day outside the window (older than shown) is not counted.
    assert cf.scan_chart([{"day": "2026-01-01", "scans": 9}], today).total == 0


def test_short_link_codes_in_paths() -> None:
    from starlette.exceptions import HTTPException

    from web.console import content

    assert content._code("e9xwegcj") == "e9xwegcj" and content._code("didi-umfrage") == "didi-umfrage"
    for bad in ("../x", "a b", "x" * 33, ""):
        try:
            content._code(bad)
        except HTTPException as exc:
            assert exc.status_code == 404
        else:
            raise AssertionError(bad)
