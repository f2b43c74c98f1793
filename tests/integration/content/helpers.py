"""Building the content app for a test, and a small process through the staff API."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx

from shared.clock import FrozenClock
from shared.settings import Settings
from tests.support import staff_headers

# 20 October 2021, 14:00 in Berlin: the strategy phase runs, registration for the kick-off is open.
START = datetime(2021, 10, 20, 12, 0, tzinfo=UTC)


def clock() -> FrozenClock:
    return FrozenClock(START)


def staff(tenant: str, settings: Settings) -> dict[str, str]:
    return staff_headers(tenant, "staff", settings=settings)


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


async def make_process(client: httpx.AsyncClient, headers: dict[str, str], slug: str = "smart-city") -> dict[str, Any]:
    p = await ok(
        await client.post(
            "/api/content/staff/processes",
            headers=headers,
            json={
                "slug": slug,
                "title": {"de": "Modellprojekt Smart City", "en": "Smart city model project"},
                "motto": {"de": "Die co-kreative Stadt"},
                "summary": {"de": "Hand in Hand in eine neue Zukunft.", "en": "Hand in hand into a new future."},
                "funding": [
                    {
                        "label": {"de": "Bundesförderung", "en": "Federal funding"},
                        "amount": 5_600_000,
                        "source": {"de": "Bundesministerium (Beispiel)"},
                    }
                ],
            },
        ),
        201,
    )
    return dict(p)


async def outbox_events(pool: Any, tenant: str, type_: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "select envelope from outbox where tenant = $1 and type = $2 order by position", tenant, type_
    )
    return [json.loads(r["envelope"]) for r in rows]
