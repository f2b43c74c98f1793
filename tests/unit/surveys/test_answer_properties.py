"""What ``validate_answers`` accepts is a valid response under the display conditions, for any questionnaire
staff can write and any answers a client can send (Hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.surveys import domain

OPTIONS = ["a", "b", "c"]
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 12),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.lists(st.sampled_from([*OPTIONS, "x"]), max_size=4),
    st.dictionaries(st.sampled_from(["r1", "r2", "x"]), st.integers(-1, 6), max_size=3),
)


@st.composite
def questionnaires(draw: st.DrawFn) -> dict[str, Any]:
    questions: list[dict[str, Any]] = []
    for i in range(draw(st.integers(1, 7))):
        kind = draw(st.sampled_from(domain.KINDS))
        q: dict[str, Any] = {"id": f"q{i}", "kind": kind, "text": f"Frage {i}", "required": draw(st.booleans())}
        if kind in (domain.SINGLE, domain.MULTIPLE, domain.RANKING):
            q["options"] = [{"id": o, "label": o.upper()} for o in OPTIONS]
        if kind == domain.MULTIPLE and draw(st.booleans()):
            q["max_selections"] = draw(st.integers(1, 3))
        if kind in (domain.SCALE, domain.MATRIX):
            q["min"], q["max"] = 1, 5
        if kind == domain.MATRIX:
            q["rows"] = [{"id": "r1", "label": "Zeile 1"}, {"id": "r2", "label": "Zeile 2"}]
        if kind == domain.TEXT:
            q["max_length"] = 10
        if kind == domain.NUMBER:
            q["min"], q["max"], q["integer"] = 0, 100, draw(st.booleans())
        earlier = [e for e in questions if e["kind"] in domain.CONDITIONABLE]
        if earlier and draw(st.booleans()):
            target = draw(st.sampled_from(earlier))
            values = ["yes", "no"] if target["kind"] == domain.YES_NO else OPTIONS
            any_of = draw(st.lists(st.sampled_from(values), min_size=1, max_size=2, unique=True))
            q["condition"] = {"question": target["id"], "any_of": any_of}
        questions.append(q)
    return {"sections": [{"title": "Teil 1", "questions": questions}]}


def valid_answer(q: domain.Question) -> st.SearchStrategy[Any]:
    ids = list(q.option_ids)
    kind = q.kind
    if kind == domain.SINGLE:
        return st.sampled_from(ids)
    if kind == domain.MULTIPLE:
        return st.lists(st.sampled_from(ids), min_size=1, max_size=q.max_selections or len(ids), unique=True)
    if kind == domain.RANKING:
        return st.permutations(ids)
    if kind == domain.YES_NO:
        return st.booleans()
    if kind == domain.TEXT:
        return st.text(min_size=1, max_size=10)
    if kind == domain.SCALE:
        return st.integers(1, 5)
    if kind == domain.NUMBER:
        return st.integers(0, 100)
    return st.dictionaries(st.sampled_from(["r1", "r2"]), st.integers(1, 5), min_size=2 if q.required else 1)


@st.composite
def cases(draw: st.DrawFn) -> tuple[domain.Questionnaire, dict[str, Any]]:
    raw = draw(questionnaires())
    qn = domain.questionnaire_from_dict(raw)
    assert domain.check_questionnaire(qn) == [], domain.check_questionnaire(qn)
    answers: dict[str, Any] = {}
    for q in qn.questions():
        choice = draw(st.sampled_from(["absent", "valid", "valid", "junk"]))
        if choice == "valid":
            answers[q.id] = draw(valid_answer(q))
        elif choice == "junk":
            answers[q.id] = draw(JUNK)
    if draw(st.booleans()):
        answers[draw(st.sampled_from(["zz", "q99", "a/b~c"]))] = draw(JUNK)
    return qn, answers


def shown_by_hand(q: domain.Question, accepted: dict[str, Any], questions: dict[str, domain.Question]) -> bool:
    """The display rule written out once more, independently: shown without a condition, else when the
    question it names has an accepted answer that is (or, for several choices, contains) one of its values."""
    if q.condition is None:
        return True
    if q.condition.question not in accepted:
        return False
    value = accepted[q.condition.question]
    if questions[q.condition.question].kind == domain.YES_NO:
        values = ["yes" if value else "no"]
    elif isinstance(value, list):
        values = value
    else:
        values = [value]
    return any(v in q.condition.any_of for v in values)


def blank(q: domain.Question, value: Any) -> bool:
    return value is None or (q.kind == domain.TEXT and isinstance(value, str) and not value.strip())


@settings(max_examples=400, deadline=None)
@given(cases())
def test_accepted_answers_are_a_valid_response_under_the_display_conditions(
    case: tuple[domain.Questionnaire, dict[str, Any]],
) -> None:
    qn, answers = case
    questions = qn.by_id()
    accepted, errors = domain.validate_answers(qn, answers)
    wrong = {e["question"] for e in errors}

    assert set(accepted) <= set(answers)
    for q in qn.questions():
        shown = shown_by_hand(q, accepted, questions)
        if q.id in accepted:
            # Only shown questions have answers, and only valid ones.
            assert shown, q
            assert domain._answer_error(q, accepted[q.id]) is None
        elif shown and q.required:
            # A required question that is shown is answered, or the client is told.
            assert q.id in wrong, (q, answers)
        if not shown and not blank(q, answers.get(q.id)):
            # An answer to a question the other answers hide is refused as such, not silently kept.
            assert [e["code"] for e in errors if e["question"] == q.id] == ["not_shown"]
    # Every answer sent is taken, refused with a reason, or was blank.
    for key, value in answers.items():
        q = questions.get(key)
        assert key in accepted or key in wrong or (q is not None and blank(q, value)), (key, value)
    # Each refusal says where (a JSON pointer into the body) and what, once per question.
    for e in errors:
        assert e["pointer"] == "/answers/" + e["question"].replace("~", "~0").replace("/", "~1")
        assert e["code"] and e["detail"]
    assert len(wrong) == len(errors)
    # What was accepted is itself a complete, valid response: sent again, nothing is refused or dropped
    # (questions it hid stay hidden, required ones it showed are answered).
    again, errors_again = domain.validate_answers(qn, accepted)
    if not errors:
        assert (again, errors_again) == (accepted, [])
    else:
        assert again == accepted
        assert {e["code"] for e in errors_again} <= {"required"}
