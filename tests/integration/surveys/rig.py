"""A running surveys service for tests: app, HTTP client, its context, a frozen clock, sample surveys."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx

from services.surveys.schemas import ResponseIn
from services.surveys.service import definition
from services.surveys.settings import SurveysSettings, settings_of
from services.surveys.store import Store
from services.surveys.use_cases import responses, surveys
from shared.clock import FrozenClock
from shared.service import ServiceContext
from shared.settings import Settings
from tests.rigs import started
from tests.support import staff_headers

START = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)


@dataclass
class Calls:
    """Use cases called directly, as the service's loops call them (or as a route would, without HTTP)."""

    ctx: ServiceContext

    async def tick(self) -> list[tuple[str, UUID]]:
        return await surveys.tick(self.ctx.uows(Store), self.ctx.clock.now())

    async def mix(self, tenant: str, survey_id: UUID) -> None:
        await surveys.mix(self.ctx.uows(Store), tenant, survey_id)

    async def submit(
        self, tenant: str, ref: str, body: ResponseIn, key: str | None = None
    ) -> tuple[bool, dict[str, Any]]:
        return await responses.submit(
            self.ctx.uows(Store), tenant, ref, answers=dict(body.answers), token=body.token, draft=body.draft,
            key=key or body.submission_key, now=self.ctx.clock.now(), shards=settings_of(self.ctx).counter_shards,
        )  # fmt: skip


@dataclass
class Rig:
    client: httpx.AsyncClient
    ctx: ServiceContext
    svc: Calls
    clock: FrozenClock
    tenant: str
    staff: dict[str, str]

    async def create(self, **overrides: Any) -> dict[str, Any]:
        r = await self.client.post("/api/surveys/surveys", json=sample_survey(**overrides), headers=self.staff)
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def published(self, **overrides: Any) -> dict[str, Any]:
        s = await self.create(**overrides)
        r = await self.client.post(f"/api/surveys/surveys/{s['id']}/publish", headers=self.staff)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def open_survey(self, **overrides: Any) -> dict[str, Any]:
        """A published survey whose window has begun (and the clock loop has opened it)."""
        s = await self.published(**overrides)
        self.clock.set(datetime.fromisoformat(s["opens_at"]) + timedelta(minutes=1))
        await self.svc.tick()
        return s

    async def open_survey_at(self, s: dict[str, Any]) -> None:
        self.clock.set(datetime.fromisoformat(s["opens_at"]) + timedelta(minutes=1))
        await self.svc.tick()

    def public(self, s: dict[str, Any], tail: str = "") -> str:
        return f"/api/surveys/public/{self.tenant}/{s['slug']}{tail}"

    async def outbox_types(self) -> list[str]:
        rows = await self.ctx.pool.fetch("select type from outbox where tenant = $1 order by position", self.tenant)
        return [r["type"] for r in rows]


def sample_survey(**overrides: Any) -> dict[str, Any]:
    """A county's survey on online services, with every kind of question and a display condition."""
    body: dict[str, Any] = {
        "title": "Digitale Angebote im Kreis",
        "slug": f"digital-{secrets.token_hex(4)}",
        "introduction": "Anonymous; about ten minutes.",
        "estimated_minutes": 10,
        "opens_at": (START + timedelta(days=1)).isoformat(),
        "closes_at": (START + timedelta(days=30)).isoformat(),
        "results_public": True,
        "sections": [
            {
                "id": "use",
                "title": "What you use",
                "questions": [
                    {
                        "id": "online",
                        "kind": "yes_no",
                        "text": "Do you use the county's online services?",
                        "required": True,
                    },
                    {
                        "id": "which",
                        "kind": "multiple_choice",
                        "text": "Which ones?",
                        "required": True,
                        "max_selections": 2,
                        "options": [
                            {"id": "car", "label": "Vehicle registration"},
                            {"id": "waste", "label": "Waste calendar"},
                            {"id": "library", "label": "Library"},
                        ],
                        "condition": {"question": "online", "any_of": ["yes"]},
                    },
                    {
                        "id": "age",
                        "kind": "single_choice",
                        "text": "Age group",
                        "options": [{"id": "young", "label": "under 30"}, {"id": "old", "label": "30 or over"}],
                    },
                    {"id": "sat", "kind": "scale", "text": "How satisfied are you?", "min": 1, "max": 5},
                    {"id": "visits", "kind": "number", "text": "Visits per year", "min": 0, "max": 365},
                ],
            },
            {
                "id": "improve",
                "title": "What should improve",
                "questions": [
                    {
                        "id": "rank",
                        "kind": "ranking",
                        "text": "Rank these",
                        "options": [
                            {"id": "health", "label": "Health"},
                            {"id": "culture", "label": "Culture"},
                            {"id": "admin", "label": "Administration"},
                        ],
                    },
                    {
                        "id": "grid",
                        "kind": "matrix",
                        "text": "Rate each",
                        "min": 1,
                        "max": 3,
                        "rows": [{"id": "speed", "label": "Speed"}, {"id": "ease", "label": "Ease"}],
                    },
                    {"id": "idea", "kind": "free_text", "text": "Your idea", "max_length": 200},
                ],
            },
        ],
    }
    body.update(overrides)
    return body


def full_answers(**overrides: Any) -> dict[str, Any]:
    answers: dict[str, Any] = {
        "online": True,
        "which": ["car", "waste"],
        "age": "young",
        "sat": 4,
        "visits": 12,
        "rank": ["admin", "health", "culture"],
        "grid": {"speed": 2, "ease": 3},
        "idea": "More appointments online",
    }
    answers.update(overrides)
    return {k: v for k, v in answers.items() if v is not None}


@asynccontextmanager
async def surveys_rig(settings: Settings, prefix: str, *, background: bool = True, **config: Any) -> AsyncIterator[Rig]:
    """``background=False`` runs no loops (no relay, no clock): for tests that only look at what is stored."""
    clock = FrozenClock(START)
    own = SurveysSettings(**{"tick_seconds": 0.05, "mix_interval_seconds": 3600, **config})
    service = dataclasses.replace(definition, settings=lambda: own)
    async with started(service, settings=settings, clock=clock, background=background) as running:
        tenant = f"kreis-{prefix}"
        yield Rig(
            running.client,
            running.ctx,
            Calls(running.ctx),
            clock,
            tenant,
            staff_headers(tenant, "staff", settings=settings),
        )
