"""HTTP request metrics per route template and status, and the 503 problem of an unreachable server."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import APIRouter

from shared.http.app import create_app
from shared.settings import Settings

router = APIRouter()


@router.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, int]:
    return {"id": item_id}


@router.get("/database-away")
async def database_away() -> None:
    raise asyncpg.CannotConnectNowError("the database system is starting up")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app([], Settings(log_json=False), migrate=False)
    app.include_router(router, prefix="/api/probe")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


def _sample(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(name + "{"):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.rsplit(" ", 1)[0]))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    found = [line for line in text.splitlines() if line.startswith(name)]
    raise AssertionError(f"no sample {name}{{{want}}} in {found}")


async def test_requests_are_counted_per_route_template_and_status(client: httpx.AsyncClient) -> None:
    template = "/api/probe/items/{item_id}"
    before = await client.get("/metrics")
    try:
        ok_before = _sample(before.text, "civic_http_requests_total", method="GET", route=template, status="200")
    except AssertionError:
        ok_before = 0.0
    for i in range(3):
        assert (await client.get(f"/api/probe/items/{i}")).status_code == 200
    assert (await client.get("/api/probe/items/x")).status_code == 422
    assert (await client.get("/no/such/path")).status_code == 404
    text = (await client.get("/metrics")).text
    assert _sample(text, "civic_http_requests_total", method="GET", route=template, status="200") - ok_before == 3
    assert _sample(text, "civic_http_requests_total", method="GET", route=template, status="422") >= 1
    assert _sample(text, "civic_http_requests_total", method="GET", route="unmatched", status="404") >= 1
    assert _sample(text, "civic_http_request_duration_seconds_count", method="GET", route=template) >= 4
    assert "/api/probe/items/1" not in text  # raw paths never become label values


async def test_an_unreachable_database_is_a_503_problem_with_retry_after(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/probe/database-away")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "2"
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "https://civic.example/problems/unavailable"
    text = (await client.get("/metrics")).text
    assert _sample(text, "civic_http_requests_total", route="/api/probe/database-away", status="503") >= 1
