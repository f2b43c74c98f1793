"""OpenTelemetry traces across HTTP -> outbox -> consumer, exported only when an OTLP endpoint is configured.

With ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) set, each process exports its
spans over OTLP/HTTP in batches; without it nothing is set up and nothing leaves the process (the API's
no-op tracer, no middleware). A request's span (continuing an incoming W3C ``traceparent``) is the parent of
the events written while it runs: their CloudEvents envelope carries it in the ``traceparent`` extension
attribute (CloudEvents' distributed tracing extension), and the consumer that handles an event opens its
span as that span's child, so one trace shows a registration from its request to every service it reached.
The standard ``OTEL_*`` variables (service name, sampler, headers) apply.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

from opentelemetry import propagate, trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_state = {"enabled": False}
_TRACER = "civic"


def configure_tracing(service_names: list[str]) -> bool:
    """Export spans if an OTLP endpoint is configured; True if it is. Once per process."""
    if _state["enabled"]:
        return True
    if not (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME") or "civic-" + "+".join(service_names or ["all"])
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _state["enabled"] = True
    return True


def enabled() -> bool:
    return _state["enabled"]


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the span running now, for an event's envelope; None when not tracing."""
    if not _state["enabled"]:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


@contextlib.contextmanager
def handling(event_type: str, traceparent: str | None, service: str) -> Iterator[None]:
    """A consumer's span for handling one event, a child of the span that wrote it."""
    if not _state["enabled"]:
        yield
        return
    parent = propagate.extract({"traceparent": traceparent}) if traceparent else None
    tracer = trace.get_tracer(_TRACER)
    attributes = {"messaging.system": "redis", "messaging.operation": "process", "cloudevents.event_type": event_type}
    with tracer.start_as_current_span(
        f"{service} handle {event_type}", context=parent, kind=trace.SpanKind.CONSUMER, attributes=attributes
    ):
        yield


@contextlib.contextmanager
def handling_batch(event_type: str, traceparents: list[str | None], service: str) -> Iterator[None]:
    """A consumer's span for handling several events at once (a ``Batched`` handler), linked to the span that
    wrote each of them: a span has one parent, and the events come from many requests. A run of one event is
    that event's own span, a child of the span that wrote it, as ``handling`` makes it."""
    if len(traceparents) == 1:
        with handling(event_type, traceparents[0], service):
            yield
        return
    if not _state["enabled"]:
        yield
        return
    links = []
    for tp in traceparents:
        if tp and (ctx := trace.get_current_span(propagate.extract({"traceparent": tp})).get_span_context()).is_valid:
            links.append(trace.Link(ctx))
    attributes: dict[str, str | int] = {
        "messaging.system": "redis",
        "messaging.operation": "process",
        "messaging.batch.message_count": len(traceparents),
        "cloudevents.event_type": event_type,
    }
    tracer = trace.get_tracer(_TRACER)
    with tracer.start_as_current_span(
        f"{service} handle {event_type}", kind=trace.SpanKind.CONSUMER, attributes=attributes, links=links
    ):
        yield


class TracingMiddleware:
    """A server span per HTTP request, named by its route template, continuing an incoming ``traceparent``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in ("/metrics", "/healthz", "/readyz"):
            await self.app(scope, receive, send)
            return
        from shared.http.metrics import _route

        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        tracer = trace.get_tracer(_TRACER)
        started = time.time_ns()
        with tracer.start_as_current_span(
            scope["method"],
            context=propagate.extract(headers),
            kind=trace.SpanKind.SERVER,
            start_time=started,
            attributes={"http.request.method": scope["method"], "url.path": scope["path"]},
        ) as span:

            async def traced_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    route = _route(scope)
                    span.update_name(f"{scope['method']} {route}")
                    attributes: dict[str, Any] = {
                        "http.route": route,
                        "http.response.status_code": int(message["status"]),
                    }
                    span.set_attributes(attributes)
                    if int(message["status"]) >= 500:
                        span.set_status(trace.Status(trace.StatusCode.ERROR))
                await send(message)

            await self.app(scope, receive, traced_send)
