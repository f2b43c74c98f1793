"""Event contracts: the CloudEvents envelope, one module of payloads per producing service, and the registry."""

from shared.contracts.envelope import Envelope, Payload
from shared.contracts.registry import REGISTRY, EventSpec, UnknownEventType

__all__ = ["REGISTRY", "Envelope", "EventSpec", "Payload", "UnknownEventType"]
