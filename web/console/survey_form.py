"""The console's survey forms as page logic, free of HTTP: the survey's basic data (title, dates, access) and one
question per page (every kind the surveys API knows, with its display condition), each read into the part of the
API's ``SurveyIn`` it edits, checked here first in plain German, and the API's remaining field errors shown at the
form's fields (meeting_form.api_errors).

The API takes a whole survey on ``PUT``: the pages read the survey, change one thing and send it all back.
Times are ``datetime-local`` fields in Berlin wall-clock time, as on the meeting pages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from web import i18n
from web.console.forms import Read, one
from web.console.meeting_form import local_input, slug_of
from web.i18n import BERLIN, Language
from web.problems import FormErrors

i18n.english(
    {
        "Titel der Umfrage": "Title of the survey",
        "Einleitung": "Introduction",
        "Geschätzte Dauer in Minuten": "Estimated minutes",
        "Beginn der Umfrage": "Survey opens",
        "Ende der Umfrage": "Survey closes",
        "Wer darf teilnehmen?": "Who may take part?",
        "Alle mit dem Link oder QR-Code": "Everyone with the link or QR code",
        "Nur mit Zugangscode aus einem Schreiben": "Only with an access code from a letter",
        "Ergebnisse nach dem Ende öffentlich zeigen": "Show the results publicly after closing",
        "Text der Frage": "Text of the question",
        "Erläuterung": "Explanation",
        "Antwortmöglichkeiten": "Options",
        "Höchstens so viele Antworten": "At most this many answers",
        "Höchstzahl an Zeichen": "Maximum number of characters",
        "Kleinster Wert": "Smallest value",
        "Größter Wert": "Largest value",
        "Nur ganze Zahlen": "Whole numbers only",
        "Zeilen der Matrix": "Rows of the matrix",
        "Pflichtfrage": "Required question",
        "Nur zeigen, wenn": "Show only if",
        "Abschnitt": "Section",
        "Titel des neuen Abschnitts": "Title of the new section",
        "Titel des Abschnitts": "Title of the section",
        "Beschreibung des Abschnitts": "Description of the section",
        "Eine Antwort aus mehreren": "One answer of several",
        "Mehrere Antworten möglich": "Several answers possible",
        "Freitext": "Free text",
        "Skala": "Scale",
        "Rangfolge": "Ranking",
        "Zahl": "Number",
        "Ja oder Nein": "Yes or no",
        "Matrix (Zeilen mit je einer Skala)": "Matrix (rows with a scale each)",
        "Ja": "Yes",
        "Nein": "No",
        "Bitte geben Sie einen Titel an.": "Please enter a title.",
        "Bitte geben Sie {label} als Datum mit Uhrzeit an.": "Please enter {label} as a date with a time.",
        "Bitte geben Sie {label} als ganze Zahl an.": "Please enter {label} as a whole number.",
        "Bitte geben Sie {label} als Zahl an.": "Please enter {label} as a number.",
        "Das Ende muss nach dem Beginn liegen.": "The end must be after the start.",
        "Bitte geben Sie den Text der Frage an.": "Please enter the text of the question.",
        "Bitte wählen Sie die Art der Antwort.": "Please choose the kind of answer.",
        "Bitte geben Sie mindestens zwei Antwortmöglichkeiten an, eine je Zeile.": "Please enter at least two "
        "options, one per line.",
        "Jede Antwortmöglichkeit darf nur einmal vorkommen.": "Each option may appear only once.",
        "Die Höchstzahl muss zwischen 1 und der Zahl der Antwortmöglichkeiten liegen.": "The maximum must be "
        "between 1 and the number of options.",
        "Die Höchstzahl an Zeichen muss zwischen 1 und 20000 liegen.": "The maximum number of characters must be "
        "between 1 and 20000.",
        "Eine Skala braucht einen kleinsten und einen größten Wert als ganze Zahlen.": "A scale needs a smallest and "
        "a largest value as whole numbers.",
        "Der größte Wert muss über dem kleinsten liegen, höchstens 100 Schritte.": "The largest value must be above "
        "the smallest, at most 100 steps.",
        "Der kleinste Wert darf nicht über dem größten liegen.": "The smallest value must not be above the largest.",
        "Bitte geben Sie mindestens eine Zeile an, eine je Zeile.": "Please enter at least one row, one per line.",
        "Bitte wählen Sie Antworten nur einer Frage.": "Please choose answers of one question only.",
        "Bitte geben Sie den Titel des neuen Abschnitts an.": "Please enter the title of the new section.",
        "Neuer Abschnitt": "New section",
        "Abschnitt {n}": "Section {n}",
        "„{question}“ ist „{answer}“": "“{question}” is “{answer}”",
    }
)

#: The kinds of question the surveys API knows (schemas.Kind), as staff read them.
KINDS = {
    "single_choice": "Eine Antwort aus mehreren",
    "multiple_choice": "Mehrere Antworten möglich",
    "free_text": "Freitext",
    "scale": "Skala",
    "ranking": "Rangfolge",
    "number": "Zahl",
    "yes_no": "Ja oder Nein",
    "matrix": "Matrix (Zeilen mit je einer Skala)",
}
WITH_OPTIONS = ("single_choice", "multiple_choice", "ranking")
#: Questions a display condition can look at (domain.CONDITIONABLE).
CONDITIONABLE = ("single_choice", "multiple_choice", "yes_no")
MAX_TEXT_LENGTH = 20_000
MAX_SCALE_SPAN = 100

BASIC_LABELS = {
    "title": "Titel der Umfrage",
    "introduction": "Einleitung",
    "estimated_minutes": "Geschätzte Dauer in Minuten",
    "opens_at": "Beginn der Umfrage",
    "closes_at": "Ende der Umfrage",
    "access": "Wer darf teilnehmen?",
    "results_public": "Ergebnisse nach dem Ende öffentlich zeigen",
}
QUESTION_LABELS = {
    "text": "Text der Frage",
    "kind": "Art der Antwort",
    "help": "Erläuterung",
    "options": "Antwortmöglichkeiten",
    "max_selections": "Höchstens so viele Antworten",
    "max_length": "Höchstzahl an Zeichen",
    "min": "Kleinster Wert",
    "max": "Größter Wert",
    "integer": "Nur ganze Zahlen",
    "rows": "Zeilen der Matrix",
    "required": "Pflichtfrage",
    "condition": "Nur zeigen, wenn",
    "section": "Abschnitt",
    "section_title": "Titel des neuen Abschnitts",
}
SECTION_LABELS = {"title": "Titel des Abschnitts", "description": "Beschreibung des Abschnitts"}
#: Fields the question page and the survey's first page share: pointers into ``/sections/{s}/questions/{q}/``.
QUESTION_FIELDS = tuple(QUESTION_LABELS)
NEW_SECTION = "neu"


def _time(raw: str, name: str, label: str, errors: FormErrors, _: Any) -> str | None:
    try:
        dt = datetime.fromisoformat(raw) if raw else None
    except ValueError:
        dt = None
    if dt is None:
        errors.add(name, _("Bitte geben Sie {label} als Datum mit Uhrzeit an.").format(label=_(label)))
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=BERLIN)
    return dt.isoformat()


def _number(raw: str, name: str, errors: FormErrors, _: Any, *, whole: bool) -> float | int | None:
    if not raw:
        return None
    text = raw.replace(",", ".")
    if whole:
        if re.fullmatch(r"-?\d{1,9}", text):
            return int(text)
        errors.add(name, _("Bitte geben Sie {label} als ganze Zahl an.").format(label=_(QUESTION_LABELS[name])))
        return None
    if re.fullmatch(r"-?\d{1,12}(\.\d{1,6})?", text):
        value = float(text)
        return int(value) if value.is_integer() else value
    errors.add(name, _("Bitte geben Sie {label} als Zahl an.").format(label=_(QUESTION_LABELS[name])))
    return None


# -- basic data ------------------------------------------------------------------------------------------------------


def basic_values(survey: Mapping[str, Any]) -> dict[str, Any]:
    minutes = survey.get("estimated_minutes")
    return {
        "title": survey.get("title", ""),
        "introduction": survey.get("introduction", ""),
        "estimated_minutes": "" if minutes is None else str(minutes),
        "opens_at": local_input(survey.get("opens_at")),
        "closes_at": local_input(survey.get("closes_at")),
        "access": survey.get("access", "public"),
        "results_public": bool(survey.get("results_public")),
    }


def read_basics(form: Mapping[str, Sequence[str]], lang: Language) -> Read:
    """The survey's own fields as a part of ``SurveyIn``."""
    _ = i18n.gettext(lang)
    errors = FormErrors()
    values: dict[str, Any] = {name: one(form, name) for name in BASIC_LABELS}
    values["results_public"] = values["results_public"] == "on"
    if values["access"] not in ("public", "token"):
        values["access"] = "public"
    if not values["title"]:
        errors.add("title", _("Bitte geben Sie einen Titel an."))
    body: dict[str, Any] = {
        "title": values["title"],
        "introduction": values["introduction"],
        "access": values["access"],
        "results_public": values["results_public"],
        "estimated_minutes": None,
    }
    if values["estimated_minutes"]:
        if re.fullmatch(r"\d{1,3}", values["estimated_minutes"]) and 1 <= int(values["estimated_minutes"]) <= 600:
            body["estimated_minutes"] = int(values["estimated_minutes"])
        else:
            label = _(BASIC_LABELS["estimated_minutes"])
            errors.add("estimated_minutes", _("Bitte geben Sie {label} als ganze Zahl an.").format(label=label))
    for name in ("opens_at", "closes_at"):
        body[name] = _time(values[name], name, BASIC_LABELS[name], errors, _)
    if (
        body["opens_at"]
        and body["closes_at"]
        and datetime.fromisoformat(body["closes_at"]) <= datetime.fromisoformat(body["opens_at"])
    ):
        errors.add("closes_at", _("Das Ende muss nach dem Beginn liegen."))
    return Read(body=body, values=values, errors=errors)


def survey_in(survey: Mapping[str, Any], sections: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """A survey from the API as the body ``PUT /surveys/{id}`` takes back (``sections`` replacing its own)."""
    body = {
        k: survey.get(k)
        for k in (
            "title",
            "slug",
            "introduction",
            "estimated_minutes",
            "opens_at",
            "closes_at",
            "results_public",
            "process_id",
            "access",
            "reminder_offsets_hours",
        )
    }
    body["sections"] = [dict(s) for s in (sections if sections is not None else survey.get("sections") or [])]
    return {k: v for k, v in body.items() if v is not None}


# -- questions -------------------------------------------------------------------------------------------------------


def all_questions(sections: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [dict(q) for s in sections for q in s.get("questions", [])]


def condition_choices(earlier: Sequence[Mapping[str, Any]], lang: Language) -> list[dict[str, Any]]:
    """Per earlier question a condition can look at: its text and its answers as ``(qid:value, label)``."""
    _ = i18n.gettext(lang)
    out = []
    for q in earlier:
        if q.get("kind") not in CONDITIONABLE:
            continue
        if q["kind"] == "yes_no":
            answers = [("yes", _("Ja")), ("no", _("Nein"))]
        else:
            answers = [(o["id"], o["label"]) for o in q.get("options", [])]
        out.append({"id": q["id"], "text": q["text"], "answers": [(f"{q['id']}:{v}", t) for v, t in answers]})
    return out


def condition_text(q: Mapping[str, Any], questions: Sequence[Mapping[str, Any]], lang: Language) -> str:
    """``„Nutzen Sie Online-Dienste?“ ist „Ja“`` for the question list."""
    _ = i18n.gettext(lang)
    cond = q.get("condition")
    if not cond:
        return ""
    target = next((t for t in questions if t["id"] == cond["question"]), None)
    if target is None:
        return ""
    names = {"yes": _("Ja"), "no": _("Nein")} | {o["id"]: o["label"] for o in target.get("options", [])}
    answers = " / ".join(names.get(v, v) for v in cond["any_of"])
    return _("„{question}“ ist „{answer}“").format(question=target["text"], answer=answers)


def question_values(q: Mapping[str, Any]) -> dict[str, Any]:
    def text(value: Any) -> str:
        if value is None:
            return ""
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)

    cond = q.get("condition") or {}
    return {
        "text": q.get("text", ""),
        "kind": q.get("kind", "single_choice"),
        "help": q.get("help", ""),
        "options": "\n".join(o["label"] for o in q.get("options", [])),
        "max_selections": text(q.get("max_selections")),
        "max_length": text(q.get("max_length")),
        "min": text(q.get("min")),
        "max": text(q.get("max")),
        "integer": bool(q.get("integer")),
        "rows": "\n".join(r["label"] for r in q.get("rows", [])),
        "required": bool(q.get("required")),
        "condition": [f"{cond['question']}:{v}" for v in cond.get("any_of", [])],
    }


def _items(text: str, old: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Lines as options (or rows); a label kept from before keeps its id, so answers already given still match."""
    known = {o["label"]: o["id"] for o in old}
    out: list[dict[str, str]] = []
    for label in (line.strip() for line in text.splitlines()):
        if not label:
            continue
        taken = [o["id"] for o in out]
        oid = known.get(label)
        if oid is None or oid in taken:
            oid = slug_of(label, taken + list(known.values()))
        out.append({"id": oid, "label": label[:500]})
    return out


def read_question(
    form: Mapping[str, Sequence[str]],
    lang: Language,
    *,
    taken: Sequence[str],
    earlier: Sequence[Mapping[str, Any]],
    old: Mapping[str, Any] | None = None,
) -> Read:
    """One question as ``QuestionIn``; ``taken`` are the survey's other question ids, ``earlier`` the questions a
    condition may look at, ``old`` the question as it was (its id and option ids are kept)."""
    _ = i18n.gettext(lang)
    errors = FormErrors()
    values: dict[str, Any] = {name: one(form, name) for name in QUESTION_LABELS if name != "condition"}
    values["options"] = (form.get("options") or [""])[0]
    values["rows"] = (form.get("rows") or [""])[0]
    values["required"] = values["required"] == "on"
    values["integer"] = values["integer"] == "on"
    values["condition"] = [v for v in form.get("condition") or [] if v]
    kind = values["kind"]
    if not values["text"]:
        errors.add("text", _("Bitte geben Sie den Text der Frage an."))
    if kind not in KINDS:
        errors.add("kind", _("Bitte wählen Sie die Art der Antwort."))
    q: dict[str, Any] = {
        "id": old["id"] if old else slug_of(values["text"] or "frage", list(taken)),
        "kind": kind,
        "text": values["text"][:2000],
        "required": values["required"],
        "help": values["help"][:2000],
    }
    if kind in WITH_OPTIONS:
        options = _items(values["options"], (old or {}).get("options", []))
        labels = [o["label"] for o in options]
        if len(options) < 2:
            errors.add("options", _("Bitte geben Sie mindestens zwei Antwortmöglichkeiten an, eine je Zeile."))
        elif len(set(labels)) != len(labels):
            errors.add("options", _("Jede Antwortmöglichkeit darf nur einmal vorkommen."))
        q["options"] = options
    if kind == "multiple_choice" and values["max_selections"]:
        most = _number(values["max_selections"], "max_selections", errors, _, whole=True)
        if most is not None and not 1 <= most <= len(q["options"]):
            errors.add(
                "max_selections", _("Die Höchstzahl muss zwischen 1 und der Zahl der Antwortmöglichkeiten liegen.")
            )
        q["max_selections"] = most
    if kind == "free_text" and values["max_length"]:
        most = _number(values["max_length"], "max_length", errors, _, whole=True)
        if most is not None and not 1 <= most <= MAX_TEXT_LENGTH:
            errors.add("max_length", _("Die Höchstzahl an Zeichen muss zwischen 1 und 20000 liegen."))
        q["max_length"] = most
    if kind in ("scale", "matrix"):
        lo = _number(values["min"], "min", errors, _, whole=True)
        hi = _number(values["max"], "max", errors, _, whole=True)
        if errors.of("min") is None and errors.of("max") is None:
            if lo is None or hi is None:
                errors.add("min", _("Eine Skala braucht einen kleinsten und einen größten Wert als ganze Zahlen."))
            elif not lo < hi or hi - lo > MAX_SCALE_SPAN:
                errors.add("max", _("Der größte Wert muss über dem kleinsten liegen, höchstens 100 Schritte."))
        q["min"], q["max"] = lo, hi
    if kind == "number":
        whole = values["integer"]
        lo = _number(values["min"], "min", errors, _, whole=whole)
        hi = _number(values["max"], "max", errors, _, whole=whole)
        if lo is not None and hi is not None and lo > hi:
            errors.add("min", _("Der kleinste Wert darf nicht über dem größten liegen."))
        q["min"], q["max"], q["integer"] = lo, hi, whole
    if kind == "matrix":
        q["rows"] = _items(values["rows"], (old or {}).get("rows", []))
        if not q["rows"]:
            errors.add("rows", _("Bitte geben Sie mindestens eine Zeile an, eine je Zeile."))
    if values["condition"]:
        allowed = {a for c in condition_choices(earlier, lang) for a, _t in c["answers"]}
        chosen = [v for v in values["condition"] if v in allowed]
        targets = {v.split(":", 1)[0] for v in chosen}
        if len(targets) > 1:
            errors.add("condition", _("Bitte wählen Sie Antworten nur einer Frage."))
        elif chosen:
            q["condition"] = {"question": targets.pop(), "any_of": [v.split(":", 1)[1] for v in chosen]}
    return Read(body={"question": {k: v for k, v in q.items() if v is not None}}, values=values, errors=errors)


def section_ids(sections: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(s.get("id") or f"s{i + 1}") for i, s in enumerate(sections)]


def new_section_id(sections: Sequence[Mapping[str, Any]]) -> str:
    taken = set(section_ids(sections))
    n = len(sections) + 1
    while f"s{n}" in taken:
        n += 1
    return f"s{n}"


def with_ids(sections: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The sections with their ids written out (the API numbers sections without one ``s1``, ``s2``…)."""
    return [{**s, "id": sid} for s, sid in zip(sections, section_ids(sections), strict=True)]
