"""Turning a delivery into a mail: templates per locale (overridable per tenant), the context they see, the
ticket's QR code and calendar file, the MIME message, and prototypes that fill a fan-out mail per recipient."""

from __future__ import annotations

import base64
import functools
import io
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.mime.image import MIMEImage
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.mime.text import MIMEText
from email.policy import Compat32
from email.utils import format_datetime as rfc2822_date
from email.utils import formataddr
from pathlib import Path
from typing import Any
from uuid import UUID

from cachetools import LRUCache
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, Template

from services.notifications import domain
from services.notifications.settings import NotificationSettings
from shared import qr
from shared.calendar import meeting_ics
from shared.clock import Clock
from shared.links import link

BUILT_IN = Path(__file__).parent / "templates"
LOCALES = ("de", "en")


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class Templates:
    """One Jinja environment per (tenant, locale): the tenant's folder first, then the built-in templates."""

    def __init__(self, overrides_dir: str | None = None) -> None:
        self.overrides = Path(overrides_dir) if overrides_dir else None
        # Each environment caches its compiled templates: kept for the tenants mailed to most recently.
        self._envs: LRUCache[tuple[str, str], Environment] = LRUCache(maxsize=256)

    def env(self, tenant: str, locale: str) -> Environment:
        locale = locale if locale in LOCALES else "de"
        key = (tenant, locale)
        env = self._envs.get(key)
        if env is None:
            folders = []
            if self.overrides is not None and "/" not in tenant and not tenant.startswith("."):
                folders.append(FileSystemLoader(self.overrides / tenant / locale))
            folders.append(FileSystemLoader(BUILT_IN / locale))
            # Autoescaping is switched on inside each template's html block; the text parts stay verbatim.
            env = Environment(loader=ChoiceLoader(folders), autoescape=False)
            self._envs[key] = env
        return env

    def render(self, tenant: str, locale: str, name: str, context: dict[str, Any]) -> Rendered:
        env = self.env(tenant, locale)
        tpl = env.get_template(f"{name}.j2")
        subject = " ".join(_block(tpl, "subject", context).split())
        text = _block(tpl, "text", context).strip() + "\n"
        body = _block(tpl, "html", context).strip()
        html = env.get_template("_layout.html.j2").render(context | {"subject": subject, "body": body})
        return Rendered(subject, text, html)


def _block(tpl: Template, name: str, context: dict[str, Any]) -> str:
    return "".join(tpl.blocks[name](tpl.new_context(context)))


def ticket_qr(code: str) -> bytes:
    """The ticket's QR code as a PNG for the mail: 270 pixels wide for a ticket code, with a narrow quiet zone
    (the mail's white background continues it)."""
    return qr.png(code, size=TICKET_QR_PIXELS, border=2)


#: Six pixels a module for a ticket code (140 characters: a version 6 code, 41 modules, and the border).
TICKET_QR_PIXELS = 270


@dataclass(frozen=True)
class Attachments:
    qr: bytes | None = None
    qr_cid: str | None = None
    ics: bytes | None = None


class _AsWritten(Compat32):
    """Writes headers that are ASCII already (subjects are encoded once, see ``encoded_subject``) as they are,
    instead of refolding each through ``email.header`` for every one of 50,000 mails; anything else as usual."""

    def _fold(self, name: str, value: Any, sanitize: bool) -> str:
        if (
            isinstance(value, str)
            and value.isascii()
            and "\r" not in value
            and "\n" not in value.replace("\n ", "")  # only folded continuation lines, never a new header
            and all(len(line) < 900 for line in value.split("\n"))
        ):
            return f"{name}: {value}".replace("\n", self.linesep) + self.linesep
        return str(super()._fold(name, value, sanitize))  # type: ignore[misc]


_WRITE_POLICY = _AsWritten()


def to_bytes(msg: Message) -> bytes:
    buf = io.BytesIO()
    BytesGenerator(buf, mangle_from_=False, policy=_WRITE_POLICY).flatten(msg)
    return buf.getvalue()


@functools.lru_cache(maxsize=4096)
def encoded_subject(subject: str) -> str:
    """RFC 2047 encoded once per distinct subject (the utf-8 folding search is the costly part of a header)."""
    return subject if subject.isascii() else Header(subject, "utf-8", header_name="Subject").encode()


def _boundary() -> str:
    # Chosen here so the generator need not scan every part for a collision: random hex cannot collide with
    # base64 bodies in practice.
    return f"=_civic_{secrets.token_hex(12)}"


def _text_part(text: str, subtype: str) -> Message:
    """A utf-8 text part, base64-encoded in one C call (``MIMEText`` re-parses its own headers to get there)."""
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    part["Content-Transfer-Encoding"] = "base64"
    part.set_payload(base64.encodebytes(text.encode()).decode("ascii"))
    return part


def build_email(
    rendered: Rendered,
    *,
    to: str,
    from_address: str,
    from_name: str,
    message_id: str,
    date: datetime,
    attachments: Attachments | None = None,
    unsubscribe_url: str | None = None,
) -> Message:
    """The MIME message. Built with the compat32 classes: the header registry of ``EmailMessage`` costs
    about as much per mail as the SMTP exchange itself, which matters when one event fans out to 50,000."""
    a = attachments or Attachments()
    alternative = MIMEMultipart("alternative", boundary=_boundary())
    alternative.attach(_text_part(rendered.text, "plain"))
    html = _text_part(rendered.html, "html")
    if a.qr is not None and a.qr_cid is not None:
        related = MIMEMultipart("related", boundary=_boundary())
        related.attach(html)
        image = MIMEImage(a.qr, "png")
        image.add_header("Content-ID", f"<{a.qr_cid}>")
        image.add_header("Content-Disposition", "inline", filename="ticket.png")
        related.attach(image)
        alternative.attach(related)
    else:
        alternative.attach(html)
    msg: Message = alternative
    if a.ics is not None:
        msg = MIMEMultipart("mixed", boundary=_boundary())
        msg.attach(alternative)
        calendar = MIMEText(a.ics.decode(), "calendar", "utf-8")
        calendar.set_param("method", "PUBLISH")
        calendar.add_header("Content-Disposition", "attachment", filename="termin.ics")
        msg.attach(calendar)
    msg["Subject"] = encoded_subject(rendered.subject)
    msg["From"] = formataddr((from_name, from_address), charset="utf-8")
    msg["To"] = to
    msg["Date"] = rfc2822_date(date)
    # Stable per delivery: a resend after a crash carries the same id, so mail clients can fold duplicates.
    msg["Message-ID"] = message_id
    if unsubscribe_url:
        # RFC 8058 one-click: the link accepts a POST without any further step.
        # Plain ASCII, never folded into encoded words: mail clients read the URL from it as it stands.
        msg["List-Unsubscribe"] = Header(f"<{unsubscribe_url}>", "us-ascii", maxlinelen=998)  # type: ignore[assignment]
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    else:
        msg["Auto-Submitted"] = "auto-generated"
    return msg


# Markers a prototype carries where each recipient's own parts go: ASCII, so headers keep them as they are,
# and unlike anything a template or a base64 body can produce.
RECIPIENT_SLOT = _TO = "recipient@civic-slot.invalid"
_MESSAGE_ID = "<message-id@civic-slot.invalid>"
_DATE = "civic-slot-date"
_TEXT = "civic-slot-text-plain\n"
_HTML = "civic-slot-text-html\n"
#: Where the templates are given each recipient's unsubscribe link when a prototype is rendered.
UNSUBSCRIBE_SLOT = "https://unsubscribe.invalid/slot"


@dataclass(frozen=True)
class Prototype:
    """A fan-out mail flattened once, with markers for what differs per recipient.

    One reminder to 50,000 subscribers is 50,000 mails that differ only in the recipient, the Message-ID, the
    date and the unsubscribe link (in a header and in both bodies). Building and flattening each through the
    ``email`` package cost as much as sending it; filling a prototype gives the same bytes for a fraction.
    """

    raw: bytes
    text: str
    html: str

    @classmethod
    def of(cls, rendered: Rendered, *, from_address: str, from_name: str, unsubscribe: bool = True) -> Prototype:
        """``rendered`` holds ``UNSUBSCRIBE_SLOT`` where each recipient's unsubscribe link goes; without
        ``unsubscribe`` the mail has no such link (a transactional mail: ``Auto-Submitted`` instead)."""
        msg = build_email(
            Rendered(rendered.subject, "", ""),
            to=_TO,
            from_address=from_address,
            from_name=from_name,
            message_id=_MESSAGE_ID,
            date=datetime(2000, 1, 1, tzinfo=UTC),
            unsubscribe_url=UNSUBSCRIBE_SLOT if unsubscribe else None,
        )
        msg.replace_header("Date", _DATE)
        bodies = [part for part in msg.walk() if part.get_content_maintype() == "text"]
        assert len(bodies) == 2, "a fan-out mail has a plain and an HTML body and nothing else"
        for part, marker in zip(bodies, (_TEXT, _HTML), strict=True):
            part.set_payload(marker)  # stays declared base64: the encoded bodies go where the markers are
        return cls(to_bytes(msg), rendered.text, rendered.html)

    def fill(
        self,
        *,
        to: str,
        message_id: str,
        date: datetime,
        unsubscribe_url: str | None,
        text: str | None = None,
        html: str | None = None,
    ) -> bytes:
        """The mail for one recipient; ``text`` and ``html`` replace the prototype's own bodies (a shell's)."""
        text, html = (self.text if text is None else text), (self.html if html is None else html)
        if unsubscribe_url is not None:
            text = text.replace(UNSUBSCRIBE_SLOT, unsubscribe_url)
            html = html.replace(UNSUBSCRIBE_SLOT, unsubscribe_url)
        raw = (
            self.raw.replace(_TO.encode(), to.encode(), 1)
            .replace(_MESSAGE_ID.encode(), message_id.encode(), 1)
            .replace(_DATE.encode(), rfc2822_date(date).encode(), 1)
        )
        if unsubscribe_url is not None:
            raw = raw.replace(UNSUBSCRIBE_SLOT.encode(), unsubscribe_url.encode(), 1)
        return raw.replace(_TEXT.encode(), base64.encodebytes(text.encode()), 1).replace(
            _HTML.encode(), base64.encodebytes(html.encode()), 1
        )


# -- a delivery's mail ------------------------------------------------------------------------------------


class NotReady(Exception):
    """The delivery cannot be rendered yet (its meeting has not arrived): a temporary failure."""


def unsubscribe_url(settings: NotificationSettings, subscription_id: UUID) -> str:
    token = domain.sign_token(settings.signing_secret, "unsubscribe", str(subscription_id))
    return link(settings.links, settings.public_base_url, "unsubscribe", token=token)


def confirm_url(settings: NotificationSettings, subscription_id: UUID) -> str:
    token = domain.sign_token(settings.signing_secret, "confirm", str(subscription_id))
    return link(settings.links, settings.public_base_url, "subscription_confirm", token=token)


def venue_text(venue: Any) -> str | None:
    if not venue:
        return None
    v = json.loads(venue) if isinstance(venue, str) else venue
    place = " ".join(x for x in (v.get("postal_code"), v.get("city")) if x)
    return ", ".join(x for x in (v.get("name"), v.get("street"), place) if x)


def personal_of(row: Any) -> dict[str, Any]:
    return json.loads(row["personal"]) if isinstance(row["personal"], str) else dict(row["personal"] or {})


def _fanout_key(row: Any, personal: dict[str, Any]) -> tuple[Any, ...] | None:
    """Mails alike but for recipient and unsubscribe link (one cause, locale and template, nothing personal)
    share a key; ``None`` for any other mail."""
    if personal or row["transactional"] or not row["subscription_id"]:
        return None
    return (row["tenant"], row["locale"], row["template"], row["cause_event_id"], row["meeting_id"], row["survey_id"])


Lookups = dict[str, dict[Any, Any]]


class Mails:
    """Composes the mail of a delivery row (with the meetings, surveys and causes of its batch, ``Lookups``).
    One per process, shared by its mail workers, and so are its templates and fan-out prototypes."""

    def __init__(self, settings: NotificationSettings, clock: Clock, templates: Templates | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.templates = templates or Templates(settings.template_overrides_dir)
        #: The prototypes of the fan-outs going on: a few at a time, each filled for thousands of recipients.
        self.prototypes: LRUCache[tuple[Any, ...], Prototype] = LRUCache(maxsize=1000)
        #: Shells of other mails, by subject and whether they carry an unsubscribe link: one per meeting and
        #: template at a time, filled with each recipient's own bodies.
        self.shells: LRUCache[tuple[str, bool], Prototype] = LRUCache(maxsize=1000)

    def _context(self, row: Any, lookups: Lookups, personal: dict[str, Any]) -> dict[str, Any]:
        """What the templates see, without the recipient's links; NotReady while the meeting or survey is unknown."""
        tenant, locale, template = row["tenant"], row["locale"], row["template"]
        cause = lookups["causes"].get(row["cause_event_id"], {})
        context: dict[str, Any] = {
            "tenant": tenant,
            "name": "",
            "companions": 0,
            "manage_url": None,
            "reason": cause.get("reason"),
            "news": cause.get("news") or {},
            "unsubscribe_url": None,
            "qr_cid": None,
            **personal,
        }
        tz = "Europe/Berlin"
        meeting = lookups["meetings"].get((tenant, row["meeting_id"])) if row["meeting_id"] else None
        if template in domain.NEEDS_MEETING and meeting is None:
            raise NotReady("meeting not known yet")
        if meeting is not None:
            tz = meeting["timezone"]
            context["meeting"] = {
                "title": meeting["title"],
                "when": domain.when(meeting["starts_at"], meeting["ends_at"], tz, locale),
                "venue": venue_text(meeting["venue"]),
                "url": meeting["url"],
            }
        survey = lookups["surveys"].get((tenant, row["survey_id"])) if row["survey_id"] else None
        if template == "reminder_survey_closes":
            if survey is None:
                raise NotReady("survey not known yet")
            context["survey"] = {"title": survey["title"], "url": survey["url"]}
        if cause.get("due_at"):
            context["deadline"] = domain.day(datetime.fromisoformat(cause["due_at"]), tz, locale)
        return context

    def message_id(self, row: Any) -> str:
        # Stable per delivery: a resend after a crash carries the same id, so mail clients can fold duplicates.
        return f"<{row['id']}@{self.settings.from_address.partition('@')[2] or 'civic'}>"

    def compose(
        self, row: Any, rendered: Rendered, attachments: Attachments | None, unsubscribe: str | None, *, to: str
    ) -> Message:
        """The mail of one delivery, built through the ``email`` package from what ``_render`` made of it."""
        s = self.settings
        return build_email(
            rendered,
            to=to,
            from_address=s.from_address,
            from_name=s.from_name,
            message_id=self.message_id(row),
            date=self.clock.now(),
            attachments=attachments,
            unsubscribe_url=unsubscribe,
        )

    def _render(
        self, row: Any, lookups: Lookups, personal: dict[str, Any]
    ) -> tuple[Rendered, Attachments | None, str | None]:
        """The templates' output for one delivery, its attachments (a ticket's QR code and calendar entry) and
        its unsubscribe link."""
        s = self.settings
        context = self._context(row, lookups, personal)
        meeting = lookups["meetings"].get((row["tenant"], row["meeting_id"])) if row["meeting_id"] else None
        unsubscribe = None
        if not row["transactional"] and row["subscription_id"]:
            unsubscribe = unsubscribe_url(s, row["subscription_id"])
            context["unsubscribe_url"] = unsubscribe
        if row["template"] == "subscription_confirm" and row["subscription_id"]:
            context["confirm_url"] = confirm_url(s, row["subscription_id"])
        attachments = None
        if row["template"] in domain.WITH_TICKET and personal.get("ticket_code") and meeting is not None:
            context["qr_cid"] = f"ticket-{row['id']}@civic"
            attachments = Attachments(
                qr=ticket_qr(personal["ticket_code"]),
                qr_cid=context["qr_cid"],
                ics=meeting_ics(
                    uid=f"{row['registration_id'] or row['id']}@civic",
                    title=meeting["title"],
                    starts_at=meeting["starts_at"],
                    ends_at=meeting["ends_at"],
                    location=venue_text(meeting["venue"]),
                    url=meeting["url"],
                    stamp=self.clock.now(),
                ),
            )
        return self.templates.render(row["tenant"], row["locale"], row["template"], context), attachments, unsubscribe

    def wire(self, row: Any, lookups: Lookups, to: str | None = None) -> bytes:
        """The mail as it goes over SMTP to ``to`` (the row's address written for the wire). A fan-out mail is
        filled in from its cause's prototype; any other mail without attachments from the shell of its subject
        (headers and MIME structure built once, its own bodies put in), so that a rush of registrations does
        not build every confirmation through the ``email`` package."""
        to = to or row["address"]
        personal = personal_of(row)
        key = _fanout_key(row, personal)
        s = self.settings
        if key is None:
            rendered, attachments, unsubscribe = self._render(row, lookups, personal)
            if attachments is None:
                shell_key = (rendered.subject, unsubscribe is not None)
                shell = self.shells.get(shell_key)
                if shell is None:
                    shell = Prototype.of(
                        Rendered(rendered.subject, "", ""),
                        from_address=s.from_address,
                        from_name=s.from_name,
                        unsubscribe=unsubscribe is not None,
                    )
                    self.shells[shell_key] = shell
                return shell.fill(
                    to=to,
                    message_id=self.message_id(row),
                    date=self.clock.now(),
                    unsubscribe_url=unsubscribe,
                    text=rendered.text,
                    html=rendered.html,
                )
            # Built from what was rendered above: a ticket's QR code and calendar file are made once a mail.
            if to.isascii():
                return to_bytes(self.compose(row, rendered, attachments, unsubscribe, to=to))
            # An SMTPUTF8 mail carries the address in UTF-8 as it stands (RFC 6532), not as an encoded word.
            return to_bytes(self.compose(row, rendered, attachments, unsubscribe, to=RECIPIENT_SLOT)).replace(
                RECIPIENT_SLOT.encode(), to.encode(), 1
            )
        proto = self.prototypes.get(key)
        if proto is None:
            context = self._context(row, lookups, {}) | {"unsubscribe_url": UNSUBSCRIBE_SLOT}
            rendered = self.templates.render(row["tenant"], row["locale"], row["template"], context)
            proto = Prototype.of(rendered, from_address=s.from_address, from_name=s.from_name)
            self.prototypes[key] = proto
        return proto.fill(
            to=to,
            message_id=self.message_id(row),
            date=self.clock.now(),
            unsubscribe_url=unsubscribe_url(s, row["subscription_id"]),
        )
