"""What the end-to-end story needs besides the deployment: the clock file, reading the mail, a webhook receiver,
and scanning every service schema for a value."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg

SERVICE_SCHEMAS = ("registration", "surveys", "notifications", "content")

#: How a mail's kind shows in its (German) subject, per template of services/notifications/templates/de/.
SUBJECT_KINDS = (
    ("Anmeldung bestätigt:", "confirmed"),
    ("Warteliste:", "waitlisted"),
    ("Ein Platz ist frei geworden:", "promoted"),
    ("Anmeldung storniert:", "cancelled"),
    ("Erinnerung:", "reminder_meeting_starts"),
    ("Anmeldeschluss naht:", "reminder_registration_closes"),
    ("Umfrage endet bald:", "reminder_survey_closes"),
    ("Bitte bestätigen Sie Ihr Abonnement", "subscription_confirm"),
)


def set_clock(path: Path, at: datetime) -> None:
    """Move the services' FileClock: they notice the file's new mtime on their next ``now()``."""
    assert at.tzinfo is not None
    tmp = path.with_suffix(".tmp")
    tmp.write_text(at.isoformat())
    os.replace(tmp, path)
    # A distinct mtime per move, even for two moves within the file system's timestamp granularity.
    stamp = time.time_ns()
    os.utime(path, ns=(stamp, stamp))


# --- mail --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    kind: str
    message: EmailMessage

    @property
    def text(self) -> str:
        body = self.message.get_body(preferencelist=("plain",))
        assert body is not None, f"no text part in {self.subject!r}"
        return str(body.get_content())

    def parts(self, content_type: str) -> list[EmailMessage]:
        return [p for p in self.message.walk() if p.get_content_type() == content_type]


def classify(msg: EmailMessage) -> Mail:
    subject = str(msg["Subject"])
    kind = next((k for prefix, k in SUBJECT_KINDS if subject.startswith(prefix)), f"unknown: {subject}")
    return Mail(to=str(msg["To"]).strip().lower(), subject=subject, kind=kind, message=msg)


def link_to(text: str, path: str) -> str:
    """The first link in a mail's text whose path starts with ``path``."""
    match = re.search(r"https?://[^/\s]+" + re.escape(path) + r"\S*", text)
    assert match, f"no link to {path} in:\n{text}"
    return match.group(0)


# --- webhooks ----------------------------------------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        data = json.loads(self.body)
        assert isinstance(data, dict)
        return data


def verify_standard_webhook(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks, written down independently of the service: ``v1,<base64 HMAC-SHA256>`` over
    ``<webhook-id>.<webhook-timestamp>.<body>`` keyed with the base64 secret after ``whsec_``."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [s.partition(",")[2] for s in headers["webhook-signature"].split() if s.startswith("v1,")]
    return any(hmac.compare_digest(expected, o) for o in offered)


@dataclass
class WebhookReceiver:
    """An HTTP endpoint on the loopback interface that answers 204 and keeps every request."""

    port: int
    received: list[Received] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/civic"

    @contextlib.contextmanager
    def running(self) -> Iterator[WebhookReceiver]:
        received = self.received
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with lock:
                    received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)


# --- personal data in the databases ------------------------------------------------------------------------------


async def tables_holding(database_url: str, needle: str) -> list[str]:
    """``schema.table.column`` of every text, JSON, array or bytea column of a table in the four service
    schemas that holds ``needle`` in any row (text compared case-insensitively, bytea byte for byte)."""
    conn = await asyncpg.connect(database_url)
    try:
        columns = await conn.fetch(
            "select c.table_schema, c.table_name, c.column_name, c.data_type from information_schema.columns c "
            "join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name "
            "where c.table_schema = any($1::text[]) and t.table_type = 'BASE TABLE' "
            "and c.data_type in ('text', 'character varying', 'character', 'json', 'jsonb', 'bytea', 'ARRAY') "
            "order by 1, 2, 3",
            list(SERVICE_SCHEMAS),
        )
        assert columns, f"no columns in {SERVICE_SCHEMAS}: is this the services' database?"
        hits = []
        for c in columns:
            ident = f'"{c["table_schema"]}"."{c["table_name"]}"'
            col = f'"{c["column_name"]}"'
            if c["data_type"] == "bytea":
                condition = f"position(convert_to($1, 'UTF8') in {col}) > 0"
            else:
                condition = f"position(lower($1) in lower({col}::text)) > 0"
            if await conn.fetchval(f"select exists (select 1 from {ident} where {condition})", needle):
                hits.append(f"{c['table_schema']}.{c['table_name']}.{c['column_name']}")
        return hits
    finally:
        await conn.close()
