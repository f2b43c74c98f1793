"""The survey rules on their own: questionnaire checks, display conditions, answers, counters, codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.surveys import domain
from services.surveys.domain import questionnaire_from_dict

Q = dict[str, Any]


def qn(*questions: Q) -> domain.Questionnaire:
    return questionnaire_from_dict({"sections": [{"id": "s", "title": "S", "questions": list(questions)}]})


def choice(id_: str, *options: str, kind: str = "single_choice", **kw: Any) -> Q:
    return {"id": id_, "kind": kind, "text": id_, "options": [{"id": o, "label": o} for o in options], **kw}


YES = {"id": "online", "kind": "yes_no", "text": "Online?", "required": True}
WHICH = choice("which", "car", "waste", "library", kind="multiple_choice", required=True, max_selections=2,
               condition={"question": "online", "any_of": ["yes"]})  # fmt: skip
WHY = {"id": "why", "kind": "free_text", "text": "Why?", "max_length": 10,
       "condition": {"question": "which", "any_of": ["car"]}}  # fmt: skip
SCALE = {"id": "sat", "kind": "scale", "text": "Satisfied?", "min": 1, "max": 5}
NUMBER = {"id": "visits", "kind": "number", "text": "Visits", "min": 0, "max": 365, "integer": True}
RANK = choice("rank", "a", "b", "c", kind="ranking")
GRID = {"id": "grid", "kind": "matrix", "text": "Rate", "min": 1, "max": 3, "required": True,
        "rows": [{"id": "speed", "label": "Speed"}, {"id": "ease", "label": "Ease"}]}  # fmt: skip
ALL = qn(YES, WHICH, WHY, SCALE, NUMBER, RANK, GRID)


def codes(errors: list[dict[str, Any]]) -> dict[str, str]:
    return {e["question"]: e["code"] for e in errors}


# --- questionnaires ------------------------------------------------------------------------------


def test_a_sound_questionnaire_has_no_problems() -> None:
    assert domain.check_questionnaire(ALL) == []


def test_a_condition_must_refer_to_an_earlier_question() -> None:
    later = dict(YES, condition={"question": "which", "any_of": ["car"]})
    errors = domain.check_questionnaire(qn(later, dict(WHICH, condition=None)))
    assert errors[0]["pointer"] == "/sections/0/questions/0/condition/question"
    assert "not an earlier question" in errors[0]["detail"]


def test_a_condition_must_not_refer_to_itself_or_to_a_missing_question() -> None:
    itself = choice("x", "a", "b", condition={"question": "x", "any_of": ["a"]})
    missing = choice("y", "a", "b", condition={"question": "nope", "any_of": ["a"]})
    assert len(domain.check_questionnaire(qn(itself, missing))) == 2


def test_a_condition_must_name_real_answers_of_a_choice_question() -> None:
    bad_value = dict(WHICH, condition={"question": "online", "any_of": ["maybe"]})
    on_scale = dict(RANK, condition={"question": "sat", "any_of": ["3"]})
    errors = domain.check_questionnaire(qn(YES, bad_value, SCALE, on_scale))
    assert [e["question"] for e in errors] == ["which", "rank"]


def test_kind_specific_rules_are_all_reported() -> None:
    errors = domain.check_questionnaire(
        qn(
            choice("one", "only"),
            choice("multi", "a", "b", kind="multiple_choice", max_selections=3),
            {"id": "t", "kind": "free_text", "text": "t", "max_length": 0},
            {"id": "sc", "kind": "scale", "text": "s", "min": 5, "max": 1},
            {"id": "n", "kind": "number", "text": "n", "min": 10, "max": 1},
            {"id": "m", "kind": "matrix", "text": "m", "min": 1, "max": 3, "rows": []},
            {"id": "bad id!", "kind": "yes_no", "text": "y"},
            {"id": "one", "kind": "yes_no", "text": "duplicate"},
        )
    )
    assert {e["pointer"].split("/")[4] for e in errors} == {"0", "1", "2", "3", "4", "5", "6", "7"}


# --- answers -------------------------------------------------------------------------------------


def test_good_answers_are_accepted_and_normalised() -> None:
    answers = {"online": True, "which": ["car"], "why": "faster", "sat": 4.0, "visits": 3,
               "rank": ["c", "a", "b"], "grid": {"speed": 1, "ease": 3}}  # fmt: skip
    accepted, errors = domain.validate_answers(ALL, answers)
    assert errors == []
    assert accepted["sat"] == 4 and isinstance(accepted["sat"], int)


def test_every_bad_answer_is_listed_at_once() -> None:
    answers = {"online": "yes", "sat": 9, "visits": 2.5, "rank": ["a", "a", "b"], "grid": {"speed": 1},
               "ghost": 1}  # fmt: skip
    _, errors = domain.validate_answers(ALL, answers)
    assert codes(errors) == {
        "ghost": "unknown_question",
        "online": "invalid_type",
        "sat": "out_of_range",
        "visits": "invalid_type",
        "rank": "incomplete_ranking",
        "grid": "required",
    }


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (["car", "waste", "library"], "too_many"),
        (["car", "car"], "duplicate_option"),
        (["bus"], "invalid_option"),
        ([], "empty"),
        ("car", "invalid_type"),
    ],
)
def test_multiple_choice_rules(value: Any, code: str) -> None:
    _, errors = domain.validate_answers(ALL, {"online": True, "which": value, "grid": {"speed": 1, "ease": 1}})
    assert codes(errors) == {"which": code}


def test_text_length_and_numbers() -> None:
    _, errors = domain.validate_answers(
        ALL,
        {"online": True, "which": ["car"], "why": "x" * 11, "visits": True, "grid": {"speed": 1, "ease": 4}},
    )
    assert codes(errors) == {"why": "too_long", "visits": "invalid_type", "grid": "out_of_range"}
    _, errors = domain.validate_answers(qn(dict(NUMBER, integer=False)), {"visits": float("nan")})
    assert codes(errors) == {"visits": "invalid_type"}
    _, errors = domain.validate_answers(qn(dict(NUMBER, integer=False)), {"visits": 400})
    assert codes(errors) == {"visits": "out_of_range"}


def test_required_applies_only_to_shown_questions() -> None:
    # "which" is required but shown only to those who use online services.
    accepted, errors = domain.validate_answers(ALL, {"online": False, "grid": {"speed": 1, "ease": 2}})
    assert errors == [] and accepted == {"online": False, "grid": {"speed": 1, "ease": 2}}
    _, errors = domain.validate_answers(ALL, {"online": True, "grid": {"speed": 1, "ease": 2}})
    assert codes(errors) == {"which": "required"}


def test_an_answer_to_a_hidden_question_is_refused_and_conditions_chain() -> None:
    _, errors = domain.validate_answers(
        ALL, {"online": False, "which": ["car"], "why": "x", "grid": {"speed": 1, "ease": 2}}
    )
    # "which" is hidden by "online"; "why" depends on "which", hidden too.
    assert codes(errors) == {"which": "not_shown", "why": "not_shown"}
    _, errors = domain.validate_answers(
        ALL, {"online": True, "which": ["waste"], "why": "x", "grid": {"speed": 1, "ease": 2}}
    )
    assert codes(errors) == {"why": "not_shown"}


def test_blank_text_and_null_count_as_unanswered() -> None:
    accepted, errors = domain.validate_answers(qn(dict(WHY, condition=None)), {"why": "   "})
    assert accepted == {} and errors == []
    _, errors = domain.validate_answers(qn(dict(YES)), {"online": None})
    assert codes(errors) == {"online": "required"}


# --- counters and results ------------------------------------------------------------------------


def test_counters_are_sorted_and_results_derive_means() -> None:
    answers = [
        {"online": True, "which": ["car", "waste"], "sat": 4, "visits": 10, "rank": ["a", "b", "c"],
         "grid": {"speed": 1, "ease": 3}},
        {"online": True, "which": ["car"], "sat": 2, "visits": 20, "rank": ["b", "a", "c"],
         "grid": {"speed": 3, "ease": 3}},
        {"online": False, "grid": {"speed": 2, "ease": 1}},
    ]  # fmt: skip
    sums: dict[str, tuple[int, float]] = {}
    for a in answers:
        accepted, errors = domain.validate_answers(ALL, a)
        assert errors == []
        inc = domain.counter_increments(ALL, accepted)
        assert [k for k, _, _ in inc] == sorted(k for k, _, _ in inc)
        for k, c, t in inc:
            old = sums.get(k, (0, 0.0))
            sums[k] = (old[0] + c, old[1] + t)
    r = domain.results_from_counters(ALL, sums)
    by = {q["id"]: q for q in r["questions"]}
    assert r["responses"] == 3
    assert (by["online"]["yes"], by["online"]["no"]) == (2, 1)
    assert [o["count"] for o in by["which"]["options"]] == [2, 1, 0]
    assert by["sat"]["distribution"] == {"1": 0, "2": 1, "3": 0, "4": 1, "5": 0} and by["sat"]["mean"] == 3.0
    assert by["visits"]["mean"] == 15.0 and by["visits"]["answered"] == 2
    assert [o["mean_position"] for o in by["rank"]["options"]] == [1.5, 1.5, 3.0]
    speed = by["grid"]["rows"][0]
    assert speed["distribution"] == {"1": 1, "2": 1, "3": 1} and speed["mean"] == 2.0
    assert by["why"]["answered"] == 0


def test_export_cells_follow_the_columns() -> None:
    cols = domain.export_columns(ALL)
    assert cols == ["online", "which", "why", "sat", "visits", "rank", "grid.speed", "grid.ease"]
    cells = domain.export_cells(ALL, {"online": True, "which": ["car", "waste"], "grid": {"ease": 2}})
    assert cells == ["yes", "car;waste", None, None, None, None, None, 2]


# --- time and codes ------------------------------------------------------------------------------


def test_the_window() -> None:
    opens = datetime(2026, 10, 1, tzinfo=UTC)
    closes = opens + timedelta(days=30)
    assert domain.window_refusal("draft", opens, closes, opens) == "not_published"
    assert domain.window_refusal("published", opens, closes, opens - timedelta(seconds=1)) == "not_yet_open"
    assert domain.window_refusal("published", opens, closes, opens) is None
    assert domain.window_refusal("open", opens, closes, closes - timedelta(microseconds=1)) is None
    assert domain.window_refusal("open", opens, closes, closes) == "closed"
    assert domain.window_refusal("closed", opens, closes, opens) == "closed"
    assert domain.check_window(closes, opens)[0]["pointer"] == "/closes_at"
    assert domain.day_of(datetime(2026, 10, 5, 23, 59, 59, tzinfo=UTC)).isoformat() == "2026-10-05"


def test_codes_are_typeable_and_stored_only_as_keyed_hashes() -> None:
    code = domain.new_code()
    assert len(code) == 14 and code.count("-") == 2
    assert not set(code.replace("-", "")) & set("01OIL")
    secret, other = b"s" * 32, b"t" * 32
    assert domain.code_hash(secret, code) == domain.code_hash(secret, " " + code.lower().replace("-", " "))
    assert domain.code_hash(secret, code) != domain.code_hash(other, code)
    assert len({domain.new_code() for _ in range(1000)}) == 1000


# --- drafts --------------------------------------------------------------------------------------

TWO_PAGES = questionnaire_from_dict(
    {
        "sections": [
            {"id": "p1", "title": "1", "questions": [YES, WHICH, WHY]},
            {
                "id": "p2",
                "title": "2",
                "questions": [SCALE, dict(RANK, condition={"question": "online", "any_of": ["no"]})],
            },
        ]
    }
)


def test_saving_a_section_replaces_its_answers_and_keeps_the_others() -> None:
    p1, p2 = TWO_PAGES.sections
    stored = {"online": False, "sat": 3, "rank": ["a", "b", "c"]}
    saved, errors = domain.save_section(TWO_PAGES, stored, p1, {"online": True, "which": ["car"]}, partial=False)
    # "rank" depended on online = no: hidden now, so its answer goes; "sat" on the other page stays.
    assert errors == [] and saved == {"online": True, "which": ["car"], "sat": 3}
    # A question left out of the page's answers loses its old answer.
    saved, _ = domain.save_section(TWO_PAGES, saved, p2, {}, partial=True)
    assert saved == {"online": True, "which": ["car"]}


def test_a_section_is_checked_on_its_own_questions_only() -> None:
    p1, p2 = TWO_PAGES.sections
    _, errors = domain.save_section(TWO_PAGES, {}, p2, {"sat": 9, "online": True}, partial=False)
    assert codes(errors) == {"online": "unknown_question", "sat": "out_of_range"}
    # Required questions left blank: an error when moving on, none when leaving to resume later.
    assert codes(domain.save_section(TWO_PAGES, {}, p1, {}, partial=False)[1]) == {"online": "required"}
    assert domain.save_section(TWO_PAGES, {}, p1, {}, partial=True)[1] == []
    # A conditional question answered while hidden (a page without script shows it) is dropped, no error.
    saved, errors = domain.save_section(TWO_PAGES, {}, p1, {"online": False, "which": ["car"]}, partial=False)
    assert errors == [] and saved == {"online": False}


def test_a_draft_summary_tells_which_sections_show_and_what_is_missing() -> None:
    empty = domain.draft_summary(TWO_PAGES, {})
    assert [s["shown"] for s in empty["sections"]] == [True, True]
    assert empty["sections"][0]["missing"] == ["online"] and "which" not in empty["shown"]
    only_hidden = questionnaire_from_dict(
        {"sections": [{"id": "a", "questions": [YES]}, {"id": "b", "questions": [WHICH]}]}
    )
    summary = domain.draft_summary(only_hidden, {"online": False})
    assert [s["shown"] for s in summary["sections"]] == [True, False] and summary["errors"] == []
    assert domain.draft_summary(only_hidden, {"online": True})["sections"][1]["missing"] == ["which"]


def test_status_is_told_by_time() -> None:
    t = datetime(2026, 10, 1, tzinfo=UTC)
    day = timedelta(days=1)
    assert domain.window_status("published", t, t + day, t - day) == "not_yet_open"
    assert domain.window_status("published", t, t + day, t) == "open"
    assert domain.window_status("open", t, t + day, t + day) == "closed"
    assert domain.window_status("closed", t, t + day, t) == "closed"


def test_resume_codes_are_longer_than_letter_codes() -> None:
    code = domain.new_code(domain.RESUME_CODE_LENGTH)
    assert len(code) == 19 and code.count("-") == 3
    assert set(domain.normalise_code(code)) <= set(domain.CODE_ALPHABET)
