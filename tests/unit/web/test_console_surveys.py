"""The console's survey forms and poster layout as pure logic: every question kind read into the surveys API's
shape with the page's own checks, conditions on one earlier question only, and a poster that keeps every line on
the page and inside the margins however long the title and the link are."""

from __future__ import annotations

from typing import Any

import pytest

from web.console import posters
from web.console import survey_form as sf


def form(**fields: Any) -> dict[str, list[str]]:
    return {k: v if isinstance(v, list) else [v] for k, v in fields.items()}


EARLIER = [
    {
        "id": "nutzen",
        "kind": "single_choice",
        "text": "Nutzen Sie?",
        "options": [{"id": "ja", "label": "Ja"}, {"id": "nein", "label": "Nein"}],
    },
    {"id": "konto", "kind": "yes_no", "text": "Konto?"},
    {"id": "frei", "kind": "free_text", "text": "Was noch?"},
]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"kind": "single_choice", "options": "Ja, oft\nNie"},
            {"options": [{"id": "ja-oft", "label": "Ja, oft"}, {"id": "nie", "label": "Nie"}]},
        ),
        ({"kind": "multiple_choice", "options": "A\nB\nC", "max_selections": "2"}, {"max_selections": 2}),
        ({"kind": "free_text", "max_length": "300"}, {"max_length": 300}),
        ({"kind": "scale", "min": "1", "max": "5"}, {"min": 1, "max": 5}),
        ({"kind": "number", "min": "0,5", "max": "10"}, {"min": 0.5, "max": 10, "integer": False}),
        ({"kind": "ranking", "options": "X\nY"}, {"options": [{"id": "x", "label": "X"}, {"id": "y", "label": "Y"}]}),
        ({"kind": "yes_no"}, {"kind": "yes_no"}),
        (
            {"kind": "matrix", "min": "1", "max": "3", "rows": "Web\nTelefon"},
            {"rows": [{"id": "web", "label": "Web"}, {"id": "telefon", "label": "Telefon"}]},
        ),
    ],
)
def test_every_kind_is_read_into_the_api_shape(fields: dict[str, str], expected: dict[str, Any]) -> None:
    read = sf.read_question(form(text="Eine Frage", **fields), "de", taken=[], earlier=[])
    assert not read.errors, read.errors
    q = read.body["question"]
    assert q["id"] == "eine-frage" and q["text"] == "Eine Frage"
    assert {k: q[k] for k in expected} == expected


def test_the_page_refuses_what_the_api_would_with_german_messages() -> None:
    read = sf.read_question(form(text="", kind="scale", min="5", max="1"), "de", taken=[], earlier=[])
    assert read.errors.of("text") == "Bitte geben Sie den Text der Frage an."
    assert "größte Wert" in (read.errors.of("max") or "")
    read = sf.read_question(form(text="Q", kind="multiple_choice", options="A\nA"), "de", taken=[], earlier=[])
    assert read.errors.of("options") == "Jede Antwortmöglichkeit darf nur einmal vorkommen."


def test_a_condition_looks_at_one_earlier_question() -> None:
    choices = sf.condition_choices(EARLIER, "de")
    assert [c["id"] for c in choices] == ["nutzen", "konto"], "free text cannot be a condition"
    read = sf.read_question(form(text="Q", kind="yes_no", condition=["nutzen:ja"]), "de", taken=[], earlier=EARLIER)
    assert read.body["question"]["condition"] == {"question": "nutzen", "any_of": ["ja"]}
    both = sf.read_question(
        form(text="Q", kind="yes_no", condition=["nutzen:ja", "konto:yes"]), "de", taken=[], earlier=EARLIER
    )
    assert both.errors.of("condition") == "Bitte wählen Sie Antworten nur einer Frage."


def test_changing_options_keeps_the_ids_of_those_kept() -> None:
    old = {"id": "q", "kind": "single_choice", "options": [{"id": "alt-a", "label": "A"}, {"id": "b", "label": "B"}]}
    read = sf.read_question(
        form(text="Q", kind="single_choice", options="B\nA\nC"), "de", taken=[], earlier=[], old=old
    )
    assert [o["id"] for o in read.body["question"]["options"]] == ["b", "alt-a", "c"]
    assert read.body["question"]["id"] == "q"


@pytest.mark.parametrize(
    ("title", "url"),
    [
        ("Radwege", "https://beteiligung.example.de/umfrage/kreis/radwege"),
        (
            "Ein sehr langer Titel " * 8,
            "https://beteiligung.kreisverwaltung-nordfriesland.example.de/umfrage/kreis-nordfriesland/" + "x" * 60,
        ),
    ],
)
def test_the_poster_keeps_every_line_on_the_page(title: str, url: str) -> None:
    p = posters.layout(title=title, url=url, closes="Mitmachen bis 1. Januar 2027", kicker="Umfrage", how="Scannen.")
    assert p.qr_edge >= 60 and p.qr_y + p.qr_edge < posters.HEIGHT_MM
    for line in p.lines:
        width = posters._width_mm(line.text, posters.BOLD if line.bold else posters.REGULAR, line.size)
        left = line.x - width / 2 if line.anchor == "middle" else line.x
        assert left >= posters.MARGIN - 0.01 and left + width <= posters.WIDTH_MM - posters.MARGIN + 0.01, line
        assert line.y <= posters.HEIGHT_MM - posters.MARGIN + 0.01, line
    link = "".join(line.text for line in p.lines if line.bold and line.anchor == "middle")
    assert link == posters.short_link(url)
