"""The staff console's meeting forms as page logic, free of HTTP: one section of a meeting per page, each read
into the part of the registration API's ``MeetingIn`` / ``MeetingPatch`` it edits, the page's own checks, and the
API's field errors in German at the form's fields.

Times are ``datetime-local`` fields: wall-clock times in Europe/Berlin, which the API takes as they are (a time
without an offset is Berlin time there too).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from web import i18n
from web.client import ApiProblem
from web.console.forms import Read, one
from web.i18n import BERLIN, Language
from web.problems import FormErrors, form_errors, pointer_field

i18n.english(
    {
        "Titel": "Title",
        "Beschreibung": "Description",
        "Beginn": "Start",
        "Ende": "End",
        "Name des Ortes": "Name of the venue",
        "Straße und Hausnummer": "Street and number",
        "Postleitzahl": "Postcode",
        "Stadt oder Gemeinde": "Town",
        "Ort": "Venue",
        "Titel und Zeit": "Title and time",
        "Plätze und Anmeldung": "Seats and registration",
        "Alter und Einverständnis": "Age and consent",
        "Hinweise zur Barrierefreiheit": "Accessibility notes",
        "Plätze": "Seats",
        "Warteliste": "Waiting list",
        "Anmeldung ab": "Registration opens",
        "Anmeldung bis": "Registration closes",
        "Begleitpersonen je Anmeldung": "Companions per registration",
        "Mindestalter": "Minimum age",
        "Höchstalter": "Maximum age",
        "Einverständnis der Erziehungsberechtigten": "Consent of a parent or guardian",
        "Frage": "Question",
        "Art der Antwort": "Kind of answer",
        "Antwortmöglichkeiten": "Options",
        "Pflichtfrage": "Required question",
        "Text der Bestätigung": "Text of the confirmation",
        "Plätze im Zeitfenster": "Seats in the time slot",
        "Bitte geben Sie einen Titel an.": "Please enter a title.",
        "Bitte geben Sie {label} als Datum mit Uhrzeit an.": "Please enter {label} as a date with a time.",
        "Bitte geben Sie {label} als ganze Zahl an.": "Please enter {label} as a whole number.",
        "Das Ende muss nach dem Beginn liegen.": "The end must be after the start.",
        "Das Ende der Anmeldung muss nach ihrem Beginn und spätestens am Ende der Veranstaltung liegen.": "The "
        "registration must close after it opens and no later than the end of the event.",
        "Das Höchstalter darf nicht unter dem Mindestalter liegen.": "The maximum age must not be below the minimum "
        "age.",
        "Bitte geben Sie den Namen des Ortes an.": "Please enter the name of the venue.",
        "Bitte geben Sie eine Postleitzahl mit fünf Ziffern an.": "Please enter a postcode of five digits.",
        "Bitte geben Sie den Text der Frage an.": "Please enter the text of the question.",
        "Bitte geben Sie mindestens zwei Antwortmöglichkeiten an, eine je Zeile.": "Please enter at least two "
        "options, one per line.",
        "Diese Art von Frage hat keine Antwortmöglichkeiten.": "This kind of question has no options.",
        "Jede Antwortmöglichkeit darf nur einmal vorkommen.": "Each option may appear only once.",
        "Bitte geben Sie den Text der Bestätigung an.": "Please enter the text of the confirmation.",
        "Das Zeitfenster muss innerhalb der Veranstaltung liegen.": "The time slot must lie within the event.",
        "Eine Veranstaltung mit Zeitfenstern hat Plätze je Zeitfenster. Bitte leeren Sie zuerst das Feld "
        "„Plätze“ unter „Plätze und Anmeldung“.": "An event with time slots has seats per slot. Please first "
        "empty the field “Seats” under “Seats and registration”.",
        "Freitext": "Free text",
        "Ja oder Nein": "Yes or no",
        "Eine Antwort aus mehreren": "One answer of several",
        "Mehrere Antworten möglich": "Several answers possible",
    }
)

#: The kinds of question the registration API knows, as staff read them.
QUESTION_KINDS = {
    "text": "Freitext",
    "yes_no": "Ja oder Nein",
    "single": "Eine Antwort aus mehreren",
    "multiple": "Mehrere Antworten möglich",
}


@dataclass(frozen=True)
class Section:
    """One page of the meeting: the API fields it edits and how its form fields are named and labelled."""

    slug: str
    heading: str
    fields: tuple[str, ...]
    labels: Mapping[str, str] = field(default_factory=dict)


SECTIONS: dict[str, Section] = {
    s.slug: s
    for s in (
        Section(
            "grunddaten",
            "Titel und Zeit",
            ("title", "description", "starts_at", "ends_at"),
            {"title": "Titel", "description": "Beschreibung", "starts_at": "Beginn", "ends_at": "Ende"},
        ),
        Section(
            "ort",
            "Ort",
            ("venue.name", "venue.street", "venue.postal_code", "venue.city", "venue.accessibility"),
            {
                "venue.name": "Name des Ortes",
                "venue.street": "Straße und Hausnummer",
                "venue.postal_code": "Postleitzahl",
                "venue.city": "Stadt oder Gemeinde",
                "venue.accessibility": "Hinweise zur Barrierefreiheit",
            },
        ),
        Section(
            "anmeldung",
            "Plätze und Anmeldung",
            ("capacity", "waitlist", "registration_opens_at", "registration_closes_at", "max_companions"),
            {
                "capacity": "Plätze",
                "waitlist": "Warteliste",
                "registration_opens_at": "Anmeldung ab",
                "registration_closes_at": "Anmeldung bis",
                "max_companions": "Begleitpersonen je Anmeldung",
            },
        ),
        Section(
            "teilnahme",
            "Alter und Einverständnis",
            ("min_age", "max_age", "guardian_consent"),
            {
                "min_age": "Mindestalter",
                "max_age": "Höchstalter",
                "guardian_consent": "Einverständnis der Erziehungsberechtigten",
            },
        ),
    )
}

#: The list sections: one item added per form, each item removable.
QUESTION_LABELS = {
    "label": "Frage",
    "kind": "Art der Antwort",
    "options": "Antwortmöglichkeiten",
    "required": "Pflichtfrage",
}
ATTESTATION_LABELS = {"text": "Text der Bestätigung"}
SLOT_LABELS = {"starts_at": "Beginn", "ends_at": "Ende", "capacity": "Plätze im Zeitfenster"}

#: (field, code) -> a message clearer than the general one for that code.
SPECIFIC = {
    ("ends_at", "order"): "Das Ende muss nach dem Beginn liegen.",
    ("registration_closes_at", "order"): "Das Ende der Anmeldung muss nach ihrem Beginn und spätestens am Ende "
    "der Veranstaltung liegen.",
    ("max_age", "order"): "Das Höchstalter darf nicht unter dem Mindestalter liegen.",
    ("venue.postal_code", "string_pattern_mismatch"): "Bitte geben Sie eine Postleitzahl mit fünf Ziffern an.",
    ("venue.name", "missing"): "Bitte geben Sie den Namen des Ortes an.",
    ("venue.name", "string_too_short"): "Bitte geben Sie den Namen des Ortes an.",
    ("options", "too_short"): "Bitte geben Sie mindestens zwei Antwortmöglichkeiten an, eine je Zeile.",
    ("options", "unexpected"): "Diese Art von Frage hat keine Antwortmöglichkeiten.",
    ("options", "duplicate"): "Jede Antwortmöglichkeit darf nur einmal vorkommen.",
    ("starts_at", "range"): "Das Zeitfenster muss innerhalb der Veranstaltung liegen.",
    ("capacity", "unexpected"): "Eine Veranstaltung mit Zeitfenstern hat Plätze je Zeitfenster. Bitte leeren Sie "
    "zuerst das Feld „Plätze“ unter „Plätze und Anmeldung“.",
}


def local_input(value: str | datetime | None) -> str:
    """An API time as a ``datetime-local`` field's value, in Berlin wall-clock time."""
    if not value:
        return ""
    dt = datetime.fromisoformat(value) if isinstance(value, str) else value
    if dt.tzinfo is not None:
        dt = dt.astimezone(BERLIN)
    return dt.strftime("%Y-%m-%dT%H:%M")


def _time(raw: str, name: str, label: str, errors: FormErrors, _: Any) -> str | None:
    if not raw:
        return None
    try:
        datetime.fromisoformat(raw)
    except ValueError:
        errors.add(name, _("Bitte geben Sie {label} als Datum mit Uhrzeit an.").format(label=_(label)))
        return None
    return raw


def _int(raw: str, name: str, label: str, errors: FormErrors, _: Any) -> int | None:
    if not raw:
        return None
    if re.fullmatch(r"\d{1,6}", raw):
        return int(raw)
    errors.add(name, _("Bitte geben Sie {label} als ganze Zahl an.").format(label=_(label)))
    return None


def values_of(meeting: Mapping[str, Any]) -> dict[str, Any]:
    """A meeting from the API as the section forms' field values."""
    venue = meeting.get("venue") or {}
    out: dict[str, Any] = {
        "title": meeting.get("title", ""),
        "description": meeting.get("description", ""),
        "starts_at": local_input(meeting.get("starts_at")),
        "ends_at": local_input(meeting.get("ends_at")),
        "capacity": "" if meeting.get("capacity") is None or meeting.get("slots") else str(meeting["capacity"]),
        "waitlist": bool(meeting.get("waitlist", True)),
        "registration_opens_at": local_input(meeting.get("registration_opens_at")),
        "registration_closes_at": local_input(meeting.get("registration_closes_at")),
        "max_companions": str(meeting.get("max_companions") or 0),
        "min_age": "" if meeting.get("min_age") is None else str(meeting["min_age"]),
        "max_age": "" if meeting.get("max_age") is None else str(meeting["max_age"]),
        "guardian_consent": bool(meeting.get("guardian_consent")),
    }
    for key in ("name", "street", "postal_code", "city", "accessibility"):
        out[f"venue.{key}"] = venue.get(key) or ""
    return out


def read_section(
    section: Section, form: Mapping[str, Sequence[str]], lang: Language, *, has_slots: bool = False
) -> Read:
    """The section's fields as the PATCH body (for ``grunddaten`` also the create body's required part)."""
    _ = i18n.gettext(lang)
    errors = FormErrors()
    values: dict[str, Any] = {}
    body: dict[str, Any] = {}
    text = {name: one(form, name) for name in section.fields}
    if section.slug == "grunddaten":
        values.update(text)
        if not text["title"]:
            errors.add("title", _("Bitte geben Sie einen Titel an."))
        body["title"] = text["title"]
        body["description"] = text["description"]
        for name in ("starts_at", "ends_at"):
            value = _time(text[name], name, section.labels[name], errors, _)
            if not text[name]:
                errors.add(
                    name, _("Bitte geben Sie {label} als Datum mit Uhrzeit an.").format(label=_(section.labels[name]))
                )
            body[name] = value
    elif section.slug == "ort":
        values.update(text)
        venue = {k.split(".", 1)[1]: v for k, v in text.items() if v}
        if venue and not venue.get("name"):
            errors.add("venue.name", _("Bitte geben Sie den Namen des Ortes an."))
        body["venue"] = venue or None
    elif section.slug == "anmeldung":
        values.update(text)
        values["waitlist"] = text["waitlist"] == "on"
        body["waitlist"] = values["waitlist"]
        if not has_slots:
            body["capacity"] = _int(text["capacity"], "capacity", section.labels["capacity"], errors, _)
        for name in ("registration_opens_at", "registration_closes_at"):
            body[name] = _time(text[name], name, section.labels[name], errors, _)
        body["max_companions"] = _int(
            text["max_companions"] or "0", "max_companions", "Begleitpersonen je Anmeldung", errors, _
        )
    elif section.slug == "teilnahme":
        values.update(text)
        values["guardian_consent"] = text["guardian_consent"] == "on"
        body["guardian_consent"] = values["guardian_consent"]
        for name in ("min_age", "max_age"):
            body[name] = _int(text[name], name, section.labels[name], errors, _)
    return Read(body=body, values=values, errors=errors)


def slug_of(text: str, taken: Sequence[str]) -> str:
    """A stable id for a question or attestation from its text (``^[a-z0-9_-]+$``, at most 40), unique."""
    plain = text.lower().replace("ß", "ss").replace("ä", "ae").replace("ö", "oe").replace("ü", "ue")
    plain = unicodedata.normalize("NFKD", plain)
    base = re.sub(r"[^a-z0-9]+", "-", plain.encode("ascii", "ignore").decode()).strip("-")[:32] or "frage"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def read_question(form: Mapping[str, Sequence[str]], existing: Sequence[Mapping[str, Any]], lang: Language) -> Read:
    _ = i18n.gettext(lang)
    errors = FormErrors()
    label, kind = one(form, "label"), one(form, "kind")
    options_text = (form.get("options") or [""])[0]
    options = [o.strip() for o in options_text.splitlines() if o.strip()]
    values = {"label": label, "kind": kind, "options": options_text, "required": one(form, "required") == "on"}
    if not label:
        errors.add("label", _("Bitte geben Sie den Text der Frage an."))
    if kind not in QUESTION_KINDS:
        kind = "text"
        values["kind"] = kind
    question = {
        "id": slug_of(label, [q["id"] for q in existing]),
        "label": label,
        "kind": kind,
        "required": values["required"],
        "options": options,
    }
    return Read(body={"question": question}, values=values, errors=errors)


def read_attestation(form: Mapping[str, Sequence[str]], existing: Sequence[Mapping[str, Any]], lang: Language) -> Read:
    _ = i18n.gettext(lang)
    errors = FormErrors()
    text = one(form, "text")
    if not text:
        errors.add("text", _("Bitte geben Sie den Text der Bestätigung an."))
    attestation = {"id": slug_of(text, [a["id"] for a in existing]), "text": text}
    return Read(body={"attestation": attestation}, values={"text": text}, errors=errors)


def read_slot(form: Mapping[str, Sequence[str]], lang: Language) -> Read:
    _ = i18n.gettext(lang)
    errors = FormErrors()
    text = {name: one(form, name) for name in SLOT_LABELS}
    slot: dict[str, Any] = {}
    for name in ("starts_at", "ends_at"):
        slot[name] = _time(text[name], name, SLOT_LABELS[name], errors, _)
        if not text[name]:
            errors.add(name, _("Bitte geben Sie {label} als Datum mit Uhrzeit an.").format(label=_(SLOT_LABELS[name])))
    slot["capacity"] = _int(text["capacity"], "capacity", SLOT_LABELS["capacity"], errors, _)
    return Read(body={"slot": slot}, values=text, errors=errors)


def api_errors(
    problem: ApiProblem,
    labels: Mapping[str, str],
    lang: Language,
    *,
    item: str | None = None,
    order: Sequence[str] = (),
) -> FormErrors:
    """The API's problem at the form's fields, in German; ``item`` (``questions/3``) is the list entry the form
    adds, whose pointers (``/questions/3/options``) belong to the form's own fields (``options``)."""
    _ = i18n.gettext(lang)
    if item is not None:
        prefix = "/" + item.strip("/") + "/"
        errors = []
        for e in problem.errors:
            pointer = str(e.get("pointer", ""))
            if pointer.startswith(prefix):
                e = {**e, "pointer": "/" + pointer[len(prefix) :]}
            elif pointer == prefix.rstrip("/"):
                # The whole item (a slot outside the meeting): its first field.
                e = {**e, "pointer": "/" + next(iter(labels))}
            errors.append(e)
        problem = ApiProblem(problem.status, problem.type, problem.title, problem.detail, errors, problem.body)
    translated = {k: _(v) for k, v in labels.items()}
    out = form_errors(problem, translated, lang, order)
    for e in problem.errors:
        name = pointer_field(str(e.get("pointer", "")))
        specific = SPECIFIC.get((name, str(e.get("code"))))
        if specific:
            for f in out.fields:
                if f.name == name:
                    f.message = _(specific)
    if out.fields:
        out.summary = ""
    return out
