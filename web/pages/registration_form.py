"""The meeting's registration form as page logic, free of HTTP: its fields, reading a submitted form into the
registration API's body, the page's own checks, and the state of the registration window.

The API validates everything again; what the page checks itself is only what it needs to say in the words of a
form (a number that is not a number, an e-mail or phone number at all).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from web import i18n
from web.i18n import Language
from web.problems import FormErrors

i18n.english(
    {
        "Ihr Name": "Your name",
        "Vor- und Nachname": "First and last name",
        "E-Mail-Adresse": "E-mail address",
        "An diese Adresse senden wir die Bestätigung und Ihr Ticket.": "We send the confirmation and your ticket "
        "to this address.",
        "Telefonnummer": "Phone number",
        "Falls wir Sie kurzfristig erreichen müssen, oder statt einer E-Mail-Adresse.": "In case we need to reach "
        "you at short notice, or instead of an e-mail address.",
        "Zeitfenster": "Time slot",
        "Begleitpersonen": "Companions",
        "Wie viele Personen bringen Sie mit?": "How many people are you bringing?",
        "keine": "none",
        "Ihr Alter": "Your age",
        "Diese Veranstaltung ist für Menschen von {lo} bis {hi} Jahren.": "This event is for people aged {lo} to {hi}.",
        "Diese Veranstaltung ist für Menschen ab {lo} Jahren.": "This event is for people aged {lo} and over.",
        "Diese Veranstaltung ist für Menschen bis {hi} Jahre.": "This event is for people up to {hi}.",
        "in Jahren": "in years",
        "Eine erziehungsberechtigte Person ist mit der Teilnahme einverstanden": "A parent or guardian agrees to "
        "my taking part",
        "Nötig für Teilnehmende unter 18 Jahren.": "Needed for participants under 18.",
        "Bestätigungen": "Confirmations",
        "Bitte bestätigen Sie alle Punkte.": "Please confirm every point.",
        "Das brauche ich, um teilnehmen zu können": "What I need to take part",
        "Zum Beispiel Gebärdensprachdolmetschung, einen Platz für einen Rollstuhl, Induktionsschleife, "
        "Unterlagen in Leichter Sprache.": "For example sign-language interpreting, a place for a wheelchair, an "
        "induction loop, documents in easy-to-read language.",
        "Ich habe die Datenschutzhinweise gelesen und bin mit der Verarbeitung meiner Angaben für diese "
        "Anmeldung einverstanden.": "I have read the privacy notice and agree to my details being processed for "
        "this registration.",
        "Einwilligung zum Datenschutz": "Privacy consent",
        "(freiwillig)": "(optional)",
        "Ja": "Yes",
        "Nein": "No",
        "Bitte geben Sie eine E-Mail-Adresse oder eine Telefonnummer an.": "Please enter an e-mail address or a "
        "phone number.",
        "Bitte geben Sie Ihren Namen an.": "Please enter your name.",
        "Bitte geben Sie eine E-Mail-Adresse in der Form name@beispiel.de an.": "Please enter an e-mail address "
        "like name@example.com.",
        "Bitte geben Sie Ihr Alter als Zahl an, z. B. 16.": "Please enter your age as a number, such as 16.",
        "Bitte stimmen Sie den Datenschutzhinweisen zu.": "Please agree to the privacy notice.",
        "Bitte bestätigen Sie: {text}": "Please confirm: {text}",
        "Bitte wählen Sie ein Zeitfenster.": "Please choose a time slot.",
        "Ihren Namen": "your name",
        "Ihre Antwort": "your answer",
        "Bitte beantworten Sie die Frage „{label}“.": "Please answer the question “{label}”.",
    }
)

#: How a problem's field names read in a sentence ("Bitte geben Sie {label} an.").
SENTENCE_LABELS = {"name": "Ihren Namen", "age": "Ihr Alter", "email": "Ihre E-Mail-Adresse"}


@dataclass
class Submitted:
    """A read form: the API body, what to show again in the fields, and the page's own findings."""

    body: dict[str, Any]
    values: dict[str, Any]
    errors: FormErrors = field(default_factory=FormErrors)


def registration_state(meeting: Mapping[str, Any], now: datetime) -> str:
    """open, waitlist, full, not_yet_open, closed or cancelled: what the page says and whether it shows the form."""
    if meeting.get("status") == "cancelled":
        return "cancelled"
    opens = meeting.get("registration_opens_at")
    closes = meeting.get("registration_closes_at")
    if opens and now < _aware(opens):
        return "not_yet_open"
    if (closes and now >= _aware(closes)) or now >= _aware(meeting["starts_at"]):
        return "closed"
    left = meeting.get("seats_left")
    if left is None or left > 0:
        return "open"
    return "waitlist" if meeting.get("waitlist") else "full"


def _aware(value: str | datetime) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def field_names(meeting: Mapping[str, Any]) -> list[str]:
    """The form's fields in their order on the page (the error summary follows it)."""
    names = ["name", "email", "phone"]
    if meeting.get("slots"):
        names.append("slot_id")
    if meeting.get("max_companions"):
        names.append("companions")
    if meeting.get("min_age") is not None or meeting.get("max_age") is not None:
        names.append("age")
    if meeting.get("guardian_consent"):
        names.append("guardian_consent")
    names += [f"answers.{q['id']}" for q in meeting.get("questions") or []]
    if meeting.get("attestations"):
        names.append("attestations")
    names += ["accessibility_needs", "privacy_consent"]
    return names


def labels(meeting: Mapping[str, Any], lang: Language) -> dict[str, str]:
    """Each field as a problem message names it."""
    _ = i18n.gettext(lang)
    out = {
        "name": _("Ihren Namen"),
        "email": _("E-Mail-Adresse"),
        "phone": _("Telefonnummer"),
        "slot_id": _("Zeitfenster"),
        "companions": _("Begleitpersonen"),
        "age": _("Ihr Alter"),
        "guardian_consent": _("Eine erziehungsberechtigte Person ist mit der Teilnahme einverstanden"),
        "attestations": _("Bestätigungen"),
        "accessibility_needs": _("Das brauche ich, um teilnehmen zu können"),
        "privacy_consent": _("Einwilligung zum Datenschutz"),
    }
    for q in meeting.get("questions") or []:
        out[f"answers.{q['id']}"] = q["label"]
    return out


def age_hint(meeting: Mapping[str, Any], lang: Language) -> str:
    _ = i18n.gettext(lang)
    lo, hi = meeting.get("min_age"), meeting.get("max_age")
    if lo is not None and hi is not None:
        return _("Diese Veranstaltung ist für Menschen von {lo} bis {hi} Jahren.").format(lo=lo, hi=hi)
    if lo is not None:
        return _("Diese Veranstaltung ist für Menschen ab {lo} Jahren.").format(lo=lo)
    return _("Diese Veranstaltung ist für Menschen bis {hi} Jahre.").format(hi=hi)


def _one(form: Mapping[str, Sequence[str]], name: str) -> str:
    values = form.get(name) or []
    return values[0].strip() if values else ""


def read(form: Mapping[str, Sequence[str]], meeting: Mapping[str, Any], lang: Language) -> Submitted:
    """The submitted form as the registration API's body (``RegistrationIn``)."""
    _ = i18n.gettext(lang)
    errors = FormErrors()
    name, email, phone = _one(form, "name"), _one(form, "email"), _one(form, "phone")
    values: dict[str, Any] = {"name": name, "email": email, "phone": phone}
    body: dict[str, Any] = {"name": name, "privacy_consent": _one(form, "privacy_consent") == "on", "locale": lang}
    if not name:
        errors.add("name", _("Bitte geben Sie Ihren Namen an."))
    if email:
        body["email"] = email
        local, _at, domain = email.rpartition("@")
        if not local or "." not in domain.strip("."):
            # The service checks the address fully; this catches what it would refuse anyway, alongside the
            # page's other findings.
            errors.add("email", _("Bitte geben Sie eine E-Mail-Adresse in der Form name@beispiel.de an."))
    if phone:
        body["phone"] = phone
    if not email and not phone:
        errors.add("email", _("Bitte geben Sie eine E-Mail-Adresse oder eine Telefonnummer an."))

    if meeting.get("slots"):
        slot = _one(form, "slot_id")
        values["slot_id"] = slot
        if slot:
            body["slot_id"] = slot
        else:
            errors.add("slot_id", _("Bitte wählen Sie ein Zeitfenster."))
    if meeting.get("max_companions"):
        raw = _one(form, "companions") or "0"
        values["companions"] = raw
        body["companions"] = int(raw) if raw.isdigit() else raw
    if meeting.get("min_age") is not None or meeting.get("max_age") is not None:
        raw = _one(form, "age")
        values["age"] = raw
        if raw.isdigit() and len(raw) <= 3:
            body["age"] = int(raw)
        elif raw:
            errors.add("age", _("Bitte geben Sie Ihr Alter als Zahl an, z. B. 16."))
    if meeting.get("guardian_consent"):
        body["guardian_consent"] = _one(form, "guardian_consent") == "on"
        values["guardian_consent"] = body["guardian_consent"]

    answers: dict[str, Any] = {}
    for q in meeting.get("questions") or []:
        key = f"answers.{q['id']}"
        if q["kind"] == "multiple":
            chosen = [v for v in form.get(key) or [] if v]
            values[key] = chosen
            if chosen:
                answers[q["id"]] = chosen
            elif q.get("required"):
                errors.add(key, _("Bitte beantworten Sie die Frage „{label}“.").format(label=q["label"]))
            continue
        raw = _one(form, key)
        values[key] = raw
        if not raw:
            if q.get("required"):
                errors.add(key, _("Bitte beantworten Sie die Frage „{label}“.").format(label=q["label"]))
            continue
        answers[q["id"]] = {"ja": True, "nein": False}.get(raw, raw) if q["kind"] == "yes_no" else raw
    body["answers"] = answers

    ticked = [v for v in form.get("attestations") or [] if v]
    values["attestations"] = ticked
    body["attestations"] = ticked
    for att in meeting.get("attestations") or []:
        if att["id"] not in ticked:
            errors.add("attestations", _("Bitte bestätigen Sie: {text}").format(text=att["text"]))
            break
    needs = _one(form, "accessibility_needs")
    values["accessibility_needs"] = needs
    if needs:
        body["accessibility_needs"] = needs
    values["privacy_consent"] = body["privacy_consent"]
    if not body["privacy_consent"]:
        errors.add("privacy_consent", _("Bitte stimmen Sie den Datenschutzhinweisen zu."))
    return Submitted(body=body, values=values, errors=errors)
