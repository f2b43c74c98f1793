"""JSON logs that carry the event id and correlation id of whatever is being handled."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)
event_id_var: ContextVar[str | None] = ContextVar("event_id", default=None)
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_correlation_id() -> str | None:
    """What events made now belong to: the chain of the event being handled, else the request."""
    return correlation_id_var.get() or request_id_var.get()


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = correlation_id_var.get()
        record.event_id = event_id_var.get()
        record.request_id = request_id_var.get()
        return True


class _OneLineReconnects(logging.Filter):
    """asyncpg logs a traceback each time a pool fails to refill while PostgreSQL is away; the message and
    the error say all there is to say (and the outage is logged by civic's loops)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "asyncpg.pool" and record.exc_info and record.levelno <= logging.WARNING:
            record.error = repr(record.exc_info[1])
            record.exc_info = None
            record.exc_text = None
        return True


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter())
    handler.addFilter(_OneLineReconnects())
    if json:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(event_id)s %(correlation_id)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
