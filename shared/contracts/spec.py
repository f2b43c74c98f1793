"""What the registry knows about one event type."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Literal

from shared.contracts.envelope import Payload


@dataclass(frozen=True)
class EventSpec:
    type: str
    payload: builtins.type[Payload]
    producer: str
    description: str
    #: Field names of the payload that hold personal data (sealed, see shared/privacy.py); never public.
    personal_fields: tuple[str, ...] = ()
    #: ``public``: on the producer's public stream, which outside subscribers may read; no event there names a
    #: person. ``private``: on the producer's private stream, readable only by the services that consume it.
    visibility: Literal["public", "private"] = "public"
    #: Kept so that entries already written still parse; nothing publishes it any more.
    retired: bool = False

    @property
    def stream(self) -> str:
        """The logical stream: a public and a private one per producing service (per-aggregate order follows
        outbox order within each)."""
        return private_stream(self.producer) if self.visibility == "private" else self.producer

    @property
    def version(self) -> int:
        return int(self.type.rsplit(".v", 1)[1])


#: Logical names of private streams start with this (Keys.stream puts them under ``<prefix>:private:``).
PRIVATE_PREFIX = "private."


def private_stream(producer: str) -> str:
    return f"{PRIVATE_PREFIX}{producer}"


def is_private(logical_stream: str) -> bool:
    return logical_stream.startswith(PRIVATE_PREFIX)


def spec(
    type_: str,
    payload: type[Payload],
    producer: str,
    description: str,
    personal: tuple[str, ...] = (),
    *,
    private: bool = False,
    retired: bool = False,
) -> EventSpec:
    if not type_.startswith(f"civic.{producer}.") or ".v" not in type_:
        raise ValueError(f"event type {type_!r} must look like civic.{producer}.<aggregate>.<past-tense>.v<N>")
    if personal and not private:
        raise ValueError(f"{type_} carries personal data and must be private")
    return EventSpec(type_, payload, producer, description, personal, "private" if private else "public", retired)
