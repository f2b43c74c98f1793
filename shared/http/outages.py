"""A request that finds PostgreSQL or Redis unreachable answers 503 with ``Retry-After``, never a 500 or a hang.

During a PostgreSQL restart or failover (or a Redis failover) the pools reconnect on their own, with the
next request; the requests in the gap are told to come back, as a problem document of type ``unavailable``.
Nothing was committed for them, except in the one case no server can rule out: the connection broke after
COMMIT was sent and before its answer arrived. Clients retry with the same data; civic's writes that
matter (a registration, a survey response) are idempotent on what the person sends.
"""

from __future__ import annotations

import logging
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from shared.bus.errors import TRANSIENT
from shared.http.problems import Problem, problem_response

log = logging.getLogger(__name__)

#: Seconds a client should wait: about one reconnect attempt of the pools, short enough for a person.
RETRY_AFTER_SECONDS = 2


def unavailable() -> Problem:
    return Problem(
        503,
        "Service unavailable",
        type_="unavailable",
        detail="A database of this service is restarting or unreachable. Please try again in a moment.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


#: At most one log line per this many seconds: an outage under load is hundreds of requests a second.
LOG_EVERY_SECONDS = 5.0


class _Throttle:
    def __init__(self) -> None:
        self.last = 0.0
        self.suppressed = 0

    def note(self, path: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - self.last < LOG_EVERY_SECONDS:
            self.suppressed += 1
            return
        log.warning(
            "requests answered 503: a server is unreachable",
            extra={"path": path, "error": repr(exc)[:300], "since_last_line": self.suppressed + 1},
        )
        self.last, self.suppressed = now, 0


def install(app: FastAPI) -> None:
    throttle = _Throttle()

    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        throttle.note(request.url.path, exc)
        return problem_response(unavailable(), request)

    for kind in TRANSIENT:
        if issubclass(kind, Exception):
            app.add_exception_handler(kind, _unavailable)
