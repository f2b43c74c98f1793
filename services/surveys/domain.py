"""The rules of surveys as pure functions: questionnaire checks, display conditions, answer validation,
the counter increments a response makes, results derived from counters, access codes and time windows.

Nothing here touches a database, Redis or HTTP, so every rule is unit-tested on its own.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

from shared.errors import Conflict, DomainError, FieldProblem, Forbidden, Invalid, NotFound

SINGLE = "single_choice"
MULTIPLE = "multiple_choice"
TEXT = "free_text"
SCALE = "scale"
RANKING = "ranking"
NUMBER = "number"
YES_NO = "yes_no"
MATRIX = "matrix"
KINDS = (SINGLE, MULTIPLE, TEXT, SCALE, RANKING, NUMBER, YES_NO, MATRIX)
#: Kinds a display condition may look at: their answers are option ids (or yes/no).
CONDITIONABLE = (SINGLE, MULTIPLE, YES_NO)
WITH_OPTIONS = (SINGLE, MULTIPLE, RANKING)

DEFAULT_TEXT_LENGTH = 2000
MAX_TEXT_LENGTH = 20_000
MAX_SCALE_SPAN = 100

_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")

Error = dict[str, Any]


# --- the survey ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Survey:
    id: UUID
    tenant: str
    slug: str
    title: str
    introduction: str
    estimated_minutes: int | None
    opens_at: datetime
    closes_at: datetime
    results_public: bool
    process_id: UUID | None
    access: str
    reminder_offsets: list[int]
    state: str
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    opened_at: datetime | None
    closed_at: datetime | None

    @classmethod
    def of(cls, row: Any) -> Survey:
        """From a row with the survey's columns (a mapping)."""
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Option:
    id: str
    label: str


@dataclass(frozen=True)
class Condition:
    """Show the question only if ``question`` was answered with one of ``any_of`` (option ids, or yes/no)."""

    question: str
    any_of: tuple[str, ...]


@dataclass(frozen=True)
class Question:
    id: str
    kind: str
    text: str
    required: bool = False
    help: str = ""
    options: tuple[Option, ...] = ()
    max_selections: int | None = None
    max_length: int | None = None
    min: float | None = None
    max: float | None = None
    integer: bool = False
    rows: tuple[Option, ...] = ()
    condition: Condition | None = None

    @property
    def option_ids(self) -> tuple[str, ...]:
        return tuple(o.id for o in self.options)

    @property
    def text_limit(self) -> int:
        return self.max_length or DEFAULT_TEXT_LENGTH


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    description: str = ""
    questions: tuple[Question, ...] = ()


@dataclass(frozen=True)
class Questionnaire:
    sections: tuple[Section, ...] = field(default_factory=tuple)

    def questions(self) -> list[Question]:
        return [q for s in self.sections for q in s.questions]

    def by_id(self) -> dict[str, Question]:
        return {q.id: q for q in self.questions()}


# --- building from plain data (JSON) -------------------------------------------------------------


def _options(raw: Sequence[Mapping[str, Any]] | None) -> tuple[Option, ...]:
    return tuple(Option(str(o["id"]), str(o.get("label", o["id"]))) for o in raw or ())


def question_from_dict(raw: Mapping[str, Any]) -> Question:
    cond = raw.get("condition")
    return Question(
        id=str(raw["id"]),
        kind=str(raw["kind"]),
        text=str(raw.get("text", "")),
        required=bool(raw.get("required", False)),
        help=str(raw.get("help") or ""),
        options=_options(raw.get("options")),
        max_selections=raw.get("max_selections"),
        max_length=raw.get("max_length"),
        min=raw.get("min"),
        max=raw.get("max"),
        integer=bool(raw.get("integer", False)),
        rows=_options(raw.get("rows")),
        condition=Condition(str(cond["question"]), tuple(str(v) for v in cond["any_of"])) if cond else None,
    )


def questionnaire_from_dict(raw: Mapping[str, Any]) -> Questionnaire:
    return Questionnaire(
        tuple(
            Section(
                id=str(s.get("id") or f"s{i + 1}"),
                title=str(s.get("title", "")),
                description=str(s.get("description") or ""),
                questions=tuple(question_from_dict(q) for q in s.get("questions", ())),
            )
            for i, s in enumerate(raw.get("sections", ()))
        )
    )


# --- checking a questionnaire a member of staff wrote ---------------------------------------------


def _check_ids(items: Sequence[Option], where: str, what: str, errors: list[Error]) -> None:
    seen: set[str] = set()
    for i, o in enumerate(items):
        if not _ID.match(o.id):
            errors.append({"pointer": f"{where}/{what}/{i}/id", "detail": "ids are 1-40 letters, digits, - or _"})
        if o.id in seen:
            errors.append({"pointer": f"{where}/{what}/{i}/id", "detail": f"duplicate id {o.id!r}"})
        seen.add(o.id)


def check_questionnaire(qn: Questionnaire) -> list[Error]:
    """Every problem with a questionnaire, each with a JSON pointer into the request's ``sections``."""
    errors: list[Error] = []
    earlier: dict[str, Question] = {}
    if not qn.questions():
        errors.append({"pointer": "/sections", "detail": "a survey needs at least one question"})
    for si, section in enumerate(qn.sections):
        for qi, q in enumerate(section.questions):
            where = f"/sections/{si}/questions/{qi}"

            def bad(detail: str, sub: str = "", where: str = where, qid: str = q.id) -> None:
                errors.append({"pointer": where + sub, "question": qid, "detail": detail})

            if not _ID.match(q.id):
                bad("ids are 1-40 letters, digits, - or _", "/id")
            if q.id in earlier:
                bad(f"duplicate question id {q.id!r}", "/id")
            if q.kind not in KINDS:
                bad(f"unknown kind; one of {list(KINDS)}", "/kind")
            if q.kind in WITH_OPTIONS:
                _check_ids(q.options, where, "options", errors)
                if len(q.options) < 2:
                    bad("needs at least two options", "/options")
            elif q.options:
                bad(f"{q.kind} questions have no options", "/options")
            if q.kind == MULTIPLE and q.max_selections is not None and not 1 <= q.max_selections <= len(q.options):
                bad("max_selections must be between 1 and the number of options", "/max_selections")
            if q.kind == TEXT and q.max_length is not None and not 1 <= q.max_length <= MAX_TEXT_LENGTH:
                bad(f"max_length must be between 1 and {MAX_TEXT_LENGTH}", "/max_length")
            if q.kind in (SCALE, MATRIX):
                if q.min is None or q.max is None or not _is_int(q.min) or not _is_int(q.max):
                    bad("a scale needs whole-number min and max", "/min")
                elif not q.min < q.max or q.max - q.min > MAX_SCALE_SPAN:
                    bad(f"a scale needs min < max and at most {MAX_SCALE_SPAN} steps", "/max")
            if q.kind == NUMBER and q.min is not None and q.max is not None and q.min > q.max:
                bad("min must not exceed max", "/min")
            if q.kind == MATRIX:
                _check_ids(q.rows, where, "rows", errors)
                if not q.rows:
                    bad("a matrix needs at least one row", "/rows")
            if q.condition is not None:
                _check_condition(q, q.condition, earlier, bad)
            earlier[q.id] = q
    return errors


def _check_condition(q: Question, cond: Condition, earlier: Mapping[str, Question], bad: Any) -> None:
    target = earlier.get(cond.question)
    if target is None:
        bad(f"condition refers to {cond.question!r}, which is not an earlier question", "/condition/question")
        return
    if target.kind not in CONDITIONABLE:
        bad(f"conditions can look at {list(CONDITIONABLE)} questions only", "/condition/question")
        return
    if not cond.any_of:
        bad("condition needs at least one value", "/condition/any_of")
    allowed = ("yes", "no") if target.kind == YES_NO else target.option_ids
    for v in cond.any_of:
        if v not in allowed:
            bad(f"{v!r} is not an answer of {target.id!r}; one of {list(allowed)}", "/condition/any_of")


def check_window(opens_at: datetime, closes_at: datetime) -> list[Error]:
    if closes_at <= opens_at:
        return [{"pointer": "/closes_at", "detail": "closes_at must be after opens_at"}]
    return []


# --- answers -------------------------------------------------------------------------------------


def _is_int(v: Any) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def condition_answer_values(q: Question, value: Any) -> set[str]:
    """The values of an answer a display condition compares with."""
    if q.kind == YES_NO:
        return {"yes" if value else "no"}
    if q.kind == MULTIPLE:
        return set(value)
    return {value}


def is_shown(q: Question, accepted: Mapping[str, Any], questions: Mapping[str, Question]) -> bool:
    """Whether ``q`` is shown, given the answers accepted so far (hidden questions have no answer)."""
    if q.condition is None:
        return True
    target = questions.get(q.condition.question)
    if target is None or q.condition.question not in accepted:
        return False
    return bool(condition_answer_values(target, accepted[q.condition.question]) & set(q.condition.any_of))


def _answer_error(q: Question, v: Any) -> tuple[str, str] | None:
    """(code, detail) if ``v`` is not a valid answer to ``q``."""
    if q.kind == SINGLE:
        if not isinstance(v, str) or v not in q.option_ids:
            return "invalid_option", f"must be one of {list(q.option_ids)}"
    elif q.kind == MULTIPLE:
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            return "invalid_type", "must be a list of option ids"
        unknown = [x for x in v if x not in q.option_ids]
        if unknown:
            return "invalid_option", f"unknown options {unknown}; choose from {list(q.option_ids)}"
        if len(set(v)) != len(v):
            return "duplicate_option", "an option is chosen twice"
        if not v:
            return "empty", "choose at least one option"
        if q.max_selections is not None and len(v) > q.max_selections:
            return "too_many", f"at most {q.max_selections} options may be chosen"
    elif q.kind == TEXT:
        if not isinstance(v, str):
            return "invalid_type", "must be text"
        if len(v) > q.text_limit:
            return "too_long", f"at most {q.text_limit} characters"
    elif q.kind == SCALE:
        if not _is_int(v):
            return "invalid_type", "must be a whole number"
        if not (q.min or 0) <= v <= (q.max or 0):
            return "out_of_range", f"must be between {_n(q.min)} and {_n(q.max)}"
    elif q.kind == NUMBER:
        if not _is_number(v):
            return "invalid_type", "must be a number"
        if q.integer and not _is_int(v):
            return "invalid_type", "must be a whole number"
        if (q.min is not None and v < q.min) or (q.max is not None and v > q.max):
            return "out_of_range", f"must be between {_n(q.min)} and {_n(q.max)}"
    elif q.kind == RANKING:
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            return "invalid_type", "must be a list of option ids, best first"
        if sorted(v) != sorted(q.option_ids):
            return "incomplete_ranking", f"must rank each of {list(q.option_ids)} exactly once"
    elif q.kind == YES_NO:
        if not isinstance(v, bool):
            return "invalid_type", "must be true or false"
    elif q.kind == MATRIX:
        if not isinstance(v, dict):
            return "invalid_type", "must be an object of row id to a whole number"
        rows = {r.id for r in q.rows}
        unknown = [k for k in v if k not in rows]
        if unknown:
            return "invalid_row", f"unknown rows {unknown}"
        for k, x in v.items():
            if not _is_int(x) or not (q.min or 0) <= x <= (q.max or 0):
                return "out_of_range", f"row {k!r} must be a whole number between {_n(q.min)} and {_n(q.max)}"
        if q.required and set(v) != rows:
            return "required", f"every row must be answered: {sorted(rows - set(v))} missing"
        if not v:
            return "empty", "answer at least one row"
    return None


def _n(x: float | None) -> str:
    if x is None:
        return "-"
    return str(int(x)) if float(x).is_integer() else str(x)


def _normal(q: Question, v: Any) -> Any:
    if q.kind in (SCALE,):
        return int(v)
    if q.kind == MATRIX:
        return {k: int(x) for k, x in v.items()}
    if q.kind == NUMBER and q.integer:
        return int(v)
    return v


def answer_error(question: str, code: str, detail: str) -> Error:
    """One bad answer, in the shape of the problem documents' ``errors`` (with the question's id beside)."""
    pointer = "/answers/" + question.replace("~", "~0").replace("/", "~1")  # a JSON pointer (RFC 6901)
    return {"in": "body", "pointer": pointer, "question": question, "code": code, "detail": detail}


def _blank(q: Question, given: Any) -> bool:
    return given is None or (q.kind == TEXT and isinstance(given, str) and not given.strip())


def validate_answers(qn: Questionnaire, answers: Mapping[str, Any]) -> tuple[dict[str, Any], list[Error]]:
    """Check every answer against its question, in questionnaire order; returns the accepted answers and
    one error per bad answer (all of them, so a respondent fixes everything at once)."""
    questions = qn.by_id()
    errors: list[Error] = []
    accepted: dict[str, Any] = {}
    for qid in answers:
        if qid not in questions:
            errors.append(answer_error(qid, "unknown_question", "no such question"))
    for q in qn.questions():
        given = answers.get(q.id)
        blank = _blank(q, given)
        if not is_shown(q, accepted, questions):
            if not blank:
                errors.append(answer_error(q.id, "not_shown", "this question is not shown for your answers"))
            continue
        if blank:
            if q.required:
                errors.append(answer_error(q.id, "required", "an answer is required"))
            continue
        problem = _answer_error(q, given)
        if problem:
            errors.append(answer_error(q.id, *problem))
            continue
        accepted[q.id] = _normal(q, given)
    return accepted, errors


# --- drafts (save and resume) ----------------------------------------------------------------------


def section_of(qn: Questionnaire, section_id: str) -> Section | None:
    return next((s for s in qn.sections if s.id == section_id), None)


def save_section(
    qn: Questionnaire, stored: Mapping[str, Any], section: Section, given: Mapping[str, Any], *, partial: bool
) -> tuple[dict[str, Any], list[Error]]:
    """A draft's answers after one section (one page) was answered: the section's answers replace the ones
    stored for it (a question left blank loses its old answer), the others stay.

    Errors concern the section's own questions only: a bad answer, and with ``partial`` false a required
    question left blank. Answers to questions that the answers now hide are dropped without an error: a page
    without script shows a conditional question beside the question it depends on, so a person may fill in
    both. The result keeps only answers a submission would accept."""
    own = {q.id for q in section.questions}
    errors = [
        answer_error(qid, "unknown_question", "no such question in this section") for qid in given if qid not in own
    ]
    merged = {k: v for k, v in stored.items() if k not in own} | {k: v for k, v in given.items() if k in own}
    questions = qn.by_id()
    accepted: dict[str, Any] = {}
    for q in qn.questions():
        value = merged.get(q.id)
        if not is_shown(q, accepted, questions):
            continue
        if _blank(q, value):
            if q.id in own and q.required and not partial:
                errors.append(answer_error(q.id, "required", "an answer is required"))
            continue
        problem = _answer_error(q, value)
        if problem:
            if q.id in own and not (partial and problem[0] == "required"):
                errors.append(answer_error(q.id, *problem))
            continue
        accepted[q.id] = _normal(q, value)
    return accepted, errors


def draft_summary(qn: Questionnaire, answers: Mapping[str, Any]) -> dict[str, Any]:
    """What a client needs to lead a person through a draft: per section whether it is shown now (a section
    whose every question is hidden is skipped) and which required questions are still open; the questions
    shown; and the errors a submission would get now."""
    questions = qn.by_id()
    accepted, errors = validate_answers(qn, answers)
    shown = [q.id for q in qn.questions() if is_shown(q, accepted, questions)]
    missing = {e["question"] for e in errors if e["code"] == "required"}
    sections = [
        {
            "id": s.id,
            "shown": any(q.id in shown for q in s.questions),
            "answered": [q.id for q in s.questions if q.id in accepted],
            "missing": [q.id for q in s.questions if q.id in missing],
        }
        for s in qn.sections
    ]
    return {"sections": sections, "shown": shown, "errors": errors}


# --- results -------------------------------------------------------------------------------------

RESPONSES = "n"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def counter_increments(qn: Questionnaire, accepted: Mapping[str, Any]) -> list[tuple[str, int, float]]:
    """The (key, count, total) increments one accepted response adds to the result counters, sorted by key
    so concurrent writers lock counter rows in one order."""
    out: dict[str, tuple[int, float]] = {RESPONSES: (1, 0.0)}

    def add(key: str, total: float = 0.0) -> None:
        c, t = out.get(key, (0, 0.0))
        out[key] = (c + 1, t + total)

    for q in qn.questions():
        if q.id not in accepted:
            continue
        v = accepted[q.id]
        base = f"q:{q.id}"
        add(f"{base}:answered")
        if q.kind == SINGLE:
            add(f"{base}:o:{v}")
        elif q.kind == MULTIPLE:
            for o in v:
                add(f"{base}:o:{o}")
        elif q.kind == YES_NO:
            add(f"{base}:o:{'yes' if v else 'no'}")
        elif q.kind == SCALE:
            add(f"{base}:v:{int(v)}")
            add(f"{base}:sum", float(v))
        elif q.kind == NUMBER:
            add(f"{base}:sum", float(v))
        elif q.kind == RANKING:
            for pos, o in enumerate(v, start=1):
                add(f"{base}:r:{o}", float(pos))
        elif q.kind == MATRIX:
            for row, x in v.items():
                add(f"{base}:m:{row}:{int(x)}")
                add(f"{base}:m:{row}:sum", float(x))
    return sorted((k, c, t) for k, (c, t) in out.items())


def _mean(count: int, total: float) -> float | None:
    return round(total / count, 4) if count else None


def results_from_counters(qn: Questionnaire, sums: Mapping[str, tuple[int, float]]) -> dict[str, Any]:
    """Results of every question from the summed counters: counts, distributions, means."""

    def c(key: str) -> int:
        return int(sums.get(key, (0, 0.0))[0])

    def t(key: str) -> float:
        return float(sums.get(key, (0, 0.0))[1])

    out: list[dict[str, Any]] = []
    for q in qn.questions():
        base = f"q:{q.id}"
        item: dict[str, Any] = {"id": q.id, "kind": q.kind, "text": q.text, "answered": c(f"{base}:answered")}
        if q.kind in (SINGLE, MULTIPLE):
            item["options"] = [{"id": o.id, "label": o.label, "count": c(f"{base}:o:{o.id}")} for o in q.options]
        elif q.kind == YES_NO:
            item["yes"] = c(f"{base}:o:yes")
            item["no"] = c(f"{base}:o:no")
        elif q.kind == SCALE:
            lo, hi = int(q.min or 0), int(q.max or 0)
            item["distribution"] = {str(v): c(f"{base}:v:{v}") for v in range(lo, hi + 1)}
            item["sum"] = t(f"{base}:sum")
            item["mean"] = _mean(c(f"{base}:sum"), t(f"{base}:sum"))
        elif q.kind == NUMBER:
            item["sum"] = t(f"{base}:sum")
            item["mean"] = _mean(c(f"{base}:sum"), t(f"{base}:sum"))
        elif q.kind == RANKING:
            item["options"] = [
                {"id": o.id, "label": o.label, "mean_position": _mean(c(f"{base}:r:{o.id}"), t(f"{base}:r:{o.id}"))}
                for o in q.options
            ]
        elif q.kind == MATRIX:
            lo, hi = int(q.min or 0), int(q.max or 0)
            item["rows"] = [
                {
                    "id": r.id,
                    "label": r.label,
                    "distribution": {str(v): c(f"{base}:m:{r.id}:{v}") for v in range(lo, hi + 1)},
                    "answered": c(f"{base}:m:{r.id}:sum"),
                    "mean": _mean(c(f"{base}:m:{r.id}:sum"), t(f"{base}:m:{r.id}:sum")),
                }
                for r in q.rows
            ]
        out.append(item)
    return {"responses": c(RESPONSES), "questions": out}


# --- export --------------------------------------------------------------------------------------


def export_columns(qn: Questionnaire) -> list[str]:
    cols: list[str] = []
    for q in qn.questions():
        if q.kind == MATRIX:
            cols += [f"{q.id}.{r.id}" for r in q.rows]
        else:
            cols.append(q.id)
    return cols


def export_cells(qn: Questionnaire, answers: Mapping[str, Any]) -> list[str | float | int | None]:
    """One response as cells under ``export_columns``: choices joined with ';', rankings best first."""
    cells: list[str | float | int | None] = []
    for q in qn.questions():
        v = answers.get(q.id)
        if q.kind == MATRIX:
            cells += [(v or {}).get(r.id) for r in q.rows]
        elif v is None:
            cells.append(None)
        elif q.kind in (MULTIPLE, RANKING):
            cells.append(";".join(v))
        elif q.kind == YES_NO:
            cells.append("yes" if v else "no")
        else:
            cells.append(v)
    return cells


# --- time ----------------------------------------------------------------------------------------


def day_of(moment: datetime) -> date:
    """The only time kept about a response: its day (UTC)."""
    return moment.date()


def window_status(state: str, opens_at: datetime, closes_at: datetime, now: datetime) -> str:
    """What a person sees now: ``not_yet_open``, ``open`` or ``closed`` (by time, not waiting for the clock loop)."""
    why = window_refusal(state, opens_at, closes_at, now)
    if why is None:
        return "open"
    return "closed" if why == "closed" else "not_yet_open"


def window_refusal(state: str, opens_at: datetime, closes_at: datetime, now: datetime) -> str | None:
    """Why a response cannot be taken now (None if it can)."""
    if state == "draft":
        return "not_published"
    if state == "closed" or now >= closes_at:
        return "closed"
    if now < opens_at:
        return "not_yet_open"
    return None


# --- access codes --------------------------------------------------------------------------------

#: No 0/O, 1/I/L: codes are typed from paper.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 12
#: Resume codes of drafts open a person's answers, so they are longer (16 characters, about 79 bits).
RESUME_CODE_LENGTH = 16


def new_code(length: int = CODE_LENGTH) -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))
    return "-".join(raw[i : i + 4] for i in range(0, length, 4))


def normalise_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def code_hash(secret: bytes, code: str) -> bytes:
    """What is stored of an access code: a keyed hash, so a leaked table does not yield usable codes."""
    return hmac.new(secret, normalise_code(code).encode(), hashlib.sha256).digest()


def submission_key_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


# --- refusals ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listed(FieldProblem):
    """A field problem as the rules above word it: the entry as listed (pointer and detail, and where given the
    question, the field and the code), so problem documents keep the members clients read."""

    entry: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.entry)


def listed(errors: Sequence[Error]) -> list[FieldProblem]:
    return [Listed(e.get("pointer", "/"), e.get("detail", ""), entry=e) for e in errors]


def invalid_survey(errors: Sequence[Error], detail: str = "The survey has problems.") -> Invalid:
    return Invalid("invalid-survey", "Invalid survey", detail=detail, fields=listed(errors))


def invalid_answers(errors: Sequence[Error]) -> Invalid:
    return Invalid(
        "invalid-answers", "Invalid answers", detail=f"{len(errors)} answer(s) need attention.", fields=listed(errors)
    )


def not_found(what: str = "survey") -> NotFound:
    return NotFound("not-found", detail=f"no such {what}")


def frozen(survey: Survey) -> Conflict:
    return Conflict(
        "survey-frozen",
        detail=f"the survey is {survey.state}; only drafts can be changed or published",
        state=survey.state,
    )


def not_a_token_survey() -> Conflict:
    return Conflict("not-a-token-survey", detail="the survey is open to everyone")


def code_invalid() -> Forbidden:
    return Forbidden("access-code-invalid", detail="the access code is unknown or used up")


def draft_not_found() -> NotFound:
    return NotFound(
        "draft-not-found",
        detail="no draft with this resume code; drafts end when they are submitted or the survey closes",
    )


def check_open(survey: Survey, now: datetime) -> None:
    """Refuses (409) when the survey takes no answers now: not yet open, closed, or not published."""
    why = window_refusal(survey.state, survey.opens_at, survey.closes_at, now)
    if why is None:
        return
    raise not_open(survey, why)


def not_open(survey: Survey, why: str) -> DomainError:
    return Conflict(
        f"survey-{why.replace('_', '-')}",
        "Survey is not open",
        detail=f"responses are taken from {survey.opens_at.isoformat()} until {survey.closes_at.isoformat()}",
        opens_at=survey.opens_at.isoformat(),
        closes_at=survey.closes_at.isoformat(),
    )


def check_results_visible(survey: Survey) -> None:
    """Public results: only of surveys that make them public, and only after closing."""
    if not survey.results_public:
        raise Forbidden("results-not-public", detail="this survey's results are not public")
    if survey.state != "closed":
        raise Conflict(
            "results-after-closing",
            "Results not yet available",
            detail=f"results are published after the survey closes at {survey.closes_at.isoformat()}",
            closes_at=survey.closes_at.isoformat(),
        )


def check_settings(opens_at: datetime, closes_at: datetime, qn: Questionnaire, offsets: Sequence[int]) -> None:
    """A survey as staff set it up: a window, a questionnaire, positive reminder offsets (seconds)."""
    errors = check_window(opens_at, closes_at)
    errors += check_questionnaire(qn)
    if any(o <= 0 for o in offsets):
        errors.append({"pointer": "/reminder_offsets_hours", "detail": "offsets are positive hours"})
    if errors:
        raise invalid_survey(errors)


def check_publishable(survey: Survey, now: datetime) -> None:
    if survey.state != "draft":
        raise frozen(survey)
    if survey.closes_at <= now:
        raise invalid_survey(
            [{"pointer": "/closes_at", "detail": "must be in the future to publish"}], detail="closes_at is in the past"
        )
