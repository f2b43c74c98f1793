"""Rules of the content service as pure functions: phases by date, languages, obfuscation, live states.

Nothing here touches a database, HTTP or the clock: callers pass ``now``/``today`` in.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

BERLIN = ZoneInfo("Europe/Berlin")
LANGUAGES = ("de", "en")
DEFAULT_LANGUAGE = "de"

#: A QR code's scans of one day are reported on the bus at most once per this interval (with the running count).
QR_REPORT_INTERVAL = timedelta(minutes=1)

_STEP_NUMBER = re.compile(r"^\d+(\.\d+)*$")
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def berlin_today(now: datetime) -> date:
    """The calendar day in Europe/Berlin at the instant ``now`` (phases and scan days follow local dates)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(BERLIN).date()


def next_berlin_midnight(now: datetime) -> datetime:
    """The instant the next calendar day begins in Europe/Berlin."""
    return datetime.combine(berlin_today(now) + timedelta(days=1), time(), tzinfo=BERLIN)


def page_valid_until(now: datetime, boundaries: Iterable[datetime], longest: timedelta) -> datetime:
    """Until when a process page built at ``now`` stays right if nothing stored changes: the clock alone changes
    it at the next of its ``boundaries`` still to come (a registration window opening or closing, a meeting's
    start, a survey opening or closing) and at the next midnight in Berlin (today's date, the current phase);
    and at most ``longest`` from ``now``."""
    return min([now + longest, next_berlin_midnight(now), *(b for b in boundaries if b > now)])


@dataclass(frozen=True)
class PhaseSpan:
    id: object
    starts_on: date
    ends_on: date | None


def phase_is_current(starts_on: date, ends_on: date | None, today: date) -> bool:
    """A phase runs from its first day to its last day, both included; without an end it runs on."""
    return starts_on <= today and (ends_on is None or today <= ends_on)


def current_phase(phases: Sequence[PhaseSpan], today: date) -> PhaseSpan | None:
    """The phase running on ``today``; if phases overlap, the one that started last."""
    running = [p for p in phases if phase_is_current(p.starts_on, p.ends_on, today)]
    if not running:
        return None
    return max(running, key=lambda p: p.starts_on)


def localized(text: Mapping[str, str | None] | None, lang: str) -> str | None:
    """The text in ``lang``, falling back to German when that translation is missing or empty."""
    if not text:
        return None
    return text.get(lang) or text.get(DEFAULT_LANGUAGE) or None


def obfuscate_email(email: str | None) -> str | None:
    """Public form of an address, against harvesting: ``name [at] example [dot] org``.

    Dots of the local part are kept (people read ``s.example`` fine); the domain's dots become `` [dot] ``.
    """
    if not email:
        return None
    local, sep, domain = email.strip().rpartition("@")
    if not sep:
        return email.replace(".", " [dot] ")
    return f"{local} [at] {domain.replace('.', ' [dot] ')}"


def valid_step_number(number: str) -> bool:
    return bool(_STEP_NUMBER.match(number))


def step_sort_key(number: str) -> tuple[int, ...]:
    """Steps sort by their numbers as numbers: 1.2 before 1.10."""
    return tuple(int(part) for part in number.split(".")) if valid_step_number(number) else (10**9,)


def valid_slug(slug: str) -> bool:
    return bool(_SLUG.match(slug)) and len(slug) <= 100


RegistrationStatus = Literal["open", "waitlist", "not_yet_open", "closed", "full", "cancelled", "unknown"]


@dataclass(frozen=True)
class MeetingLive:
    """What the projection holds of a meeting; ``known`` is false until its first event arrived."""

    known: bool
    cancelled: bool = False
    starts_at: datetime | None = None
    seats_left: int | None = None
    waitlist: bool = True
    opens_at: datetime | None = None
    closes_at: datetime | None = None


def registration_status(m: MeetingLive, now: datetime) -> RegistrationStatus:
    """Whether people can register now, from the window in the projection and the current time.

    Without an explicit closing time registration closes when the meeting starts. A full meeting with a
    waiting list still takes registrations (``waitlist``); without one it is ``full``.
    """
    if not m.known:
        return "unknown"
    if m.cancelled:
        return "cancelled"
    if m.opens_at is not None and now < m.opens_at:
        return "not_yet_open"
    closes = m.closes_at or m.starts_at
    if closes is not None and now >= closes:
        return "closed"
    if m.seats_left is not None and m.seats_left <= 0:
        return "waitlist" if m.waitlist else "full"
    return "open"


SurveyStatus = Literal["upcoming", "open", "closed", "unknown"]


def survey_status(
    known: bool, opens_at: datetime | None, closes_at: datetime | None, closed_at: datetime | None, now: datetime
) -> SurveyStatus:
    """Open between its opening and closing times unless the surveys service reported it closed."""
    if not known:
        return "unknown"
    if closed_at is not None and closed_at <= now:
        return "closed"
    if closes_at is not None and now >= closes_at:
        return "closed"
    if opens_at is not None and now < opens_at:
        return "upcoming"
    return "open"


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison over a list of tags (or ``*``)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(t.strip().removeprefix("W/") == wanted for t in if_none_match.split(","))


def qr_report_due(scans: int, reported_scans: int, reported_at: datetime | None, now: datetime) -> bool:
    """The aggregation rule for QrScannedV1: new scans since the last report, and a minute since it."""
    return scans > reported_scans and (reported_at is None or now - reported_at >= QR_REPORT_INTERVAL)


def pages(total: int, per_page: int) -> int:
    return max(1, -(-total // per_page))
