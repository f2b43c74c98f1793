"""The survey pages' own logic: form fields to typed answers and back, steps, messages, the SVG charts."""

from __future__ import annotations

import re
from typing import Any

from web.surveys import answers, flow, messages
from web.surveys.charts import Bar, bar_chart
from web.surveys.pages import result_blocks

Q = dict[str, Any]

YES: Q = {"id": "online", "kind": "yes_no", "text": "Online?", "required": True}
WHICH: Q = {"id": "which", "kind": "multiple_choice", "text": "Which?", "max_selections": 2,
            "options": [{"id": "car", "label": "Car"}, {"id": "waste", "label": "Waste"}]}  # fmt: skip
NUMBER: Q = {"id": "visits", "kind": "number", "text": "Visits", "min": 0, "max": 365, "integer": True}
SCALE: Q = {"id": "sat", "kind": "scale", "text": "Satisfied", "min": 1, "max": 5}
RANK: Q = {"id": "rank", "kind": "ranking", "text": "Rank",
           "options": [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}, {"id": "c", "label": "C"}]}  # fmt: skip
GRID: Q = {"id": "grid", "kind": "matrix", "text": "Rate", "min": 1, "max": 3,
           "rows": [{"id": "speed", "label": "Speed"}, {"id": "ease", "label": "Ease"}]}  # fmt: skip
TEXT: Q = {"id": "idea", "kind": "free_text", "text": "Idea"}
CHOICE: Q = {"id": "age", "kind": "single_choice", "text": "Age", "options": [{"id": "young", "label": "Young"}]}
ALL = [YES, WHICH, NUMBER, SCALE, RANK, GRID, TEXT, CHOICE]


def test_form_fields_become_typed_answers() -> None:
    form = {
        "q-online": ["yes"],
        "q-which": ["car", "waste"],
        "q-visits": ["12"],
        "q-sat": ["4"],
        "q-rank-a": ["2"],
        "q-rank-b": ["3"],
        "q-rank-c": ["1"],
        "q-grid-speed": ["2"],
        "q-grid-ease": [""],
        "q-idea": ["Zwei\r\nZeilen"],
        "q-age": ["young"],
    }
    given, errors = answers.from_form(ALL, form)
    assert errors == []
    assert given == {
        "online": True,
        "which": ["car", "waste"],
        "visits": 12,
        "sat": 4,
        "rank": ["c", "a", "b"],
        "grid": {"speed": 2},
        "idea": "Zwei\nZeilen",
        "age": "young",
    }


def test_blank_fields_give_no_answer_and_text_that_is_no_number_stays_text() -> None:
    given, _ = answers.from_form(ALL, {"q-idea": ["   "], "q-visits": ["viele"], "q-online": [""]})
    assert given == {"visits": "viele"}
    # A German decimal comma is a number.
    assert answers.from_form([NUMBER], {"q-visits": ["2,5"]})[0] == {"visits": 2.5}


def test_a_ranking_with_a_place_twice_or_missing_is_the_pages_own_error() -> None:
    twice = {"q-rank-a": ["1"], "q-rank-b": ["1"], "q-rank-c": ["2"]}
    assert answers.from_form([RANK], twice) == ({}, [("rank", "ranking_positions")])
    missing = {"q-rank-a": ["1"], "q-rank-b": ["2"], "q-rank-c": [""]}
    assert answers.from_form([RANK], missing)[1] == [("rank", "ranking_positions")]
    # Nothing given at all is no answer (the service decides whether one is required).
    assert answers.from_form([RANK], {}) == ({}, [])


def test_stored_answers_fill_the_form_again() -> None:
    stored = {"online": False, "which": ["car"], "visits": 12, "rank": ["c", "a", "b"], "grid": {"speed": 2}}
    values = answers.to_form(ALL, stored)
    assert values == {
        "q-online": "no",
        "q-which": ["car"],
        "q-visits": "12",
        "q-rank-c": "1",
        "q-rank-a": "2",
        "q-rank-b": "3",
        "q-grid-speed": "2",
    }
    # And what went in comes out the same way.
    form = {k: v if isinstance(v, list) else [v] for k, v in values.items()}
    assert answers.from_form(ALL, form)[0] == stored


def test_error_links_point_at_the_first_control() -> None:
    assert answers.first_field(YES) == "q-online"
    assert answers.first_field(RANK) == "q-rank-a"
    assert answers.first_field(GRID) == "q-grid-speed"


def test_answers_read_as_text_on_the_review_page() -> None:
    labels = {"yes": "Ja", "no": "Nein", "decimal": ","}
    assert answers.shown_text(WHICH, ["waste", "car"], labels) == ["Waste", "Car"]
    assert answers.shown_text(RANK, ["b", "a", "c"], labels) == ["1. B", "2. A", "3. C"]
    assert answers.shown_text(YES, False, labels) == ["Nein"]
    assert answers.shown_text(GRID, {"speed": 2}, labels) == ["Speed: 2"]
    assert answers.shown_text(NUMBER, 2.5, labels) == ["2,5"]


SURVEY = {
    "sections": [
        {"id": "a", "title": "A", "questions": [YES]},
        {"id": "b", "title": "B", "questions": [WHICH]},
        {"id": "c", "title": "C", "questions": [TEXT]},
    ]
}


def summary(
    shown: dict[str, bool], answered: dict[str, list[str]] | None = None, missing: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    return {
        "sections": [
            {"id": k, "shown": v, "answered": (answered or {}).get(k, []), "missing": (missing or {}).get(k, [])}
            for k, v in shown.items()
        ]
    }


def test_steps_count_the_shown_sections_and_the_review() -> None:
    all_shown = summary({"a": True, "b": True, "c": True})
    step = flow.step_of(SURVEY, all_shown, "b")
    assert step is not None and (step.number, step.total, step.previous, step.next) == (2, 4, "a", "c")
    last = flow.step_of(SURVEY, all_shown, "c")
    assert last is not None and last.next == flow.REVIEW
    # A hidden section is skipped and counted out.
    hidden = summary({"a": True, "b": False, "c": True})
    assert flow.step_of(SURVEY, hidden, "b") is None
    step = flow.step_of(SURVEY, hidden, "c")
    assert step is not None and (step.number, step.total, step.previous) == (2, 3, "a")
    assert flow.total_steps(SURVEY, hidden) == 3


def test_a_resumed_draft_continues_where_something_is_open() -> None:
    fresh = summary({"a": True, "b": True, "c": True}, missing={"a": ["online"]})
    assert flow.resume_at(SURVEY, fresh) == "a"
    halfway = summary({"a": True, "b": True, "c": True}, answered={"a": ["online"], "b": ["which"]})
    assert flow.resume_at(SURVEY, halfway) == "c"
    done = summary({"a": True, "b": False, "c": True}, answered={"a": ["online"], "c": ["idea"]})
    assert flow.resume_at(SURVEY, done) == flow.REVIEW


def test_questions_get_every_field_the_templates_read() -> None:
    survey = flow.complete({"sections": [{"id": "a", "questions": [{"id": "x", "kind": "yes_no", "text": "X"}]}]})
    q = survey["sections"][0]["questions"][0]
    assert q["condition"] is None and q["options"] == [] and q["required"] is False
    assert survey["sections"][0]["title"] == ""


def test_messages_say_what_to_do_in_german_and_english() -> None:
    assert messages.message(WHICH, "too_many", "de") == "Bitte wählen Sie höchstens 2 Antworten aus."
    assert messages.message(NUMBER, "out_of_range", "de") == "Bitte geben Sie eine Zahl von 0 bis 365 ein."
    assert messages.message(NUMBER, "invalid_type", "en").startswith("Please enter a whole number")
    assert messages.message(GRID, "required", "de") == "Bitte beantworten Sie jede Zeile."
    assert messages.message(SCALE, "out_of_range", "de") == "Bitte wählen Sie einen Wert von 1 bis 5."
    assert messages.message(RANK, "ranking_positions", "de") == "Bitte vergeben Sie jeden Platz genau einmal."
    # An unknown code still gets a plain sentence, never the service's English detail.
    assert messages.message(TEXT, "something_new", "de") == "Bitte prüfen Sie Ihre Antwort."


def test_a_bar_chart_is_svg_with_the_numbers_written_and_no_inline_style() -> None:
    svg = str(bar_chart([Bar("Ja <&>", 3), Bar("Nein", 1)], 4, lambda s: f"{round(s * 100)} %"))
    assert svg.startswith("<svg") and 'aria-hidden="true"' in svg and "style=" not in svg
    assert "Ja &lt;&amp;&gt;" in svg and "3 (75 %)" in svg and "1 (25 %)" in svg
    # Bars in proportion to the total, on a track of 510 units.
    widths = [int(w) for w in re.findall(r'width="(\d+)" height="22" fill="#1d4f91"', svg)]
    assert widths == [382, 128]
    # Nobody answered: empty tracks, no division by zero.
    assert "0 (0 %)" in str(bar_chart([Bar("Ja", 0)], 0, lambda s: f"{round(s * 100)} %"))


def test_results_become_bars_and_tables() -> None:
    results = {
        "responses": 4,
        "questions": [
            {"id": "online", "kind": "yes_no", "text": "Online?", "answered": 4, "yes": 3, "no": 1},
            {"id": "sat", "kind": "scale", "text": "Sat", "answered": 2, "distribution": {"1": 0, "2": 2}, "mean": 2.0},
            {"id": "rank", "kind": "ranking", "text": "Rank", "answered": 1,
             "options": [{"id": "a", "label": "A", "mean_position": 2.0},
                         {"id": "b", "label": "B", "mean_position": 1.0}]},
        ],
    }  # fmt: skip
    blocks = result_blocks(results, "de")
    assert blocks[0]["rows"] == [("Ja", 3, "75 %"), ("Nein", 1, "25 %")] and blocks[0]["chart"] is not None
    assert blocks[1]["rows"] == [("1", 0, "0 %"), ("2", 2, "100 %")] and blocks[1]["mean"] == 2.0
    assert [o["label"] for o in blocks[2]["ranking"]] == ["B", "A"] and blocks[2]["chart"] is None


def test_a_page_shows_what_earlier_pages_decided_and_what_depends_on_itself() -> None:
    later = {"id": "why", "kind": "free_text", "text": "Why?", "condition": {"question": "online", "any_of": ["no"]}}
    same = {"id": "which", "kind": "multiple_choice", "text": "Which?", "options": [],
            "condition": {"question": "here", "any_of": ["yes"]}}  # fmt: skip
    section = {"id": "b", "questions": [{"id": "here", "kind": "yes_no", "text": "Here?"}, same, later]}
    # "online" (an earlier page) was answered yes: "why" is not shown; "which" depends on this page.
    ids = [q["id"] for q in flow.page_questions(section, {"shown": ["here"]})]
    assert ids == ["here", "which"]
    assert [q["id"] for q in flow.page_questions(section, {"shown": ["here", "why"]})] == ["here", "which", "why"]


def test_every_text_of_the_survey_pages_has_its_english_version() -> None:
    from pathlib import Path

    from web import i18n
    from web.surveys import pages

    root = Path(pages.__file__).parents[1]
    texts: set[str] = set()
    for template in (root / "templates" / "surveys").glob("*.html"):
        texts |= set(re.findall(r'_\("([^"]+)"\)', template.read_text()))
    texts |= set(re.findall(r'_t\(\s*request,\s*"([^"]+)"', Path(pages.__file__).read_text()))
    assert len(texts) > 50
    assert sorted(t for t in texts if t not in i18n.ENGLISH) == []
