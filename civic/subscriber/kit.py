"""A ready FastStream set-up for reading civic's streams, with what FastStream 0.7.8 leaves open added.

Per subscription the kit registers two FastStream stream subscribers on the handler, in one consumer group:
a reader (new entries, ``>``) and a claimer (``min_idle_time``: entries idle in a dead consumer's pending list).
Around them it adds:

- the group is created at ``0`` before FastStream starts (FastStream creates a missing group at ``$`` and would
  skip what was published before);
- an entry is acknowledged only after the handler returned (``AckPolicy.REJECT_ON_ERROR``; for Redis a
  rejected entry just stays pending, so the claimer hands it to the handler again after the idle time);
- a delivery limit: a claimed entry delivered more than ``max_deliveries`` times is copied to a dead-letter
  stream and acknowledged instead of being handled again (FastStream has no limit and no dead letters);
- a guard that recreates a lost group at ``0`` (Redis restarted without its data) and starts again a
  subscriber FastStream stopped on NOGROUP;
- only the wanted event types reach the handler; others are acknowledged unseen;
- entries written before civic moved the CloudEvent to ``__data__`` (field ``event``) are read too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
import redis.asyncio as aioredis
from faststream import AckPolicy
from faststream.exceptions import AckMessage
from faststream.redis import RedisBroker, StreamSub
from faststream.redis.parser import BinaryMessageFormatV1
from redis.exceptions import ResponseError

from civic.subscriber.cloudevent import CloudEvent
from civic.subscriber.events import MODELS, STREAM_TYPES

log = logging.getLogger("civic.subscriber")

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
_DATA, _LEGACY = b"__data__", b"event"


def default_consumer() -> str:
    """Unique per process: two processes never share a pending-entries list."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class _Subscription:
    key: str
    types: frozenset[str] | None
    subscribers: list[Any] = field(default_factory=list)


class CivicSubscriber:
    """One consumer group of an outside system on civic's streams.

    ``prefix`` is civic's ``CIVIC_STREAM_PREFIX``; ``group`` names the subscribing system (register it with
    ``civic subscribers add`` so civic's trimming waits for it); ``consumer`` names this process.
    """

    def __init__(
        self,
        redis_url: str,
        *,
        group: str,
        prefix: str = "civic",
        consumer: str | None = None,
        max_deliveries: int = 5,
        reclaim_idle_ms: int = 30_000,
        polling_interval_ms: int = 100,
        guard_interval: float = 1.0,
        dead_letter_stream: str | None = None,
        dead_letter_maxlen: int = 10_000,
    ) -> None:
        self.redis_url = redis_url
        self.group = group
        self.prefix = prefix
        self.consumer = consumer or default_consumer()
        self.max_deliveries = max_deliveries
        self.reclaim_idle_ms = reclaim_idle_ms
        self.polling_interval_ms = polling_interval_ms
        self.guard_interval = guard_interval
        self.dead_letter_stream = dead_letter_stream or f"{prefix}:dlq:{group}"
        self.dead_letter_maxlen = dead_letter_maxlen
        self.redis: aioredis.Redis = aioredis.Redis.from_url(redis_url)
        self._subscriptions: list[_Subscription] = []
        self._guard: asyncio.Task[None] | None = None
        self.restarts = 0
        self.dead_lettered = 0

    def stream_key(self, stream: str) -> str:
        return f"{self.prefix}:stream:{stream}"

    # -- registering handlers ---------------------------------------------------------------------------

    def subscriber(
        self,
        broker: RedisBroker,
        stream: str,
        *,
        types: Iterable[str | type[CloudEvent[Any]]] | None = None,
        replay: bool = False,
        title: str | None = None,
        description: str | None = None,
    ) -> Callable[[F], F]:
        """Decorate a handler for civic's ``stream`` (a producing service: registration, surveys, content,
        notifications). ``types`` (event types or the models of civic.subscriber.events) limits what reaches it.
        ``replay=True`` reads this group's replay stream instead (``civic replay SERVICE --group GROUP``)."""
        if stream not in STREAM_TYPES:
            raise ValueError(f"civic has no stream {stream!r}; streams: {sorted(STREAM_TYPES)}")
        wanted = None if types is None else frozenset(_type_name(t) for t in types)
        unknown = sorted((wanted or set()) - set(STREAM_TYPES[stream]))
        if unknown:
            raise ValueError(f"not on the {stream} stream: {unknown}")
        key = f"{self.prefix}:replay:{stream}:{self.group}" if replay else self.stream_key(stream)
        sub = _Subscription(key, wanted)
        self._subscriptions.append(sub)
        reader = broker.subscriber(
            stream=StreamSub(
                sub.key, group=self.group, consumer=self.consumer, polling_interval=self.polling_interval_ms
            ),
            parser=self._parser(sub, claimed=False),
            ack_policy=AckPolicy.REJECT_ON_ERROR,
            title=title,
            description=description,
        )
        claimer = broker.subscriber(
            stream=StreamSub(
                sub.key,
                group=self.group,
                consumer=self.consumer,
                min_idle_time=self.reclaim_idle_ms,
                polling_interval=self.polling_interval_ms,
            ),
            parser=self._parser(sub, claimed=True),
            ack_policy=AckPolicy.REJECT_ON_ERROR,
            include_in_schema=False,
        )
        sub.subscribers = [reader, claimer]

        def decorate(func: F) -> F:
            return claimer(reader(func))  # type: ignore[return-value]

        return decorate

    def _parser(self, sub: _Subscription, *, claimed: bool) -> Callable[..., Awaitable[Any]]:
        async def parse(msg: dict[str, Any], original: Callable[[Any], Awaitable[Any]]) -> Any:
            fields: dict[bytes, bytes] = msg["data"]
            if _DATA not in fields and _LEGACY in fields:
                msg = {**msg, "data": {**fields, _DATA: fields[_LEGACY]}}  # written before the move to __data__
                fields = msg["data"]
            if claimed:
                ids: list[bytes] = msg.get("message_ids") or []
                entry_id = ids[0] if ids else b""
                deliveries = await self._deliveries(sub.key, entry_id) if ids else None
                # None: not pending in Redis. Another consumer acknowledged it since the claim (a second
                # delivery, which idempotent handlers absorb), or FastStream's in-memory test broker handed
                # the message to the claimer rather than the reader (it delivers once per group): handle it.
                if deliveries is not None and deliveries > self.max_deliveries:
                    await self._dead_letter(sub.key, entry_id, fields, deliveries - 1)
                    raise AckMessage()  # FastStream acknowledges it; the handler does not see it again
            if sub.types is not None:
                type_ = _event_type(fields.get(_DATA))
                if type_ is not None and type_ not in sub.types:
                    raise AckMessage()  # not asked for: acknowledged unseen
                # No type at all (not a CloudEvent): the handler's validation fails and the limit applies.
            return await original(msg)

        return parse

    async def _deliveries(self, key: str, entry_id: bytes) -> int | None:
        """How often the group delivered the entry (claims included); None if it is not pending."""
        try:
            pending = await self.redis.xpending_range(key, self.group, min=entry_id, max=entry_id, count=1)
        except ResponseError as exc:
            if "NOGROUP" in str(exc):
                return None
            raise
        return int(pending[0]["times_delivered"]) if pending else None

    async def _dead_letter(self, key: str, entry_id: bytes, fields: dict[bytes, bytes], deliveries: int) -> None:
        # The whole entry is copied: unlike civic's own dead letters (kept in PostgreSQL, erasable), this stream
        # holds the event itself, personal data included where the event carries any (docs/subscribing.md).
        await self.redis.xadd(
            self.dead_letter_stream,
            {
                **{k: v for k, v in fields.items() if k in (_DATA, b"position")},
                "stream": key,
                "entry_id": entry_id,
                "group": self.group,
                "deliveries": str(deliveries),
            },
            maxlen=self.dead_letter_maxlen,  # the newest are kept: a flood of poison must not fill Redis
            approximate=True,
        )
        self.dead_lettered += 1
        log.error(
            "civic entry dead-lettered after %d deliveries",
            deliveries,
            extra={"stream": key, "entry_id": entry_id.decode(), "dead_letters": self.dead_letter_stream},
        )

    # -- lifecycle ----------------------------------------------------------------------------------------

    async def ensure_groups(self) -> list[str]:
        """Create the group at ``0`` on every subscribed stream (and the stream); returns the streams where it
        was missing."""
        created = []
        for key in sorted({s.key for s in self._subscriptions}):
            try:
                await self.redis.xgroup_create(key, self.group, id="0", mkstream=True)
                created.append(key)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        return created

    async def start(self) -> None:
        """Before the broker starts (FastStream's ``on_startup``): groups at 0. Then the guard runs."""
        await self.ensure_groups()
        if self._guard is None or self._guard.done():
            self._guard = asyncio.create_task(self._guard_loop(), name="civic-subscriber-guard")

    async def stop(self) -> None:
        if self._guard is not None:
            self._guard.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._guard
            self._guard = None
        await self.redis.aclose()

    async def _guard_loop(self) -> None:
        while True:
            await asyncio.sleep(self.guard_interval)
            try:
                await self.check()
            except Exception as exc:  # Redis unreachable: try again next time
                log.warning("civic subscriber guard could not check its groups: %r", exc)

    async def check(self) -> int:
        """Recreate lost groups at 0 and start subscribers FastStream stopped; returns how many it started."""
        lost = await self.ensure_groups()
        for key in lost:
            log.warning(
                "consumer group %s on %s was missing (Redis lost its data?) and was created at 0",
                self.group,
                key,
            )
        started = 0
        for sub in self._subscriptions:
            for s in sub.subscribers:
                if not s.running:
                    # FastStream 0.7.8 stops a stream subscriber for good on NOGROUP; its group exists again.
                    await s.start()
                    started += 1
        if started:
            self.restarts += started
            log.warning("civic subscriber restarted %d FastStream subscriber(s) after a lost group", started)
        return started


def _type_name(t: str | type[CloudEvent[Any]]) -> str:
    if isinstance(t, str):
        if t not in MODELS:
            raise ValueError(f"unknown civic event type {t!r}")
        return t
    default = t.model_fields["type"].default
    if not isinstance(default, str):
        raise ValueError(f"{t.__name__} is not one of civic.subscriber.events' models")
    return default


def _event_type(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    if raw.startswith(BinaryMessageFormatV1.IDENTITY_HEADER):
        raw = BinaryMessageFormatV1.parse(raw)[0]  # published by FastStream itself (its test broker, say)
    try:
        value = orjson.loads(raw)
    except ValueError:
        return None  # not JSON: the handler's validation fails, and the delivery limit deals with it
    return value.get("type") if isinstance(value, dict) else None
