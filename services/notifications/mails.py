"""Turning a delivery into a mail: templates per locale (overridable per tenant), QR ticket, calendar file."""

from __future__ import annotations

import base64
import functools
import io
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

import qrcode
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, Template

from shared.calendar import meeting_ics as meeting_ics  # the sender attaches it

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
        self._envs: dict[tuple[str, str], Environment] = {}

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


def qr_png(code: str) -> bytes:
    img = qrcode.make(code, box_size=6, border=2)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


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
    def of(cls, rendered: Rendered, *, from_address: str, from_name: str) -> Prototype:
        """``rendered`` holds ``UNSUBSCRIBE_SLOT`` where each recipient's unsubscribe link goes."""
        msg = build_email(
            Rendered(rendered.subject, "", ""),
            to=_TO,
            from_address=from_address,
            from_name=from_name,
            message_id=_MESSAGE_ID,
            date=datetime(2000, 1, 1, tzinfo=UTC),
            unsubscribe_url=UNSUBSCRIBE_SLOT,
        )
        msg.replace_header("Date", _DATE)
        bodies = [part for part in msg.walk() if part.get_content_maintype() == "text"]
        assert len(bodies) == 2, "a fan-out mail has a plain and an HTML body and nothing else"
        for part, marker in zip(bodies, (_TEXT, _HTML), strict=True):
            part.set_payload(marker)  # stays declared base64: the encoded bodies go where the markers are
        return cls(to_bytes(msg), rendered.text, rendered.html)

    def fill(self, *, to: str, message_id: str, date: datetime, unsubscribe_url: str) -> bytes:
        text = base64.encodebytes(self.text.replace(UNSUBSCRIBE_SLOT, unsubscribe_url).encode())
        html = base64.encodebytes(self.html.replace(UNSUBSCRIBE_SLOT, unsubscribe_url).encode())
        return (
            self.raw.replace(_TO.encode(), to.encode(), 1)
            .replace(_MESSAGE_ID.encode(), message_id.encode(), 1)
            .replace(_DATE.encode(), rfc2822_date(date).encode(), 1)
            .replace(UNSUBSCRIBE_SLOT.encode(), unsubscribe_url.encode(), 1)
            .replace(_TEXT.encode(), text, 1)
            .replace(_HTML.encode(), html, 1)
        )
