"""German (and English) messages for the services' problem documents.

Decision: the services keep answering in English; the web client translates by the problem's ``type`` and each
field error's ``code`` (shared/http/problems.py), which are stable. Any code without a message here falls back to
a general sentence for the field, never to the English ``detail``. ``FormErrors`` is what form templates show:
one message per field (in the order of the form) and the error summary at the top linking to each field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from web.client import ApiProblem
from web.i18n import Language

#: Problem ``type`` (its last part) -> (German, English) sentence for the page.
TYPES: dict[str, tuple[str, str]] = {
    "validation": ("Bitte prüfen Sie Ihre Angaben.", "Please check what you entered."),
    "not-found": ("Diese Seite gibt es nicht (mehr).", "This page does not exist (any more)."),
    "meeting-full": (
        "Die Veranstaltung ist ausgebucht, und es gibt keine Warteliste.",
        "The event is fully booked and has no waiting list.",
    ),
    "registration-window": (
        "Eine Anmeldung ist jetzt nicht möglich: Die Anmeldefrist hat noch nicht begonnen oder ist vorbei.",
        "Registration is not possible now: the registration period has not begun or is over.",
    ),
    "meeting-cancelled": ("Die Veranstaltung wurde abgesagt.", "The event has been cancelled."),
    "meeting-not-published": ("Diese Veranstaltung ist nicht veröffentlicht.", "This event is not published."),
    "busy": (
        "Gerade melden sich sehr viele Menschen an. Bitte versuchen Sie es in einer Minute noch einmal.",
        "Very many people are registering right now. Please try again in a minute.",
    ),
    "throttled": (
        "Von Ihrem Anschluss kamen gerade sehr viele Anfragen. Bitte warten Sie kurz und versuchen Sie es erneut.",
        "Too many requests came from your connection. Please wait a moment and try again.",
    ),
    "rate-limited": (
        "Von Ihrem Anschluss kamen gerade sehr viele Anfragen. Bitte warten Sie kurz und versuchen Sie es erneut.",
        "Too many requests came from your connection. Please wait a moment and try again.",
    ),
    "invalid-link": (
        "Der Link ist unvollständig oder wurde verändert. Bitte öffnen Sie ihn noch einmal aus der E-Mail.",
        "The link is incomplete or was changed. Please open it again from the e-mail.",
    ),
    "unsubscribed": (
        "Dieses Abonnement wurde abbestellt. Sie können die Neuigkeiten erneut abonnieren.",
        "This subscription was cancelled. You can subscribe to the news again.",
    ),
}
GENERAL = ("Das hat leider nicht geklappt. Bitte versuchen Sie es erneut.", "That did not work. Please try again.")

#: Field error ``code`` -> (German, English); ``{label}`` is the field's label.
CODES: dict[str, tuple[str, str]] = {
    "missing": ("Bitte geben Sie {label} an.", "Please enter {label}."),
    "string_too_short": ("Bitte geben Sie {label} an.", "Please enter {label}."),
    "too_short": ("{label}: Die Angabe ist zu kurz.", "{label}: too short."),
    "string_too_long": ("{label}: Die Angabe ist zu lang.", "{label}: too long."),
    "too_long": ("{label}: Die Angabe ist zu lang.", "{label}: too long."),
    "value_error": ("{label}: Bitte prüfen Sie die Angabe.", "{label}: please check this."),
    "email": (
        "Bitte geben Sie eine E-Mail-Adresse in der Form name@beispiel.de an.",
        "Please enter an e-mail address like name@example.com.",
    ),
    "phone": (
        "Bitte geben Sie eine Telefonnummer an, unter der wir Sie anrufen können, z. B. 0481 97-1234.",
        "Please enter a phone number we can call, such as +49 481 97-1234.",
    ),
    "int_parsing": ("{label}: Bitte geben Sie eine ganze Zahl an.", "{label}: please enter a whole number."),
    "int_type": ("{label}: Bitte geben Sie eine ganze Zahl an.", "{label}: please enter a whole number."),
    "greater_than_equal": ("{label}: Die Zahl ist zu klein.", "{label}: the number is too small."),
    "less_than_equal": ("{label}: Die Zahl ist zu groß.", "{label}: the number is too large."),
    "out_of_range": (
        "{label}: Die Veranstaltung ist für eine andere Altersgruppe.",
        "{label}: the event is for a different age group.",
    ),
    "range": ("{label}: Die Angabe liegt außerhalb des erlaubten Bereichs.", "{label}: out of the allowed range."),
    "too_many": ("{label}: Das sind zu viele.", "{label}: too many."),
    "choice": ("{label}: Bitte wählen Sie eine der Möglichkeiten.", "{label}: please choose one of the options."),
    "literal_error": (
        "{label}: Bitte wählen Sie eine der Möglichkeiten.",
        "{label}: please choose one of the options.",
    ),
    "unknown": ("{label}: Diese Auswahl gibt es nicht.", "{label}: this choice does not exist."),
    "bool_parsing": ("{label}: Bitte wählen Sie Ja oder Nein.", "{label}: please choose yes or no."),
    "type": ("{label}: Bitte prüfen Sie die Angabe.", "{label}: please check this."),
}
FIELD_GENERAL = ("{label}: Bitte prüfen Sie die Angabe.", "{label}: please check this.")


def sentence(problem: ApiProblem, lang: Language) -> str:
    """One plain sentence for the whole problem."""
    return TYPES.get(problem.kind, GENERAL)[lang == "en"]


def field_message(code: str | None, label: str, lang: Language) -> str:
    template = CODES.get(code or "", FIELD_GENERAL)[lang == "en"]
    return template.format(label=label)


@dataclass
class FieldError:
    name: str  # the form field's name (and id), which the summary links to
    message: str


@dataclass
class FormErrors:
    """What a form page shows after a refused submission."""

    summary: str = ""
    fields: list[FieldError] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.summary or self.fields)

    def of(self, name: str) -> str | None:
        return next((f.message for f in self.fields if f.name == name), None)

    def add(self, name: str, message: str) -> None:
        if self.of(name) is None:
            self.fields.append(FieldError(name, message))


def pointer_field(pointer: str) -> str:
    """``/answers/diet`` -> ``answers.diet``; ``/name`` -> ``name``: the form's field names."""
    return ".".join(p for p in pointer.strip("/").split("/") if p)


def form_errors(
    problem: ApiProblem, labels: Mapping[str, str], lang: Language, order: Iterable[str] = ()
) -> FormErrors:
    """The problem as form errors: each field error at its field (by JSON pointer), German by its code.

    ``labels`` names the form's fields (``name`` -> ``Ihr Name``); an error at a pointer the form does not
    know is shown in the summary only. Fields come in ``order`` (the form's), then as the API listed them.
    """
    out = FormErrors(summary=sentence(problem, lang))
    for e in problem.errors:
        name = pointer_field(str(e.get("pointer", "")))
        # A pointer inside a field (``/answers/diet/0``) belongs to the nearest field the form has.
        while name and name not in labels and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in labels:
            code = e.get("code")
            # pydantic reports a bad address as a general value_error; the field says what was meant.
            if code == "value_error" and name.rsplit(".", 1)[-1] in ("email", "phone"):
                code = name.rsplit(".", 1)[-1]
            out.add(name, field_message(code, labels[name], lang))
    rank = {n: i for i, n in enumerate(order)}
    out.fields.sort(key=lambda f: rank.get(f.name, len(rank)))
    if problem.kind == "validation" and not out.fields:
        out.summary = sentence(problem, lang)
    return out
