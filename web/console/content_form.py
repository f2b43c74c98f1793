"""The console's content forms as page logic, free of HTTP: which fields each form has, how a submitted form
becomes the content API's body (texts as ``{"de": ...}``), the page's own checks, the API's field errors in
German at the form's fields, and the QR scan chart (a small SVG drawn on the server).

The console edits the German texts; English translations stay as the API holds them (a PATCH of ``title``
replaces the whole text, so the English is sent back unchanged with it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from web import i18n
from web.client import ApiProblem
from web.console.forms import Read, one
from web.i18n import Language
from web.problems import FormErrors, form_errors, pointer_field

i18n.english(
    {
        "Kurzname für die Adresse": "Short name for the address",
        "Kleinbuchstaben, Ziffern und Bindestriche, zum Beispiel „radweg-nord“. Steht in der Adresse der Seite.": (
            "Lower-case letters, digits and hyphens, for example “cycle-path-north”. Appears in the page's address."
        ),
        "Titel": "Title",
        "Motto": "Motto",
        "Kurzbeschreibung": "Summary",
        "Beschreibung": "Description",
        "Beginn": "Start",
        "Ende": "End",
        "Nummer": "Number",
        "Art": "Kind",
        "Text": "Text",
        "Name": "Name",
        "Funktion": "Role",
        "Stelle": "Office",
        "E-Mail-Adresse": "E-mail address",
        "Telefonnummer": "Phone number",
        "Anschrift": "Address",
        "Sprechzeiten": "Office hours",
        "Adresse (URL)": "Address (URL)",
        "Dateiart": "File type",
        "Bezeichnung": "Label",
        "Betrag in Euro": "Amount in euros",
        "Förderprogramm oder Geldgeber": "Programme or funder",
        "Zeitraum": "Period",
        "Verweis auf": "Refers to",
        "Kennung (ID)": "Identifier (ID)",
        "Inhalt (Markdown)": "Content (Markdown)",
        "Verfahren": "Process",
        "keinem Verfahren zugeordnet": "not part of a process",
        "Ziel": "Target",
        "Zieladresse": "Target address",
        "Fehlerkorrektur": "Error correction",
        "Schritt": "Step",
        "Maßnahme": "Measure",
        "Sofortprojekt": "Quick project",
        "Veranstaltung": "Event",
        "Umfrage": "Survey",
        "Seite": "Page",
        "Adresse im Netz": "Web address",
        "App": "App",
        "Bitte geben Sie {label} an.": "Please enter {label}.",
        "Bitte geben Sie {label} als Datum an.": "Please enter {label} as a date.",
        "Bitte geben Sie {label} als ganze Zahl an.": "Please enter {label} as a whole number.",
        "Das Ende darf nicht vor dem Beginn liegen.": "The end must not be before the start.",
        "Der Kurzname darf nur Kleinbuchstaben, Ziffern und einzelne Bindestriche enthalten.": "The short name may "
        "contain only lower-case letters, digits and single hyphens.",
        "Dieser Kurzname ist schon vergeben. Bitte wählen Sie einen anderen.": "This short name is taken. Please "
        "choose another.",
        "Diese Nummer ist schon vergeben.": "This number is taken.",
        "Die Nummer besteht aus Zahlen mit Punkten dazwischen, zum Beispiel 1.2.": "The number consists of numbers "
        "with dots in between, for example 1.2.",
        "Bitte geben Sie eine vollständige Adresse an, die mit https:// beginnt.": "Please enter a complete "
        "address starting with https://.",
        "Bitte geben Sie die Kennung als UUID an (36 Zeichen mit Bindestrichen).": "Please enter the identifier as "
        "a UUID (36 characters with hyphens).",
        "L (7 %)": "L (7 %)",
        "M (15 %, üblich)": "M (15 %, usual)",
        "Q (25 %)": "Q (25 %)",
        "H (30 %, für Codes mit Logo)": "H (30 %, for codes with a logo)",
        "Scans je Tag, letzte {n} Tage: {total} insgesamt": "Scans per day, last {n} days: {total} in all",
        "Höchster Wert: {n} am {day}": "Highest value: {n} on {day}",
    }
)

STEP_KINDS = (("step", "Schritt"), ("measure", "Maßnahme"), ("quick_project", "Sofortprojekt"))
REF_KINDS = (("meeting", "Veranstaltung"), ("survey", "Umfrage"))
TARGET_KINDS = (
    ("url", "Adresse im Netz"),
    ("page", "Seite"),
    ("survey", "Umfrage"),
    ("meeting", "Veranstaltung"),
    ("app", "App"),
)
EC_LEVELS = (("M", "M (15 %, üblich)"), ("L", "L (7 %)"), ("Q", "Q (25 %)"), ("H", "H (30 %, für Codes mit Logo)"))


@dataclass(frozen=True)
class Field:
    """One form field: its API name, label, kind (``text``, ``textarea``, ``date``, ``int``, ``select``,
    ``email``, ``url``), whether it is required, and whether the API takes it as a ``{de, en}`` text."""

    name: str
    label: str
    kind: str = "text"
    required: bool = False
    translated: bool = False
    hint: str = ""
    options: tuple[tuple[str, str], ...] = ()


def text(name: str, label: str, kind: str = "text", required: bool = False, hint: str = "") -> Field:
    """A translated text field (the German is edited here)."""
    return Field(name, label, kind, required, True, hint)


SLUG_HINT = "Kleinbuchstaben, Ziffern und Bindestriche, zum Beispiel „radweg-nord“. Steht in der Adresse der Seite."
PROCESS_FIELDS = (
    text("title", "Titel", required=True),
    Field("slug", "Kurzname für die Adresse", required=True, hint=SLUG_HINT),
    text("motto", "Motto"),
    text("summary", "Kurzbeschreibung", "textarea"),
)
ARTICLE_FIELDS = (
    text("title", "Titel", required=True),
    Field("slug", "Kurzname für die Adresse", required=True, hint=SLUG_HINT),
    text("summary", "Kurzbeschreibung", "textarea"),
    text("body", "Inhalt (Markdown)", "textarea", required=True),
)
QR_FIELDS = (
    Field("label", "Bezeichnung", hint="Wofür der Code gedruckt wird, zum Beispiel „Plakat Rathaus“."),
    Field("target_kind", "Ziel", "select", required=True, options=TARGET_KINDS),
    Field("target_url", "Zieladresse", "url", required=True, hint="Wohin der Code führt, mit https://."),
    Field("error_correction", "Fehlerkorrektur", "select", options=EC_LEVELS),
)
RETARGET_FIELDS = QR_FIELDS[:3]


@dataclass(frozen=True)
class Part:
    """A list of a process's parts edited on its own page: listed, one added per form, each removable."""

    slug: str  # the console path segment
    heading: str
    api: str  # the content API's collection (POST processes/{id}/<api>, DELETE <api>/{id})
    key: str  # the key in the staff process answer
    fields: tuple[Field, ...]
    add: str  # the add button's text


PARTS: dict[str, Part] = {
    p.slug: p
    for p in (
        Part(
            "phasen",
            "Phasen",
            "phases",
            "phases",
            (
                text("title", "Titel", required=True),
                Field("starts_on", "Beginn", "date", required=True),
                Field("ends_on", "Ende", "date", hint="Leer lassen, wenn die Phase offen endet."),
                text("description", "Beschreibung", "textarea"),
            ),
            "Phase hinzufügen",
        ),
        Part(
            "schritte",
            "Schritte und Maßnahmen",
            "steps",
            "steps",
            (
                Field("number", "Nummer", required=True, hint="Zum Beispiel 1.2; die Liste wird danach geordnet."),
                Field("kind", "Art", "select", options=STEP_KINDS),
                text("title", "Titel", required=True),
                text("body", "Beschreibung", "textarea", hint="Markdown ist möglich."),
            ),
            "Schritt hinzufügen",
        ),
        Part(
            "foerderung",
            "Förderung",
            "funding",
            "funding",
            (
                text("label", "Bezeichnung", required=True),
                Field("amount", "Betrag in Euro", "int", required=True, hint="Ganze Euro, ohne Punkte."),
                text("source", "Förderprogramm oder Geldgeber"),
                text("period", "Zeitraum", hint="Zum Beispiel „2024 bis 2026“."),
            ),
            "Förderung hinzufügen",
        ),
        Part(
            "ansprechpersonen",
            "Ansprechpersonen",
            "contacts",
            "contacts",
            (
                Field("name", "Name", required=True),
                text("role", "Funktion"),
                text("unit", "Stelle"),
                Field("email", "E-Mail-Adresse", "email"),
                Field("phone", "Telefonnummer"),
                Field("address", "Anschrift", "textarea"),
                text("opening_hours", "Sprechzeiten"),
            ),
            "Ansprechperson hinzufügen",
        ),
        Part(
            "dokumente",
            "Dokumente und Links",
            "attachments",
            "attachments",
            (
                text("title", "Titel", required=True),
                Field("url", "Adresse (URL)", "url", required=True),
                Field("media_type", "Dateiart", hint="Zum Beispiel PDF."),
            ),
            "Dokument hinzufügen",
        ),
        Part(
            "verweise",
            "Veranstaltungen und Umfragen",
            "references",
            "references",
            (
                Field("kind", "Verweis auf", "select", required=True, options=REF_KINDS),
                Field(
                    "ref_id",
                    "Kennung (ID)",
                    required=True,
                    hint="Die Kennung steht in der Adresse der Veranstaltung oder Umfrage in der Verwaltung.",
                ),
            ),
            "Verweis hinzufügen",
        ),
    )
}

i18n.english(
    {
        "Phasen": "Phases",
        "Schritte und Maßnahmen": "Steps and measures",
        "Förderung": "Funding",
        "Ansprechpersonen": "Contact persons",
        "Dokumente und Links": "Documents and links",
        "Veranstaltungen und Umfragen": "Events and surveys",
        "Phase hinzufügen": "Add a phase",
        "Schritt hinzufügen": "Add a step",
        "Förderung hinzufügen": "Add funding",
        "Ansprechperson hinzufügen": "Add a contact person",
        "Dokument hinzufügen": "Add a document",
        "Verweis hinzufügen": "Add a reference",
        "Leer lassen, wenn die Phase offen endet.": "Leave empty if the phase is open-ended.",
        "Zum Beispiel 1.2; die Liste wird danach geordnet.": "For example 1.2; the list is ordered by it.",
        "Markdown ist möglich.": "Markdown is allowed.",
        "Ganze Euro, ohne Punkte.": "Whole euros, without separators.",
        "Zum Beispiel „2024 bis 2026“.": "For example “2024 to 2026”.",
        "Zum Beispiel PDF.": "For example PDF.",
        "Die Kennung steht in der Adresse der Veranstaltung oder Umfrage in der Verwaltung.": "The identifier is "
        "in the address of the event or survey in the administration.",
        "Wofür der Code gedruckt wird, zum Beispiel „Plakat Rathaus“.": "What the code is printed for, for example "
        "“Town hall poster”.",
        "Wohin der Code führt, mit https://.": "Where the code leads, with https://.",
    }
)

#: (field, code) -> a message clearer than the general one for that code.
SPECIFIC = {
    ("slug", "string_pattern_mismatch"): "Der Kurzname darf nur Kleinbuchstaben, Ziffern und einzelne Bindestriche "
    "enthalten.",
    ("slug", "unique"): "Dieser Kurzname ist schon vergeben. Bitte wählen Sie einen anderen.",
    ("number", "unique"): "Diese Nummer ist schon vergeben.",
    ("number", "string_pattern_mismatch"): "Die Nummer besteht aus Zahlen mit Punkten dazwischen, zum Beispiel 1.2.",
    ("url", "url_parsing"): "Bitte geben Sie eine vollständige Adresse an, die mit https:// beginnt.",
    ("url", "url_scheme"): "Bitte geben Sie eine vollständige Adresse an, die mit https:// beginnt.",
    ("target_url", "url_parsing"): "Bitte geben Sie eine vollständige Adresse an, die mit https:// beginnt.",
    ("target_url", "url_scheme"): "Bitte geben Sie eine vollständige Adresse an, die mit https:// beginnt.",
    ("ref_id", "uuid_parsing"): "Bitte geben Sie die Kennung als UUID an (36 Zeichen mit Bindestrichen).",
}

_UUID = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")


def labels_of(fields: Sequence[Field]) -> dict[str, str]:
    return {f.name: f.label for f in fields}


def read(
    fields: Sequence[Field],
    form: Mapping[str, Sequence[str]],
    lang: Language,
    existing: Mapping[str, Any] | None = None,
) -> Read:
    """The form as an API body; an empty optional field is left out (``None`` in ``values``). ``existing`` is
    the stored item: its other languages are sent back with an edited German text."""
    _ = i18n.gettext(lang)
    errors = FormErrors()
    body: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for f in fields:
        raw = (form.get(f.name) or [""])[0] if f.kind == "textarea" else one(form, f.name)
        raw = raw.replace("\r\n", "\n").strip() if f.kind == "textarea" else raw
        values[f.name] = raw
        label = _(f.label)
        if not raw:
            if f.required:
                errors.add(f.name, _("Bitte geben Sie {label} an.").format(label=label))
            body[f.name] = None
            continue
        if f.kind == "date":
            try:
                body[f.name] = date.fromisoformat(raw).isoformat()
            except ValueError:
                errors.add(f.name, _("Bitte geben Sie {label} als Datum an.").format(label=label))
            continue
        if f.kind == "int":
            if re.fullmatch(r"\d{1,12}", raw):
                body[f.name] = int(raw)
            else:
                errors.add(f.name, _("Bitte geben Sie {label} als ganze Zahl an.").format(label=label))
            continue
        if f.name == "ref_id" and not _UUID.match(raw):
            errors.add(f.name, _(SPECIFIC[("ref_id", "uuid_parsing")]))
            continue
        if f.translated:
            old = (existing or {}).get(f.name) or {}
            body[f.name] = {**({"en": old["en"]} if old.get("en") else {}), "de": raw}
        else:
            body[f.name] = raw
    starts, ends = body.get("starts_on"), body.get("ends_on")
    if starts and ends and ends < starts:
        errors.add("ends_on", _("Das Ende darf nicht vor dem Beginn liegen."))
    return Read(body=body, values=values, errors=errors)


def present(body: Mapping[str, Any]) -> dict[str, Any]:
    """A create body: optional fields left empty are left out."""
    return {k: v for k, v in body.items() if v is not None}


def values_of(fields: Sequence[Field], item: Mapping[str, Any]) -> dict[str, Any]:
    """A stored item as the form's field values (texts: their German)."""
    out: dict[str, Any] = {}
    for f in fields:
        value = item.get(f.name)
        if f.translated:
            value = (value or {}).get("de", "")
        out[f.name] = "" if value is None else str(value)
    return out


def api_errors(problem: ApiProblem, fields: Sequence[Field], lang: Language, *, item: str | None = None) -> FormErrors:
    """The API's problem at the form's fields, in German by field and code; ``item`` (``funding/2``) is the list
    entry the form adds, whose pointers (``/funding/2/label/de``) belong to the form's own fields."""
    _ = i18n.gettext(lang)
    errors = []
    prefix = "/" + item.strip("/") + "/" if item else None
    for e in problem.errors:
        pointer = str(e.get("pointer", ""))
        if prefix and pointer.startswith(prefix):
            e = {**e, "pointer": "/" + pointer[len(prefix) :]}
        errors.append(e)
    problem = ApiProblem(problem.status, problem.type, problem.title, problem.detail, errors, problem.body)
    labels = {k: _(v) for k, v in labels_of(fields).items()}
    out = form_errors(problem, labels, lang, [f.name for f in fields])
    for e in problem.errors:
        name = pointer_field(str(e.get("pointer", ""))).split(".")[0]
        specific = SPECIFIC.get((name, str(e.get("code"))))
        if specific:
            for f in out.fields:
                if f.name == name:
                    f.message = _(specific)
    if out.fields:
        out.summary = ""
    return out


# -- the scan chart ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    day: date
    scans: int
    x: float
    y: float
    height: float


@dataclass(frozen=True)
class Chart:
    """Daily scans drawn as bars in an SVG of ``width`` x ``height`` user units (the template draws it)."""

    days: tuple[Bar, ...]
    total: int
    peak: int
    peak_day: date | None
    width: int
    height: int
    bar_width: float
    baseline: float


#: How many days the scan chart shows.
CHART_DAYS = 30


def scan_chart(found: Sequence[Mapping[str, Any]], today: date, n: int = CHART_DAYS) -> Chart:
    """The last ``n`` days up to ``today`` (a day without scans is 0), scaled to the highest day."""
    counts = {date.fromisoformat(str(d["day"])): int(d["scans"]) for d in found}
    days = [today - timedelta(days=n - 1 - i) for i in range(n)]
    peak = max((counts.get(d, 0) for d in days), default=0)
    width, height, top, bottom = 600, 160, 10, 140
    slot = width / n
    bars = []
    for i, d in enumerate(days):
        scans = counts.get(d, 0)
        h = (bottom - top) * scans / peak if peak else 0.0
        bars.append(Bar(d, scans, round(i * slot + slot * 0.15, 2), round(bottom - h, 2), round(h, 2)))
    peak_day = next((b.day for b in bars if b.scans == peak), None) if peak else None
    return Chart(tuple(bars), sum(b.scans for b in bars), peak, peak_day, width, height, round(slot * 0.7, 2), bottom)
