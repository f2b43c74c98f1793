"""Traces across HTTP -> outbox -> consumer, exported over OTLP/HTTP to a receiver on loopback.

``civic.up`` runs with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at a small OTLP receiver in this test. A
registration sent with a ``traceparent`` of the test's own must come back as one trace: the request's server
span, the ``traceparent`` extension in the events' envelopes, and the notifications service's span handling
the confirmation, all with the test's trace id.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from civic.devservers import free_port
from tests.conftest import ADMIN_URL, REDIS_URL
from tests.faults.system import System
from tests.support import drop_test_state, eventually

CONFIRMED = "civic.registration.registration.confirmed.v2"


class Receiver:
    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        received = self.spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest.FromString(body)
                for resource in request.resource_spans:
                    service = next(
                        (a.value.string_value for a in resource.resource.attributes if a.key == "service.name"), ""
                    )
                    for scope in resource.scope_spans:
                        for span in scope.spans:
                            received.append(
                                {"service": service, "name": span.name, "trace": span.trace_id.hex(), "kind": span.kind}
                            )
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.port = free_port()
        self.server = HTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


async def test_a_registration_is_one_trace_from_request_to_consumer(receiver: Receiver, tmp_path: Path) -> None:
    database, prefix = f"civic_trace_{secrets.token_hex(4)}", f"trace{secrets.token_hex(4)}"
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'create database "{database}"')
    finally:
        await admin.close()
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"
    system = System(
        tmp_path,
        {
            "DATABASE_URL": url,
            "REDIS_URL": REDIS_URL,
            "CIVIC_STREAM_PREFIX": prefix,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.port}",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        },
    )
    try:
        await system.start()
        meeting = await system.create_meeting(capacity=10)
        trace_id = secrets.token_hex(16)
        async with httpx.AsyncClient(base_url=system.base_url, timeout=10) as client:
            answer = await client.post(
                f"/api/registration/meetings/{meeting}/registrations",
                json={"name": "Alex Beispiel", "email": "alex@example.org", "privacy_consent": True},
                headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
            )
        assert answer.status_code == 201, answer.text

        async def traced() -> list[dict[str, Any]]:
            mine = [s for s in receiver.spans if s["trace"] == trace_id]
            names = {s["name"] for s in mine}
            server = any(n.startswith("POST /api/registration/meetings/") for n in names)
            return mine if server and f"notifications handle {CONFIRMED}" in names else []

        spans = await eventually(traced, timeout=60, interval=0.2, what="the request's and the consumer's spans")
        assert {s["kind"] for s in spans} >= {2, 5}  # SERVER and CONSUMER (OTLP's span kinds)

        conn = await asyncpg.connect(url)
        try:
            envelopes = [
                json.loads(r["envelope"])
                for r in await conn.fetch("select envelope from registration.outbox where type = $1", CONFIRMED)
            ]
        finally:
            await conn.close()
        assert [e["traceparent"].split("-")[1] for e in envelopes] == [trace_id]
    finally:
        system.stop()
        await drop_test_state(ADMIN_URL, database, REDIS_URL, prefix)
