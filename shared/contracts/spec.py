"""What the registry knows about one event type."""

from __future__ import annotations

import builtins
from dataclasses import dataclass

from shared.contracts.envelope import Payload


@dataclass(frozen=True)
class EventSpec:
    type: str
    payload: builtins.type[Payload]
    producer: str
    description: str
    #: Field names of the payload that hold personal data; stripped from anything that leaves civic.
    personal_fields: tuple[str, ...] = ()

    @property
    def stream(self) -> str:
        """The logical stream: one per producing service, so per-aggregate order follows outbox order."""
        return self.producer

    @property
    def version(self) -> int:
        return int(self.type.rsplit(".v", 1)[1])


def spec(
    type_: str, payload: type[Payload], producer: str, description: str, personal: tuple[str, ...] = ()
) -> EventSpec:
    if not type_.startswith(f"civic.{producer}.") or ".v" not in type_:
        raise ValueError(f"event type {type_!r} must look like civic.{producer}.<aggregate>.<past-tense>.v<N>")
    return EventSpec(type_, payload, producer, description, personal)
