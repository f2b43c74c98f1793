"""HTTP request metrics in Prometheus naming: how many, how they ended, how long they took, per route template.

Labelled by the route's template (``/api/registration/meetings/{meeting_id}/registrations``), never by the
raw path, so a metric series is per endpoint and not per meeting; paths no route matched share "unmatched".
A pure ASGI middleware: it adds a clock read and two dictionary lookups to a request, nothing per body chunk.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter(
    "civic_http_requests_total", "HTTP requests answered, by route template and status", ["method", "route", "status"]
)
DURATION = Histogram(
    "civic_http_request_duration_seconds",
    "Time from a request's arrival to its answer's first byte, by route template",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
IN_PROGRESS = Gauge("civic_http_requests_in_progress", "HTTP requests being handled", ["method"])

#: Not worth a series of their own on every scrape.
_SKIPPED = frozenset({"/metrics", "/healthz"})


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _SKIPPED:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        started = time.perf_counter()
        status = [500]  # what an exception that escapes every handler ends as
        answered = [False]

        route = ["unmatched"]

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
                answered[0] = True
                route[0] = _route(scope)  # now: FastAPI forgets the matched route once it has answered
                DURATION.labels(method, route[0]).observe(time.perf_counter() - started)
            await send(message)

        in_progress = IN_PROGRESS.labels(method)
        in_progress.inc()
        try:
            await self.app(scope, receive, timed_send)
        finally:
            in_progress.dec()
            if not answered[0]:
                route[0] = _route(scope)
                DURATION.labels(method, route[0]).observe(time.perf_counter() - started)
            REQUESTS.labels(method, route[0], str(status[0])).inc()


def _route(scope: Scope) -> str:
    """The matched route's full template. FastAPI (0.120+) matches routers included with a prefix lazily and
    keeps the effective, prefixed path in its own scope entry; ``scope["route"]`` has the router's own path."""
    effective = scope.get("fastapi", {}).get("effective_route_context")
    path = getattr(effective, "path", None) or getattr(scope.get("route"), "path", None)
    return str(path) if path else "unmatched"
