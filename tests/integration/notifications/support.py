"""A real HTTP receiver for the notifications tests, and the service itself running with its bus loops against
the test's PostgreSQL and Redis; the real SMTP server is tests/mail.py's."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID, uuid4

import httpx

from services.notifications.service import definition
from services.notifications.settings import NotificationSettings
from shared.bus.outbox import Outbox
from shared.clock import Clock
from shared.contracts.envelope import Envelope, Payload
from shared.contracts.registration import MeetingPublishedV1, Venue
from shared.contracts.registry import REGISTRY
from shared.service import ServiceContext, ServiceRuntime
from shared.settings import Settings
from tests.mail import Sink as Sink  # the notifications tests import the SMTP server from here
from tests.mail import SmtpServer as SmtpServer
from tests.mail import smtp_server as smtp_server
from tests.rigs import started

TABLES = "deliveries, causes, registrations, meetings, surveys, subscriptions, recipients, webhook_endpoints, processes"


def mail_settings(port: int, **kw: Any) -> NotificationSettings:
    values: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_timeout_seconds": 5.0,
        "sender_poll_seconds": 0.05,
        "email_retry_initial_seconds": 0.2,
        "email_retry_max_seconds": 0.5,
        "signing_secret": "test-secret",
        "public_base_url": "http://civic.test",
        "webhook_timeout_seconds": 3.0,
        "webhook_retry_schedule": [0.2, 0.2, 0.2],
    }
    values.update(kw)
    return NotificationSettings(**values)


@dataclass
class Running:
    client: httpx.AsyncClient
    ctx: ServiceContext
    runtime: ServiceRuntime
    tenant: str = field(default_factory=lambda: f"kreis-{uuid4().hex[:8]}")

    async def feed(self, env: Envelope) -> None:
        """Hand an event to the service's consumer as if read from its stream (processed-event record and all)."""
        consumer = self.runtime.consumer
        assert consumer is not None
        key = self.ctx.keys.stream(REGISTRY.get(env.type).stream)
        await consumer.handle_entries(key, [(b"0-1", {b"__data__": env.model_dump_json().encode()})])

    async def known_process(self) -> UUID:
        """A process as content publishes it: from then on it can be subscribed to."""
        from shared.contracts.content import ContentPublishedV1

        process_id = uuid4()
        published = ContentPublishedV1(content_id=process_id, kind="process", process_id=process_id, title="Verfahren")
        await self.feed(envelope(published, self.tenant, f"process/{process_id}", producer="content"))
        return process_id

    async def rows(self, sql: str, *args: Any) -> list[Any]:
        return list(await self.ctx.pool.fetch(sql, *args))

    async def outbox_events(self, type_: str, cause: UUID | None = None) -> list[dict[str, Any]]:
        rows = await self.ctx.pool.fetch("select envelope from outbox where type = $1", type_)
        found = [json.loads(r["envelope"]) for r in rows]
        return [e for e in found if cause is None or e["data"]["cause_event_id"] == str(cause)]


@contextlib.asynccontextmanager
async def running_service(
    settings: Settings, nsettings: NotificationSettings, *, clock: Clock | None = None
) -> AsyncIterator[Running]:
    async with started(
        dataclasses.replace(definition, settings=lambda: nsettings), settings=settings, clock=clock
    ) as service:
        # One database per test session: start each test from empty notification tables.
        await service.ctx.pool.execute(f"truncate {TABLES}")
        yield Running(service.client, service.ctx, service.runtimes[0])


_seq: dict[str, int] = {}


def envelope(payload: Payload, tenant: str, subject: str | None = None, producer: str = "registration") -> Envelope:
    """An event as its producer would publish it, with the next sequence number of its subject."""
    seq = None
    if subject is not None:
        seq = _seq[subject] = _seq.get(subject, 0) + 1
    return Outbox(producer).envelope(payload, tenant=tenant, subject=subject, sequence=seq)


BERLIN_EVENING = datetime(2021, 10, 28, 16, 0, tzinfo=UTC)  # 18:00 in Heide


def meeting(process_id: UUID | None = None, **kw: Any) -> MeetingPublishedV1:
    values: dict[str, Any] = {
        "meeting_id": uuid4(),
        "title": "Auftaktveranstaltung Digitalstrategie",
        "starts_at": BERLIN_EVENING,
        "ends_at": datetime(2021, 10, 28, 18, 0, tzinfo=UTC),
        "venue": Venue(name="Berufsbildungszentrum", street="Musterstraße 2", postal_code="25746", city="Heide"),
        "process_id": process_id,
        "registration_closes_at": datetime(2021, 10, 25, 22, 0, tzinfo=UTC),
        "url": "https://beteiligung.example.org/termine/auftakt",
    }
    values.update(kw)
    return MeetingPublishedV1(**values)


# -- webhook receiver --------------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A tiny HTTP server in a thread; answers with the next status of ``statuses`` (the last one repeats)."""

    def __init__(self, statuses: list[int] | None = None, redirect_to: str | None = None) -> None:
        self.statuses = list(statuses or [200])
        self.redirect_to = redirect_to
        self.received: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                self.send_response(status)
                if receiver.redirect_to and 300 <= status < 400:
                    self.send_header("Location", receiver.redirect_to)
                self.send_header("content-length", "0")
                self.end_headers()

            do_POST = do_GET = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class Receiver6(Receiver):
    """The same on ::1, for the IPv6 loopback case."""

    def __init__(self) -> None:
        class Server6(ThreadingHTTPServer):
            address_family = socket.AF_INET6

        super().__init__()
        self.server.server_close()
        handler = self.server.RequestHandlerClass
        self.server = Server6(("::1", 0), handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
