"""The web client's page logic without HTTP: contrast, link templates, German dates and amounts, problem
translation, reading the registration form, the registration window, phases, CSRF tokens."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shared.links import link, path
from shared.settings import LinkSettings
from web import i18n
from web.client import ApiProblem, forwarded_for
from web.colours import contrast
from web.pages import registration_form as rf
from web.pages.content import phase_marks
from web.problems import form_errors
from web.security import token_for
from web.settings import WebSettings


def test_tenant_colours_below_four_and_a_half_to_one_are_refused() -> None:
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0
    assert round(contrast("#767676", "#ffffff"), 2) == 4.54
    WebSettings(tenants={"a": {"name": "A", "colour": "#767676"}})
    with pytest.raises(ValidationError, match=r"contrast of 4\.48:1"):
        WebSettings(tenants={"a": {"name": "A", "colour": "#777777"}})
    with pytest.raises(ValidationError, match="not a colour"):
        WebSettings(tenants={"a": {"name": "A", "colour": "blue"}})


def test_link_templates_fill_in_encode_and_may_point_elsewhere() -> None:
    links = LinkSettings()
    assert link(links, "https://b.example/", "survey", tenant="kreis-x", slug="umfrage 1") == (
        "https://b.example/umfrage/kreis-x/umfrage%201"
    )
    assert path(links, "manage", secret="a/b") == "/anmeldung/a%2Fb"
    own = LinkSettings(meeting="https://termine.kreis.example/{tenant}/{meeting_id}")
    assert link(own, "https://b.example", "meeting", tenant="k", meeting_id="m") == "https://termine.kreis.example/k/m"
    with pytest.raises(ValidationError, match="exactly"):
        LinkSettings(survey="/umfrage/{slug}")
    with pytest.raises(ValidationError, match="starting with /"):
        LinkSettings(process="verfahren/{tenant}/{slug}")


def test_dates_in_berlin_with_weekday_and_amounts() -> None:
    summer = datetime(2026, 7, 1, 16, 0, tzinfo=UTC)
    winter = datetime(2026, 12, 15, 17, 0, tzinfo=UTC)
    assert i18n.when(summer, "de") == "Mittwoch, 1. Juli 2026, 18:00 Uhr"
    assert i18n.when(winter, "de") == "Dienstag, 15. Dezember 2026, 18:00 Uhr"
    assert i18n.when(winter.isoformat(), "en") == "Tuesday, 15 December 2026, 18:00"
    assert i18n.day("2026-12-15", "de") == "Dienstag, 15. Dezember 2026"
    assert i18n.money(1_250_000, "EUR", "de") == "1.250.000 €"
    assert i18n.money(1_250_000, "EUR", "en") == "€1,250,000"
    assert i18n.pick("en", "de") == "en" and i18n.pick(None, "en") == "en" and i18n.pick("fr", None) == "de"


def test_problems_become_german_messages_at_their_fields() -> None:
    problem = ApiProblem(
        422,
        type="https://civic.example/problems/validation",
        errors=[
            {"pointer": "/answers/diet/0", "code": "choice"},
            {"pointer": "/email", "code": "value_error"},
            {"pointer": "/name", "code": "missing"},
            {"pointer": "/unknown_field", "code": "missing"},
            {"pointer": "/phone", "code": "a-code-nobody-knows"},
        ],
    )
    labels = {"name": "Ihren Namen", "email": "E-Mail-Adresse", "phone": "Telefon", "answers.diet": "Essen"}
    errors = form_errors(problem, labels, "de", order=["name", "email", "phone", "answers.diet"])
    assert [(f.name, f.message) for f in errors.fields] == [
        ("name", "Bitte geben Sie Ihren Namen an."),
        ("email", "Bitte geben Sie eine E-Mail-Adresse in der Form name@beispiel.de an."),
        ("phone", "Telefon: Bitte prüfen Sie die Angabe."),
        ("answers.diet", "Essen: Bitte wählen Sie eine der Möglichkeiten."),
    ]
    assert errors.summary == "Bitte prüfen Sie Ihre Angaben."
    full = form_errors(ApiProblem(409, type="https://civic.example/problems/meeting-full"), labels, "en")
    assert full.summary == "The event is fully booked and has no waiting list." and not full.fields


MEETING = {
    "status": "published",
    "starts_at": "2026-12-15T18:00:00+01:00",
    "registration_opens_at": "2026-12-01T00:00:00+01:00",
    "registration_closes_at": "2026-12-12T23:59:00+01:00",
    "seats_left": 3,
    "waitlist": True,
    "max_companions": 2,
    "min_age": 14,
    "max_age": None,
    "guardian_consent": True,
    "slots": [],
    "attestations": [{"id": "3g", "text": "3G-Regel"}],
    "questions": [
        {"id": "essen", "label": "Vegetarisch?", "kind": "yes_no", "required": True},
        {"id": "themen", "label": "Themen", "kind": "multiple", "options": ["a", "b"], "required": False},
    ],
}


def test_registration_window_and_seats() -> None:
    at = datetime.fromisoformat
    assert rf.registration_state(MEETING, at("2026-11-30T12:00:00+01:00")) == "not_yet_open"
    assert rf.registration_state(MEETING, at("2026-12-05T12:00:00+01:00")) == "open"
    assert rf.registration_state({**MEETING, "seats_left": 0}, at("2026-12-05T12:00:00+01:00")) == "waitlist"
    no_list = {**MEETING, "seats_left": 0, "waitlist": False}
    assert rf.registration_state(no_list, at("2026-12-05T12:00:00+01:00")) == "full"
    assert rf.registration_state(MEETING, at("2026-12-13T00:00:00+01:00")) == "closed"
    assert rf.registration_state({**MEETING, "status": "cancelled"}, at("2026-12-05T12:00:00+01:00")) == "cancelled"
    assert rf.registration_state({**MEETING, "seats_left": None}, at("2026-12-05T12:00:00+01:00")) == "open"


def test_the_form_is_read_into_the_api_body() -> None:
    form = {
        "name": [" Kim Beispiel "],
        "email": ["kim@example.org"],
        "companions": ["2"],
        "age": ["15"],
        "guardian_consent": ["on"],
        "answers.essen": ["nein"],
        "answers.themen": ["a", "b"],
        "attestations": ["3g"],
        "accessibility_needs": ["Induktionsschleife"],
        "privacy_consent": ["on"],
    }
    sub = rf.read(form, MEETING, "de")
    assert not sub.errors
    assert sub.body == {
        "name": "Kim Beispiel",
        "email": "kim@example.org",
        "privacy_consent": True,
        "locale": "de",
        "companions": 2,
        "age": 15,
        "guardian_consent": True,
        "answers": {"essen": False, "themen": ["a", "b"]},
        "attestations": ["3g"],
        "accessibility_needs": "Induktionsschleife",
    }
    empty = rf.read({"age": ["zwölf"]}, MEETING, "de")
    assert [f.name for f in empty.errors.fields] == [
        "name",
        "email",
        "age",
        "answers.essen",
        "attestations",
        "privacy_consent",
    ]
    assert empty.errors.of("attestations") == "Bitte bestätigen Sie: 3G-Regel"
    assert empty.values["age"] == "zwölf", "what was entered is shown again"
    assert rf.field_names(MEETING)[-2:] == ["accessibility_needs", "privacy_consent"]
    assert "name@beispiel.de" in str(rf.read({"email": ["falsch"]}, MEETING, "de").errors.of("email"))
    assert rf.read({"email": ["kim@example.org"]}, MEETING, "de").errors.of("email") is None


def test_phases_before_the_current_one_are_done() -> None:
    marks = phase_marks([{"current": False}, {"current": True}, {"current": False}])
    assert [m["state"] for m in marks] == ["done", "current", "planned"]
    assert [m["state"] for m in phase_marks([{"current": False}])] == ["planned"]


def test_csrf_tokens_depend_on_the_secret_and_the_cookie() -> None:
    a = WebSettings(secret="a" * 40)
    b = WebSettings(secret="b" * 40)
    assert token_for(a, "cookie") == token_for(a, "cookie") != token_for(a, "other") != token_for(b, "cookie")
    with pytest.raises(ValidationError, match="CIVIC_WEB_SECRET"):
        WebSettings(production=True)
    assert WebSettings(public_base_url="https://beteiligung.example").cookie_secure is True
    assert WebSettings(public_base_url="http://127.0.0.1:8000").cookie_secure is False


def test_the_citizens_address_is_forwarded_as_a_proxy_does() -> None:
    class Req:
        def __init__(self, prior: str | None) -> None:
            self.headers = {"x-forwarded-for": prior} if prior else {}
            self.client = type("C", (), {"host": "10.0.0.7"})()

    assert forwarded_for(Req(None)) == {"X-Forwarded-For": "10.0.0.7"}  # type: ignore[arg-type]
    assert forwarded_for(Req("203.0.113.9")) == {"X-Forwarded-For": "203.0.113.9, 10.0.0.7"}  # type: ignore[arg-type]
