"""A local SMTP sink for development: accepts every message, keeps it as an .eml file, lists and shows them.

``make up`` points the notifications service at it and serves the messages at ``/dev/mail``.
"""

from __future__ import annotations

import email
import email.policy
import html
import itertools
import logging
import re
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiosmtpd.controller import Controller
from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from shared.http.problems import Problem


class _Store:
    _counter = itertools.count(1)

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        name = f"{time.time_ns()}-{next(self._counter):06d}.eml"
        (self.folder / name).write_bytes(envelope.original_content or envelope.content)
        return "250 Message accepted"


@dataclass
class MailSink:
    folder: Path
    host: str = "127.0.0.1"
    port: int = 1025

    def start(self) -> MailSink:
        # aiosmtpd logs every SMTP command and reply at INFO ("mail.log"): most of a day's log, none of it news.
        for name in ("mail.log", "aiosmtpd"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._controller = Controller(_Store(self.folder), hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def messages(self) -> list[tuple[str, EmailMessage]]:
        out = []
        for path in sorted(self.folder.glob("*.eml")):
            out.append((path.stem, _parse(path.read_bytes())))
        return out

    def _find(self, mid: str) -> tuple[bytes, EmailMessage]:
        # The id is a file name this sink made; anything else (a path, a dot) is simply not found.
        if not _ID.fullmatch(mid):
            raise Problem(404, "Not found", detail=f"no message {mid}")
        path = self.folder / f"{mid}.eml"
        if not path.is_file():
            raise Problem(404, "Not found", detail=f"no message {mid}")
        raw = path.read_bytes()
        return raw, _parse(raw)

    def router(self) -> APIRouter:
        router = APIRouter(prefix="/dev/mail", include_in_schema=False)

        @router.get("", response_class=HTMLResponse)
        async def index() -> HTMLResponse:
            rows = "".join(
                f"<tr><td>{html.escape(str(m['Date']))}</td><td>{html.escape(str(m['To']))}</td>"
                f"<td><a href='/dev/mail/{mid}'>{html.escape(str(m['Subject']))}</a></td></tr>"
                for mid, m in reversed(self.messages())
            )
            return _page(
                "civic: received mail",
                "<h1>Mail received by the development SMTP sink</h1>"
                f"<table><tr><th>date<th>to<th>subject</tr>{rows}</table>",
            )

        @router.get("/{mid}", response_class=HTMLResponse)
        async def show(mid: str) -> HTMLResponse:
            """The mail as its recipient sees it: the HTML part (with its inline images) in a sandboxed frame,
            the plain text, the attachments, and the raw message."""
            _, msg = self._find(mid)
            head = "".join(
                f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(msg[k]))}</td></tr>"
                for k in ("From", "To", "Subject", "Date", "Message-ID")
                if msg[k] is not None
            )
            parts = list(_leaves(msg))
            body_html = msg.get_body(preferencelist=("html",))
            body_text = msg.get_body(preferencelist=("plain",))
            shown = []
            if body_html is not None:
                shown.append(
                    # Sandboxed without scripts; same origin only so its images load from this sink.
                    "<h2>HTML</h2><iframe title='the HTML part of the mail' sandbox='allow-same-origin' "
                    f"src='/dev/mail/{mid}/html' style='width:100%;height:70vh;border:1px solid #888'></iframe>"
                )
            if body_text is not None:
                shown.append(f"<h2>Plain text</h2><pre>{html.escape(body_text.get_content())}</pre>")
            listed = "".join(
                f"<li><a href='/dev/mail/{mid}/parts/{i}'>{html.escape(_label(part))}</a> "
                f"({html.escape(part.get_content_type())}, {len(part.get_payload(decode=True) or b'')} bytes"
                f"{', inline' if part.get_content_disposition() == 'inline' else ''})</li>"
                for i, part in enumerate(parts)
                if part is not body_html and part is not body_text
            )
            return _page(
                f"civic: {msg['Subject']}",
                f"<p><a href='/dev/mail'>all mail</a> · <a href='/dev/mail/{mid}/raw'>raw message (.eml)</a></p>"
                f"<h1>{html.escape(str(msg['Subject']))}</h1><table>{head}</table>{''.join(shown)}"
                + (f"<h2>Attachments and inline parts</h2><ul>{listed}</ul>" if listed else ""),
            )

        @router.get("/{mid}/html")
        async def html_part(mid: str) -> Response:
            _, msg = self._find(mid)
            body = msg.get_body(preferencelist=("html",))
            if body is None:
                raise Problem(404, "Not found", detail="this mail has no HTML part")
            by_cid = {
                str(p["Content-ID"]).strip("<>"): i for i, p in enumerate(_leaves(msg)) if p["Content-ID"] is not None
            }

            def inline(match: re.Match[str]) -> str:
                index = by_cid.get(match.group(2))
                return f"{match.group(1)}/dev/mail/{mid}/parts/{index}" if index is not None else match.group(0)

            text = _CID.sub(inline, body.get_content())
            # Only what this sink serves: a remote image or font in a mail would be a third-party request.
            return Response(text, media_type="text/html; charset=utf-8", headers={"Content-Security-Policy": _CSP_HTML})

        @router.get("/{mid}/parts/{index}")
        async def part(mid: str, index: int) -> Response:
            _, msg = self._find(mid)
            parts = list(_leaves(msg))
            if not 0 <= index < len(parts):
                raise Problem(404, "Not found", detail=f"message {mid} has no part {index}")
            p = parts[index]
            disposition = "inline" if p.get_content_type().startswith("image/") else "attachment"
            filename = p.get_filename() or f"part-{index}"
            return Response(
                p.get_payload(decode=True) or b"",
                media_type=p.get_content_type(),
                headers={
                    "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(filename)}",
                    "Content-Security-Policy": _CSP,
                    "X-Content-Type-Options": "nosniff",
                },
            )

        @router.get("/{mid}/raw")
        async def raw(mid: str) -> Response:
            data, _ = self._find(mid)
            return Response(
                data,
                media_type="message/rfc822",
                headers={"Content-Disposition": f"attachment; filename={mid}.eml"},
            )

        return router


_ID = re.compile(r"[0-9]+-[0-9]{6}")
_CID = re.compile(r"""((?:src|href)\s*=\s*["']?)cid:([^"'\s>]+)""", re.IGNORECASE)
_CSP_HTML = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"
_CSP = _CSP_HTML + "; sandbox"
_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.5rem;max-width:70rem}table{border-collapse:collapse}"
    "th,td{border:1px solid #888;padding:.25rem .5rem;text-align:left;vertical-align:top}pre{white-space:pre-wrap}"
)


def _parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def _leaves(msg: EmailMessage) -> list[EmailMessage]:
    """Every non-multipart part in order: the index of a part in this list is its address."""
    return [p for p in msg.walk() if isinstance(p, EmailMessage) and not p.is_multipart()]


def _label(part: EmailMessage) -> str:
    return part.get_filename() or str(part["Content-ID"] or "") or part.get_content_type()


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style><body>{body}</body></html>",
        headers={"Content-Security-Policy": "default-src 'self'; style-src 'unsafe-inline'; frame-src 'self'"},
    )
