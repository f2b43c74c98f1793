"""An app with the registration service on real PostgreSQL and Redis, its clock frozen before the Heide kick-off."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.registration.service import definition
from shared.clock import FrozenClock
from shared.service import ServiceContext
from shared.settings import Settings
from tests.rigs import started
from tests.support import staff_headers

OTHER_TENANT = "stadt-heide"
# 1 October 2021, noon in Heide: the kick-off is published, registration open.
START = datetime(2021, 10, 1, 10, 0, tzinfo=UTC)


def heide_kickoff(**changes: Any) -> dict[str, Any]:
    """The reference case (seed 001): 28 Oct 2021, 18:00 to 20:00 in Heide, registration until 25 Oct, 3G."""
    body: dict[str, Any] = {
        "title": "Auftaktveranstaltung Dithmarschen Digital",
        "description": "Information und Ideen für die Digitalisierung im Kreis.",
        "venue": {
            "name": "BerufsBildungsZentrum Heide",
            "street": "Rungholtstraße 2 c",
            "postal_code": "25746",
            "city": "Heide",
        },
        "starts_at": "2021-10-28T18:00:00",
        "ends_at": "2021-10-28T20:00:00",
        "capacity": 80,
        "waitlist": True,
        "registration_closes_at": "2021-10-26T00:00:00",
        "attestations": [
            {
                "id": "3g",
                "text": "Für die Teilnahme gilt die 3G-Regel: geimpft, getestet (max. 24 Stunden) oder genesen.",
            }
        ],
        "questions": [
            {
                "id": "topics",
                "label": "Welche Themen interessieren Sie?",
                "kind": "multiple",
                "required": False,
                "options": ["Bildung", "Gesundheit", "Mobilität"],
            },
            {
                "id": "accessible",
                "label": "Brauchen Sie einen barrierefreien Platz?",
                "kind": "yes_no",
                "required": True,
            },
        ],
        "max_companions": 2,
    }
    body.update(changes)
    return body


def citizen(n: int = 1, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"Teilnehmende Person {n}",
        "email": f"person{n}@example.org",
        "privacy_consent": True,
        "attestations": ["3g"],
        "answers": {"accessible": False},
    }
    body.update(changes)
    return body


class Rig:
    def __init__(self, client: httpx.AsyncClient, app: Any, clock: FrozenClock, settings: Settings) -> None:
        self.client = client
        self.app = app
        self.clock = clock
        self.settings = settings
        # Each test its own tenant: the session's tests share one database.
        self.tenant = f"kreis-dithmarschen-{secrets.token_hex(3)}"
        self.staff = staff_headers(self.tenant, "staff", settings=settings)

    @property
    def ctx(self) -> ServiceContext:
        ctx: ServiceContext = self.app.state.civic["registration"]
        return ctx

    async def meeting(self, publish: bool = True, **changes: Any) -> dict[str, Any]:
        r = await self.client.post(
            "/api/registration/staff/meetings", json=heide_kickoff(**changes), headers=self.staff
        )
        assert r.status_code == 201, r.text
        m: dict[str, Any] = r.json()
        if publish:
            r = await self.client.post(f"/api/registration/staff/meetings/{m['id']}/publish", headers=self.staff)
            assert r.status_code == 200, r.text
            m = r.json()
        return m

    async def register(self, meeting_id: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(f"/api/registration/meetings/{meeting_id}/registrations", json=body)


@pytest.fixture
async def rig(settings: Settings) -> AsyncIterator[Rig]:
    clock = FrozenClock(START)
    async with started(definition, settings=settings, clock=clock, background=False) as service:
        yield Rig(service.client, service.app, clock, settings)


@pytest.fixture
async def live_rig(settings: Settings) -> AsyncIterator[Rig]:
    """With the bus loops running (relay to Redis, deadline scheduler, retention)."""
    clock = FrozenClock(START)
    async with started(definition, settings=settings, clock=clock) as service:
        yield Rig(service.client, service.app, clock, settings)
