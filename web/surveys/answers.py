"""Between the answering page's plain form fields and the surveys service's typed answers.

A form sends strings; the service takes JSON values per question kind. Converting happens here, and only
the obvious is judged here (a number that is not one is sent on as text, so the service's check names it);
the rules themselves stay with the service. One exception: a ranking entered as a position per option,
which only the page can tell is given twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Question = Mapping[str, Any]
Form = Mapping[str, Sequence[str]]


def field(question: Question, part: str | None = None) -> str:
    """The form field's name (and element id) of a question, or of one of its rows or options."""
    return f"q-{question['id']}" + (f"-{part}" if part is not None else "")


def first_field(question: Question) -> str:
    """Where an error summary's link for this question points: its first control (the first option of a
    group of radios or checkboxes, the first row of a matrix, the first option of a ranking)."""
    kind = question["kind"]
    if kind == "ranking":
        return field(question, question["options"][0]["id"])
    if kind == "matrix":
        return field(question, question["rows"][0]["id"])
    return field(question)


def _one(form: Form, name: str) -> str:
    values = form.get(name) or []
    return values[0].strip() if values else ""


def _number(text: str) -> int | float | str:
    """``12`` → 12, ``2,5`` → 2.5 (German decimal comma); anything else stays text for the service to refuse."""
    cleaned = text.replace(" ", "").replace("\u202f", "")
    if "," in cleaned and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    try:
        return int(cleaned)
    except ValueError:
        pass
    try:
        value = float(cleaned)
    except ValueError:
        return text
    return value if value == value and value not in (float("inf"), float("-inf")) else text


def from_form(questions: Sequence[Question], form: Form) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The answers a section's form carries, and the page's own errors as (question id, code).

    Blank fields give no answer (the service decides whether one is required)."""
    answers: dict[str, Any] = {}
    errors: list[tuple[str, str]] = []
    for q in questions:
        kind, name = q["kind"], field(q)
        if kind == "multiple_choice":
            chosen = [v for v in form.get(name) or [] if v]
            if chosen:
                answers[q["id"]] = chosen
        elif kind == "yes_no":
            v = _one(form, name)
            if v in ("yes", "no"):
                answers[q["id"]] = v == "yes"
            elif v:
                answers[q["id"]] = v
        elif kind in ("scale", "number"):
            v = _one(form, name)
            if v:
                answers[q["id"]] = _number(v)
        elif kind == "ranking":
            positions: dict[str, str] = {o["id"]: _one(form, field(q, o["id"])) for o in q["options"]}
            given = {k: v for k, v in positions.items() if v}
            if not given:
                continue
            if len(given) < len(positions) or len(set(given.values())) < len(given):
                errors.append((q["id"], "ranking_positions"))
                continue
            try:
                ordered = sorted(given, key=lambda k: int(given[k]))
            except ValueError:
                errors.append((q["id"], "ranking_positions"))
                continue
            answers[q["id"]] = ordered
        elif kind == "matrix":
            rows = {}
            for r in q["rows"]:
                v = _one(form, field(q, r["id"]))
                if v:
                    rows[r["id"]] = _number(v)
            if rows:
                answers[q["id"]] = rows
        else:  # single_choice, free_text
            raw = (form.get(name) or [""])[0]
            v = raw if kind == "free_text" else raw.strip()
            if v.strip():
                answers[q["id"]] = v.replace("\r\n", "\n")
    return answers, errors


def to_form(questions: Sequence[Question], answers: Mapping[str, Any]) -> dict[str, Any]:
    """What each control shows for stored answers (to fill the page again): field name → value(s)."""
    out: dict[str, Any] = {}
    for q in questions:
        v = answers.get(q["id"])
        if v is None:
            continue
        kind = q["kind"]
        if kind == "multiple_choice":
            out[field(q)] = list(v)
        elif kind == "yes_no":
            out[field(q)] = "yes" if v is True else "no" if v is False else str(v)
        elif kind == "ranking":
            for pos, o in enumerate(v, start=1):
                out[field(q, o)] = str(pos)
        elif kind == "matrix":
            for row, x in dict(v).items():
                out[field(q, row)] = _show_number(x)
        elif kind in ("scale", "number"):
            out[field(q)] = _show_number(v)
        else:
            out[field(q)] = str(v)
    return out


def form_values(questions: Sequence[Question], form: Form) -> dict[str, Any]:
    """The form as sent, to show it again beside its errors (nothing a person typed is lost)."""
    out: dict[str, Any] = {}
    for q in questions:
        names = [field(q)]
        if q["kind"] == "ranking":
            names = [field(q, o["id"]) for o in q["options"]]
        elif q["kind"] == "matrix":
            names = [field(q, r["id"]) for r in q["rows"]]
        for name in names:
            values = list(form.get(name) or [])
            if q["kind"] == "multiple_choice":
                out[name] = values
            elif values:
                out[name] = values[0]
    return out


def _show_number(x: Any) -> str:
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)


def shown_text(question: Question, value: Any, labels: Mapping[str, str]) -> list[str]:
    """An answer as lines of text for the review page (``labels``: the words for yes and no)."""
    kind = question["kind"]
    options = {o["id"]: o["label"] for o in question.get("options", [])}
    if kind == "single_choice":
        return [options.get(value, str(value))]
    if kind == "multiple_choice":
        return [options.get(v, str(v)) for v in value]
    if kind == "ranking":
        return [f"{i}. {options.get(v, str(v))}" for i, v in enumerate(value, start=1)]
    if kind == "yes_no":
        return [labels["yes"] if value else labels["no"]]
    if kind == "matrix":
        rows = {r["id"]: r["label"] for r in question["rows"]}
        return [f"{rows.get(k, k)}: {_show_number(x)}" for k, x in dict(value).items()]
    if kind in ("scale", "number"):
        return [_show_number(value).replace(".", labels.get("decimal", "."))]
    return str(value).split("\n")
