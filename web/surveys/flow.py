"""Where a person is in a survey: one shown section per step, then the review page as the last step.

Which sections are shown comes from the surveys service (a draft's summary says it, given the answers so
far); this module only counts and finds neighbours, so the page and the service never disagree on a rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Section = Mapping[str, Any]
REVIEW = "pruefen"


@dataclass(frozen=True)
class Step:
    number: int
    total: int
    section: Section
    previous: str | None
    next: str

    @property
    def is_first(self) -> bool:
        return self.previous is None


#: What a question has when the service leaves it out (its JSON omits empty fields).
QUESTION_DEFAULTS: dict[str, Any] = {
    "required": False,
    "help": "",
    "options": [],
    "rows": [],
    "max_selections": None,
    "max_length": None,
    "min": None,
    "max": None,
    "integer": False,
    "condition": None,
}


def complete(survey: dict[str, Any]) -> dict[str, Any]:
    """The questionnaire with every field of every section and question present (templates are strict)."""
    for s in survey.get("sections", []):
        s.setdefault("title", "")
        s.setdefault("description", "")
        for q in s.get("questions", []):
            for k, v in QUESTION_DEFAULTS.items():
                q.setdefault(k, list(v) if isinstance(v, list) else v)
    return survey


def shown_sections(definition: Mapping[str, Any], summary: Mapping[str, Any]) -> list[Section]:
    shown = {s["id"] for s in summary.get("sections", []) if s.get("shown")}
    return [s for s in definition["sections"] if s["id"] in shown]


def total_steps(definition: Mapping[str, Any], summary: Mapping[str, Any]) -> int:
    """Shown sections plus the review page."""
    return len(shown_sections(definition, summary)) + 1


def step_of(definition: Mapping[str, Any], summary: Mapping[str, Any], section_id: str) -> Step | None:
    """The step showing ``section_id``; None when that section does not exist or is hidden now."""
    sections = shown_sections(definition, summary)
    ids = [s["id"] for s in sections]
    if section_id not in ids:
        return None
    i = ids.index(section_id)
    return Step(
        number=i + 1,
        total=len(ids) + 1,
        section=sections[i],
        previous=ids[i - 1] if i else None,
        next=ids[i + 1] if i + 1 < len(ids) else REVIEW,
    )


def resume_at(definition: Mapping[str, Any], summary: Mapping[str, Any]) -> str:
    """Where a resumed draft continues: the first shown section with a required answer missing or with
    nothing answered yet, else the review page."""
    by_id = {s["id"]: s for s in summary.get("sections", [])}
    for s in shown_sections(definition, summary):
        state = by_id[s["id"]]
        if state.get("missing") or not state.get("answered"):
            return str(s["id"])
    return REVIEW


def questions_of(section: Section) -> Sequence[Mapping[str, Any]]:
    return list(section.get("questions", []))


def page_questions(section: Section, summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The questions a step's page shows: those shown for the answers so far, and those whose condition
    looks at a question of this same page (the answer is not known before the page is sent; the script
    shows and hides them, without script they stand with a sentence saying when to answer them)."""
    shown = set(summary.get("shown", []))
    own = {q["id"] for q in section.get("questions", [])}
    return [
        q
        for q in section.get("questions", [])
        if q["id"] in shown or (q.get("condition") and q["condition"]["question"] in own)
    ]
