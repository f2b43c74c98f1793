"""What the fault programs share: configuration from the environment, logging, the consumer's effect, and a
Redis client wrapper through which a program injects its fault at an exact point (never a production flag)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from shared.bus.streams import Keys, redis_client
from shared.contracts.content import QrScannedV1
from shared.contracts.registry import Event
from shared.db import Conn

QR_SCANNED = "civic.content.qr.scanned.v1"
PRODUCER = "content"
STREAM = "content"

#: The consumer's schema: ``effects`` holds one row per event (the state), ``effects_log`` one row per
#: application, so a second application of the same event is counted instead of failing.
EFFECTS_SQL = """
create table effects (event_id uuid primary key, code text not null, seq int not null);
create table effects_log (id bigserial primary key, event_id uuid not null, code text not null);
"""


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise SystemExit(f"{name} is not set")
    return value


def fault() -> str:
    return os.environ.get("CIVIC_FAULT", "")


def keys() -> Keys:
    return Keys(env("CIVIC_PREFIX", "faults"))


def configure_logging() -> None:
    # One line per record with its wall-clock time, so a test can count warnings per second.
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(created).3f %(levelname)s %(name)s %(message)s %(error)s"
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(_default_error)


def _default_error(record: logging.LogRecord) -> bool:
    if not hasattr(record, "error"):
        record.error = ""
    return True


def say(what: str) -> None:
    """A marker line on stdout that the test waits for."""
    print(what, flush=True)


def die() -> None:
    """SIGKILL ourselves: no finally blocks, no flushing, no goodbye to the servers."""
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def pause() -> None:
    """SIGSTOP ourselves; the test resumes us with SIGCONT."""
    say("pausing")
    os.kill(os.getpid(), signal.SIGSTOP)
    say("resumed")


class FaultyRedis:
    """Delegates to a real client; ``before``/``after`` hooks run around chosen commands (and around a
    pipeline's ``execute``, under the name ``pipeline``)."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        before: dict[str, Callable[[], None]] | None = None,
        after: dict[str, Callable[[], None]] | None = None,
    ) -> None:
        self._client = client
        self._before = before or {}
        self._after = after or {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name == "pipeline":
            return self._pipeline
        if name in self._before or name in self._after:
            return self._wrap(name, attr)
        return attr

    def _wrap(self, name: str, method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            if name in self._before:
                self._before[name]()
            result = await method(*args, **kwargs)
            if name in self._after:
                self._after[name]()
            return result

        return call

    def _pipeline(self, *args: Any, **kwargs: Any) -> Any:
        pipe = self._client.pipeline(*args, **kwargs)
        real_execute = pipe.execute
        pipe.execute = self._wrap("pipeline", real_execute)  # type: ignore[method-assign]
        return pipe


def connect_redis() -> aioredis.Redis:
    return redis_client(env("REDIS_URL"))


async def record_effect(conn: Conn, event: Event) -> None:
    assert isinstance(event.payload, QrScannedV1)
    await conn.execute(
        "insert into effects_log (event_id, code) values ($1, $2)", event.envelope.id, event.payload.code
    )
    await conn.execute(
        "insert into effects (event_id, code, seq) values ($1, $2, $3) on conflict (event_id) do nothing",
        event.envelope.id,
        event.payload.code,
        event.payload.scans,
    )


def install_stop(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
