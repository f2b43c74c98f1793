"""German (and English) messages for refused answers, by the surveys service's error ``code`` and the
question's kind, so a person reads what to do ("Bitte wählen Sie höchstens 2 aus.") and not the English
``detail`` of the problem document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Lang = str


def _n(x: Any, lang: Lang) -> str:
    if x is None:
        return ""
    value = float(x)
    text = str(int(value)) if value.is_integer() else str(value)
    return text.replace(".", ",") if lang == "de" else text


def message(question: Mapping[str, Any], code: str, lang: Lang) -> str:
    """What to tell a person whose answer to ``question`` was refused with ``code``."""
    de = lang == "de"
    kind = question.get("kind")
    lo, hi = _n(question.get("min"), lang), _n(question.get("max"), lang)
    if code == "required" or code == "empty":
        if kind in ("single_choice", "yes_no", "scale"):
            return "Bitte wählen Sie eine Antwort aus." if de else "Please choose an answer."
        if kind == "multiple_choice":
            return "Bitte wählen Sie mindestens eine Antwort aus." if de else "Please choose at least one answer."
        if kind == "matrix":
            return "Bitte beantworten Sie jede Zeile." if de else "Please answer every row."
        if kind == "ranking":
            return "Bitte geben Sie jeder Möglichkeit einen Platz." if de else "Please give every option a place."
        return "Bitte beantworten Sie diese Frage." if de else "Please answer this question."
    if code == "too_many":
        n = question.get("max_selections")
        return f"Bitte wählen Sie höchstens {n} Antworten aus." if de else f"Please choose at most {n} answers."
    if code == "too_long":
        n = question.get("max_length") or 2000
        return f"Bitte schreiben Sie höchstens {n} Zeichen." if de else f"Please write at most {n} characters."
    if code in ("ranking_positions", "incomplete_ranking"):
        return "Bitte vergeben Sie jeden Platz genau einmal." if de else "Please give each place exactly once."
    if kind == "number" and code in ("invalid_type", "out_of_range"):
        whole = question.get("integer")
        if code == "invalid_type":
            if whole:
                return (
                    "Bitte geben Sie eine ganze Zahl ein, zum Beispiel 12."
                    if de
                    else "Please enter a whole number, for example 12."
                )
            return (
                "Bitte geben Sie eine Zahl ein, zum Beispiel 12 oder 2,5."
                if de
                else "Please enter a number, for example 12 or 2.5."
            )
        if lo and hi:
            return (
                f"Bitte geben Sie eine Zahl von {lo} bis {hi} ein."
                if de
                else f"Please enter a number from {lo} to {hi}."
            )
        if lo:
            return f"Bitte geben Sie eine Zahl ab {lo} ein." if de else f"Please enter a number of at least {lo}."
        return f"Bitte geben Sie eine Zahl bis {hi} ein." if de else f"Please enter a number up to {hi}."
    if code in ("out_of_range", "invalid_type", "invalid_row") and kind in ("scale", "matrix"):
        return f"Bitte wählen Sie einen Wert von {lo} bis {hi}." if de else f"Please choose a value from {lo} to {hi}."
    if code == "not_shown":
        return (
            "Diese Frage gehört nicht zu Ihren bisherigen Antworten; bitte lassen Sie sie leer."
            if de
            else "This question does not apply to your answers; please leave it empty."
        )
    if code in ("invalid_option", "duplicate_option", "invalid_type"):
        return "Bitte wählen Sie eine der angebotenen Antworten." if de else "Please choose one of the answers offered."
    return "Bitte prüfen Sie Ihre Antwort." if de else "Please check your answer."


ACCESS_CODE_MISSING = (
    "Bitte geben Sie den Zugangscode aus Ihrem Schreiben ein.",
    "Please enter the access code from your letter.",
)
ACCESS_CODE_INVALID = (
    "Diesen Zugangscode kennen wir nicht, oder er wurde schon verwendet. Bitte prüfen Sie die Schreibweise.",
    "We do not know this access code, or it has been used already. Please check how you typed it.",
)
RESUME_CODE_MISSING = ("Bitte geben Sie Ihren Fortsetzungscode ein.", "Please enter your resume code.")
RESUME_CODE_INVALID = (
    "Zu diesem Fortsetzungscode gibt es keine gespeicherten Antworten. Bitte prüfen Sie die Schreibweise. "
    "Nach dem Absenden und nach dem Ende der Umfrage gilt der Code nicht mehr.",
    "There are no saved answers for this resume code. Please check how you typed it. The code ends when the "
    "answers are sent and when the survey closes.",
)


def pick(pair: tuple[str, str], lang: Lang) -> str:
    return pair[lang == "en"]
