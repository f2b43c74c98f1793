"""A local SMTP sink for development: accepts every message, keeps it as an .eml file, lists and shows them.

``make up`` points the notifications service at it and serves the messages at ``/dev/mail``.
"""

from __future__ import annotations

import email
import email.policy
import html
import itertools
import logging
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from fastapi import APIRouter
from fastapi.responses import HTMLResponse, PlainTextResponse

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
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            out.append((path.stem, msg))
        return out

    def router(self) -> APIRouter:
        router = APIRouter(prefix="/dev/mail", include_in_schema=False)

        @router.get("", response_class=HTMLResponse)
        async def index() -> str:
            rows = "".join(
                f"<tr><td>{html.escape(str(m['Date']))}</td><td>{html.escape(str(m['To']))}</td>"
                f"<td><a href='/dev/mail/{mid}'>{html.escape(str(m['Subject']))}</a></td></tr>"
                for mid, m in reversed(self.messages())
            )
            return (
                "<!doctype html><meta charset=utf-8><title>civic: received mail</title>"
                "<h1>Mail received by the development SMTP sink</h1>"
                f"<table border=1 cellpadding=4><tr><th>date<th>to<th>subject</tr>{rows}</table>"
            )

        @router.get("/{mid}", response_class=PlainTextResponse)
        async def show(mid: str) -> str:
            for found, msg in self.messages():
                if found == mid:
                    body = msg.get_body(preferencelist=("plain", "html"))
                    parts = [f"{k}: {v}" for k, v in msg.items()]
                    attachments = [
                        f"[attachment] {a.get_filename()} ({a.get_content_type()})" for a in msg.iter_attachments()
                    ]
                    return "\n".join([*parts, "", body.get_content() if body else "", *attachments])
            raise Problem(404, "Not found", detail=f"no message {mid}")

        return router
