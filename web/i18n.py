"""German first, English second: the page language, the English catalogue, dates and numbers through Babel.

Texts are written in German in the templates and code (``_("Anmelden")``); ``ENGLISH`` holds their English
versions, so a text without a translation shows in German rather than as a key. Dates and times are shown in
Europe/Berlin with the weekday written out, numbers and amounts with the language's separators.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_currency, format_decimal

Language = Literal["de", "en"]
LANGUAGES: tuple[Language, ...] = ("de", "en")
BERLIN = ZoneInfo("Europe/Berlin")
#: Parsed once: Babel looks a locale given by name up on disk on every call.
LOCALES = {"de": Locale.parse("de_DE"), "en": Locale.parse("en_GB")}
LANG_COOKIE = "civic_lang"

ENGLISH: dict[str, str] = {}


def english(entries: dict[str, str]) -> None:
    """Add translations; each page module adds the texts it uses next to its code."""
    ENGLISH.update(entries)


def pick(query: str | None, cookie: str | None) -> Language:
    for v in (query, cookie):
        if v == "en":
            return "en"
        if v == "de":
            return "de"
    return "de"


def gettext(lang: Language) -> Callable[[str], str]:
    if lang == "de":
        return lambda text: text
    return lambda text: ENGLISH.get(text, text)


def _dt(value: datetime | str) -> datetime:
    dt = datetime.fromisoformat(value) if isinstance(value, str) else value
    return dt.astimezone(BERLIN)


def when(value: datetime | str, lang: Language) -> str:
    """``Dienstag, 15. Dezember 2026, 18:00 Uhr`` / ``Tuesday, 15 December 2026, 18:00``."""
    dt = _dt(value)
    if lang == "de":
        return format_datetime(dt, "EEEE, d. MMMM y, HH:mm 'Uhr'", tzinfo=BERLIN, locale=LOCALES["de"])
    return format_datetime(dt, "EEEE, d MMMM y, HH:mm", tzinfo=BERLIN, locale=LOCALES["en"])


def time_of(value: datetime | str, lang: Language) -> str:
    dt = _dt(value)
    return format_time(dt, "HH:mm", tzinfo=BERLIN, locale=LOCALES[lang]) + (" Uhr" if lang == "de" else "")


def day(value: date | datetime | str, lang: Language) -> str:
    """``Dienstag, 15. Dezember 2026``."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        value = value.astimezone(BERLIN).date()
    pattern = "EEEE, d. MMMM y" if lang == "de" else "EEEE, d MMMM y"
    return format_date(value, pattern, locale=LOCALES[lang])


def short_day(value: date | str, lang: Language) -> str:
    """``15.12.2026`` / ``15/12/2026``."""
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    return format_date(value, "short" if lang == "en" else "dd.MM.y", locale=LOCALES[lang])


def number(value: int | float, lang: Language) -> str:
    return format_decimal(value, locale=LOCALES[lang])


def money(amount: int, currency: str, lang: Language) -> str:
    """Whole amounts without cents: ``1.250.000 €`` / ``€1,250,000``."""
    return format_currency(
        amount, currency, format="#,##0 ¤" if lang == "de" else "¤#,##0", locale=LOCALES[lang], currency_digits=False
    )
