"""Every event type civic knows: its stream, payload model and producer, and parsing of what arrives."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from shared.contracts import content, notifications, registration, surveys
from shared.contracts.envelope import Envelope, Payload
from shared.contracts.spec import EventSpec


class UnknownEventType(LookupError):
    pass


@dataclass(frozen=True)
class Event:
    """An envelope whose data has been parsed into its typed payload."""

    envelope: Envelope
    payload: Payload

    @property
    def type(self) -> str:
        return self.envelope.type


class Registry:
    def __init__(self, specs: Iterable[EventSpec]) -> None:
        self._by_type: dict[str, EventSpec] = {}
        self._by_payload: dict[tuple[str, type[Payload]], EventSpec] = {}
        self._by_class: dict[type[Payload], list[EventSpec]] = {}
        for s in specs:
            if s.type in self._by_type:
                raise ValueError(f"event type {s.type} registered twice")
            self._by_type[s.type] = s
            self._by_payload[(s.producer, s.payload)] = s
            self._by_class.setdefault(s.payload, []).append(s)

    def __iter__(self) -> Iterator[EventSpec]:
        return iter(sorted(self._by_type.values(), key=lambda s: s.type))

    def __contains__(self, type_: str) -> bool:
        return type_ in self._by_type

    def get(self, type_: str) -> EventSpec:
        try:
            return self._by_type[type_]
        except KeyError:
            raise UnknownEventType(type_) from None

    def for_payload(self, producer: str, payload: Payload) -> EventSpec:
        try:
            return self._by_payload[(producer, type(payload))]
        except KeyError:
            raise UnknownEventType(f"{producer} publishes no {type(payload).__name__}") from None

    def type_of(self, payload: type[Payload]) -> str:
        """The event type a payload class is the data of (a subscription list names events by their class)."""
        specs = self._by_class.get(payload, [])
        if len(specs) != 1:
            raise UnknownEventType(f"{payload.__name__} is the payload of {len(specs)} event types, not one")
        return specs[0].type

    def streams(self) -> list[str]:
        return sorted({s.stream for s in self._by_type.values()})

    def public_streams(self) -> list[str]:
        """What outside subscribers may read: no event on these names a person."""
        return sorted({s.stream for s in self._by_type.values() if s.visibility == "public"})

    def public_types(self) -> list[str]:
        return [s.type for s in self if s.visibility == "public"]

    def parse(self, raw: str | bytes | dict[str, Any]) -> Event:
        """Parse an envelope and its payload; raises ValidationError or UnknownEventType on bad input."""
        envelope = Envelope.model_validate(raw) if isinstance(raw, dict) else Envelope.model_validate_json(raw)
        payload = self.get(envelope.type).payload.model_validate(envelope.data)
        return Event(envelope, payload)


REGISTRY = Registry([*registration.EVENTS, *surveys.EVENTS, *content.EVENTS, *notifications.EVENTS])

__all__ = ["REGISTRY", "Event", "EventSpec", "Registry", "UnknownEventType", "ValidationError"]
