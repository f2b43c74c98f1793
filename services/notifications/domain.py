"""Rules of the notifications service: which mail an event asks for, retries, answers, signatures, dates,
matching; pure functions and value objects, no I/O."""

from __future__ import annotations

import base64
import fnmatch
import functools
import hashlib
import hmac
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import idna
from babel.dates import format_datetime

from shared.bus.backoff import delay

# -- what a handler works with ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Cause:
    """The event a handler reacts to, as far as the rules need it."""

    event_id: UUID
    tenant: str
    type: str
    #: The producer's sequence number of the event's subject (projections apply only newer ones).
    sequence: int | None
    now: datetime


@dataclass(frozen=True)
class Policy:
    """What the rules need of the settings: the key of links and address hashes, and the hourly cap of mails to
    an unconfirmed address."""

    signing_secret: str
    unconfirmed_mails_per_hour: int

    def recipient_key(self, address: str) -> str:
        return recipient_key(self.signing_secret, address)

    def cap(self, address: str) -> Cap:
        return Cap(mailbox_key(self.signing_secret, address), self.unconfirmed_mails_per_hour)


@dataclass(frozen=True)
class EmailDelivery:
    """One mail to queue."""

    tenant: str
    cause_event_id: UUID
    recipient_key: str
    address: str
    template: str
    transactional: bool
    locale: str = "de"
    registration_id: UUID | None = None
    subscription_id: UUID | None = None
    meeting_id: UUID | None = None
    survey_id: UUID | None = None
    personal: dict[str, Any] | None = None


@dataclass(frozen=True)
class Cap:
    """At most ``per_hour`` mails an hour to one inbox (``mailbox_key``) while its address is unconfirmed."""

    mailbox_key: str
    per_hour: int


#: The answer of a mail held back by the cap.
CAPPED = "held back: too many mails to this unconfirmed address within an hour"


def cancelled_template(cancelled_by: str) -> str:
    """Who cancelled decides the mail: ``citizen`` -> ``cancelled_citizen``, ``meeting_cancelled`` ->
    ``cancelled_meeting``."""
    return f"cancelled_{cancelled_by.removesuffix('_cancelled')}"


#: Templates that speak of a meeting: they wait until the meeting's snapshot has arrived.
NEEDS_MEETING = {
    "confirmed",
    "promoted",
    "waitlisted",
    "cancelled_citizen",
    "cancelled_staff",
    "cancelled_meeting",
    "checked_in",
    "reminder_registration_closes",
    "reminder_meeting_starts",
}
#: Templates that carry the ticket (QR code and calendar file).
WITH_TICKET = {"confirmed", "promoted"}

# -- addresses ---------------------------------------------------------------------------------------


def normalise_address(address: str) -> str:
    return address.strip().lower()


def email_sha256(address: str) -> str:
    """As registration publishes it in PersonErasedV1: sha256 of the lower-cased address, hex."""
    return hashlib.sha256(normalise_address(address).encode()).hexdigest()


def recipient_key(secret: str, address: str) -> str:
    """Keyed hash of an address: the delivery log's unique key without an address anyone could look up."""
    return hmac.new(secret.encode(), normalise_address(address).encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class WireAddress:
    """An address as it goes into the SMTP envelope and the To header: the domain always in its ASCII (IDNA)
    form; ``utf8`` when the local part is not ASCII, which only a server offering SMTPUTF8 (RFC 6531) takes."""

    address: str
    utf8: bool


class Undeliverable(ValueError):
    """The address cannot be written into an SMTP envelope at all."""


def wire_address(address: str) -> WireAddress:
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or not domain or any(c in address for c in "\r\n<>,\x00 "):
        raise Undeliverable("not a mail address")
    try:
        ascii_domain = domain if domain.isascii() else idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise Undeliverable(f"the domain cannot be written in IDNA: {type(exc).__name__}") from None
    return WireAddress(f"{local}@{ascii_domain}", not local.isascii())


def mailbox_key(secret: str, address: str) -> str:
    """Keyed hash of the inbox an address reaches: ``a+1@x`` and ``A+2@x`` are one inbox (``a@x``)."""
    local, _, domain = normalise_address(address).rpartition("@")
    inbox = f"{local.split('+', 1)[0]}@{domain}"
    return hmac.new(secret.encode(), f"mailbox:{inbox}".encode(), hashlib.sha256).hexdigest()


# -- signed links (unsubscribe, opt-in) --------------------------------------------------------------


def sign_token(secret: str, purpose: str, value: str) -> str:
    mac = hmac.new(secret.encode(), f"{purpose}:{value}".encode(), hashlib.sha256).digest()[:16]
    return f"{value}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def verify_token(secret: str, purpose: str, token: str) -> str | None:
    """The value a token signs, or None if the signature does not match."""
    if not token.isascii():
        return None  # nothing this service signs is outside ASCII (and compare_digest refuses such strings)
    value, _, _ = token.rpartition(".")
    if not value:
        return None
    # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500 for a mangled link).
    return value if hmac.compare_digest(sign_token(secret, purpose, value).encode(), token.encode()) else None


# -- retries ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """How one attempt ended: ``ok``, or a failure that is ``permanent`` or worth retrying."""

    ok: bool
    permanent: bool
    text: str


def smtp_answer(code: int | None, message: str) -> Answer:
    if code is not None and 200 <= code < 400:
        return Answer(True, False, f"{code} {message}".strip())
    # 5xx: the server refuses for good (unknown mailbox, policy). Anything else (4xx, no connection) may pass later.
    permanent = code is not None and 500 <= code < 600
    return Answer(False, permanent, f"{code or ''} {message}".strip()[:1000])


def email_retry_delay(attempt: int, initial: float, maximum: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after the ``attempt``-th failed try: the bus's backoff (doubling, capped, jittered)."""
    return delay(attempt - 1, initial, maximum, rng)


def webhook_retry_delay(attempt: int, schedule: list[float], rng: random.Random | None = None) -> float | None:
    """Seconds to wait after the ``attempt``-th failed try, or None when the schedule is used up."""
    if attempt - 1 >= len(schedule):
        return None
    base = schedule[attempt - 1]
    return base * (rng or random).uniform(0.9, 1.1)


def webhook_answer(status: int | None, detail: str) -> tuple[Answer, bool]:
    """The answer to a webhook attempt, and whether the endpoint must be disabled (410 Gone)."""
    if status is not None and 200 <= status < 300:
        return Answer(True, False, str(status)), False
    if status == 410:
        return Answer(False, True, "410 Gone: endpoint disabled"), True
    text = f"{status} {detail}".strip() if status is not None else detail
    return Answer(False, False, text[:1000]), False


# -- webhooks -----------------------------------------------------------------------------------------


def new_webhook_secret(raw: bytes) -> str:
    return "whsec_" + base64.b64encode(raw).decode()


def webhook_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks: ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` with the secret's key bytes."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def matches(patterns: Iterable[str], event_type: str) -> bool:
    """``civic.registration.*`` matches every registration event; ``*`` matches all."""
    return any(fnmatch.fnmatchcase(event_type, p) for p in patterns)


def strip_personal(envelope: Mapping[str, Any], personal_fields: Iterable[str]) -> dict[str, Any]:
    """The CloudEvent as it may leave civic: the payload's personal fields removed."""
    out = dict(envelope)
    drop = set(personal_fields)
    out["data"] = {k: v for k, v in dict(envelope.get("data") or {}).items() if k not in drop}
    return out


DASH = "\u2013"  # the en dash German typesetting puts between times


# -- dates ---------------------------------------------------------------------------------------------


# Both are pure and a fan-out asks them the same question for every recipient: Babel's formatting cost more
# than the rest of composing a mail.
@functools.lru_cache(maxsize=4096)
def when(starts_at: datetime, ends_at: datetime | None, tz: str, locale: str) -> str:
    """How people write a meeting's time: "Donnerstag, 28. Oktober 2021, 18:00\u201320:00 Uhr"."""
    zone = ZoneInfo(tz)
    start = starts_at.astimezone(zone)
    end = ends_at.astimezone(zone) if ends_at else None
    if locale == "de":
        day = format_datetime(start, "EEEE, d. MMMM y", locale="de")
        if end is None:
            return f"{day}, {start:%H:%M} Uhr"
        if end.date() == start.date():
            return f"{day}, {start:%H:%M}{DASH}{end:%H:%M} Uhr"
        end_day = format_datetime(end, "EEEE, d. MMMM y", locale="de")
        return f"{day}, {start:%H:%M} Uhr {DASH} {end_day}, {end:%H:%M} Uhr"
    first = format_datetime(start, "EEEE, d MMMM y, h:mm a", locale="en")
    if end is None:
        return first
    if end.date() == start.date():
        return f"{first} {DASH} {format_datetime(end, 'h:mm a', locale='en')}"
    return f"{first} {DASH} {format_datetime(end, 'EEEE, d MMMM y, h:mm a', locale='en')}"


@functools.lru_cache(maxsize=4096)
def day(at: datetime, tz: str, locale: str) -> str:
    local = at.astimezone(ZoneInfo(tz))
    if locale == "de":
        return f"{format_datetime(local, 'EEEE, d. MMMM y', locale='de')}, {local:%H:%M} Uhr"
    return format_datetime(local, "EEEE, d MMMM y, h:mm a", locale="en")
