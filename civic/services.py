"""The one place that knows every service."""

from __future__ import annotations

from services.content.service import definition as content
from services.notifications.service import definition as notifications
from services.registration.service import definition as registration
from services.surveys.service import definition as surveys
from shared.service import ServiceDefinition

ALL: dict[str, ServiceDefinition] = {d.name: d for d in (registration, surveys, notifications, content)}


def select(names: str | list[str] | None) -> list[ServiceDefinition]:
    if not names:
        return list(ALL.values())
    wanted = names.split(",") if isinstance(names, str) else names
    unknown = [n for n in wanted if n not in ALL]
    if unknown:
        raise SystemExit(f"unknown services: {unknown}; known: {sorted(ALL)}")
    return [ALL[n] for n in wanted]


def consumers() -> dict[str, list[str]]:
    """Service -> event types it subscribes to (for the AsyncAPI document and group creation)."""
    return {d.name: d.event_types for d in ALL.values()}
