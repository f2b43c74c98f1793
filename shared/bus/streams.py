"""Redis key names and consumer-group management."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from typing import Any, Final, Literal

import redis.asyncio as aioredis
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT

from shared.contracts.spec import PRIVATE_PREFIX

#: The entry field holding the CloudEvent as JSON. FastStream's stream subscriber takes an entry's ``__data__``
#: field as the message body, so a plain FastStream app receives the CloudEvent as it is.
EVENT_FIELD: Final = "__data__"
#: Where entries written before kept the CloudEvent; still read, so a rolling upgrade loses nothing.
LEGACY_EVENT_FIELD: Final = "event"
#: The producing service's outbox position of the event (a decimal string); the same event published again
#: (after Redis lost its data, or a replay) carries the same position. Not strictly increasing along a stream:
#: transactions commit in any order.
POSITION_FIELD = "position"
EventField = Literal["__data__", "event"]
_EVENT_B, _LEGACY_B = EVENT_FIELD.encode(), LEGACY_EVENT_FIELD.encode()


def entry_fields(envelope: str, position: int, field: EventField = EVENT_FIELD) -> dict[FieldT, EncodableT]:
    """What the relay writes for one event."""
    return {field: envelope, POSITION_FIELD: str(position)}


def entry_event(fields: dict[bytes, bytes]) -> bytes | None:
    """The CloudEvent of an entry, in either field."""
    raw = fields.get(_EVENT_B)
    return raw if raw is not None else fields.get(_LEGACY_B)


@dataclass(frozen=True)
class Keys:
    """Where things live in Redis; the prefix separates installations (and test runs) sharing a server."""

    prefix: str = "civic"

    def stream(self, logical: str) -> str:
        """Public streams under ``<prefix>:stream:``, private ones under ``<prefix>:private:``, so one Redis ACL
        key pattern (``~<prefix>:stream:*``) gives outside subscribers the public ones and nothing else."""
        if logical.startswith(PRIVATE_PREFIX):
            return f"{self.prefix}:private:{logical.removeprefix(PRIVATE_PREFIX)}"
        return f"{self.prefix}:stream:{logical}"

    def dead_letters(self, service: str) -> str:
        return f"{self.prefix}:dlq:{service}"

    def replay(self, service: str, group: str) -> str:
        """A replay of ``service``'s outbox for one outside group (``civic replay --group``)."""
        return f"{self.prefix}:replay:{service}:{group}"

    def alive(self, service: str) -> str:
        """Set by a producer when it first talks to a Redis; its absence later means Redis lost its data."""
        return f"{self.prefix}:alive:{service}"


def consumer_name(explicit: str | None = None) -> str:
    """Unique per process, so two replicas never share a pending-entries list."""
    return explicit or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def parse_entry_id(entry_id: str | bytes) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def redis_client(url: str, *, sentinels: str | None = None, master_name: str = "civic") -> aioredis.Redis:
    """A client of the Redis at ``url``, or, with ``sentinels`` ("host:port,host:port,..."), of whichever
    server the Sentinels name as the current primary of ``master_name`` (redis-py's Sentinel support: after
    a failover the next connection goes to the new primary; a demoted one answering READONLY counts as a
    lost connection). Database number, user and password are taken from ``url`` in both cases."""
    if not sentinels:
        return aioredis.Redis.from_url(url, decode_responses=False, health_check_interval=10)
    from urllib.parse import unquote, urlsplit

    from redis.asyncio.sentinel import Sentinel

    parts = urlsplit(url)
    addresses = []
    for item in sentinels.split(","):
        host, _, port = item.strip().rpartition(":")
        addresses.append((host.strip("[]") or "127.0.0.1", int(port or 26379)))
    sentinel = Sentinel(addresses, socket_timeout=2.0, sentinel_kwargs={"socket_timeout": 1.0})  # type: ignore[no-untyped-call]
    client: aioredis.Redis = sentinel.master_for(
        master_name,
        decode_responses=False,
        health_check_interval=10,
        socket_timeout=10.0,
        db=int(parts.path.lstrip("/") or 0),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )
    return client


def redis_from_settings(settings: Any) -> aioredis.Redis:
    return redis_client(settings.redis_url, sentinels=settings.redis_sentinels, master_name=settings.redis_master_name)


async def ensure_group(redis: aioredis.Redis, stream_key: str, group: str) -> bool:
    """Create the group at the start of the stream (creating the stream too); True if it was created.

    At ``0``, not ``$``: a group created after events were published (or recreated after Redis lost its data
    and the outbox published them again) must still see them. Duplicates are absorbed by processed-event
    records; missed events would be lost for good.
    """
    try:
        await redis.xgroup_create(stream_key, group, id="0", mkstream=True)
        return True
    except ResponseError as exc:
        if "BUSYGROUP" in str(exc):
            return False
        raise
