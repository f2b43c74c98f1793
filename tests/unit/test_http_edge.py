"""The edge every service shares (shared/http/guard.py): input PostgreSQL cannot store, content types, the
token before the body, token lifetimes and the catch-all, all answered as problem documents."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from uuid import UUID

import asyncpg
import httpx
import pytest
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from shared.http.app import create_app
from shared.http.auth import Staff, mint_token
from shared.http.lean import LeanRoute, json_body
from shared.settings import Settings

SETTINGS = Settings(log_json=False)


class Item(BaseModel):
    name: str = Field(min_length=1)
    count: int = 0
    tags: list[str] = []


router = APIRouter()


@router.post("/items")
async def add(body: Item) -> dict[str, object]:
    return {"name": body.name, "count": body.count}


@router.get("/items/{slug}")
async def item(slug: str, count: int = 0) -> dict[str, object]:
    return {"slug": slug, "count": count}


@router.post("/staff/items")
async def staff_add(body: Item, who: Staff) -> dict[str, str]:
    return {"tenant": who.tenant}


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("a bug")


@router.get("/overflow")
async def overflow() -> None:
    raise asyncpg.exceptions.NumericValueOutOfRangeError("integer out of range")


async def lean(request: Request, item_id: UUID) -> Response:
    body = await json_body(request, Item)
    return Response(body.name)


router.add_api_route("/lean/{item_id:uuid}", lean, methods=["POST"], route_class_override=LeanRoute)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app([], SETTINGS, migrate=False)
    app.include_router(router, prefix="/api/probe")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


def _problem(r: httpx.Response, status: int, code: str | None = None) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status
    if code is not None:
        assert [e["code"] for e in body["errors"]] == [code], body
    return dict(body)


def _staff(**kw: object) -> dict[str, str]:
    return {"Authorization": "Bearer " + mint_token(tenant="t", roles=["staff"], settings=SETTINGS, **kw)}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "content",
    [
        b'{"name": "a\\u0000b"}',
        b'{"name": "ok", "tags": ["x", "\\\\\\u0000"]}',  # an escaped backslash, then a NUL
        b'{"name\\u0000": "ok"}',
    ],
)
async def test_a_nul_in_any_json_string_is_refused(client: httpx.AsyncClient, content: bytes) -> None:
    r = await client.post("/api/probe/items", content=content, headers={"content-type": "application/json"})
    _problem(r, 400, "nul")


async def test_an_escaped_backslash_before_u0000_is_plain_text_and_accepted(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/probe/items", content=b'{"name": "\\\\u0000"}', headers={"content-type": "application/json"}
    )
    assert r.status_code == 200 and r.json()["name"] == "\\u0000"


@pytest.mark.parametrize("url", ["/api/probe/items/a%00b", "/api/probe/items/a?count=1&x=%00", "/q/%00"])
async def test_a_nul_in_path_or_query_is_refused(client: httpx.AsyncClient, url: str) -> None:
    _problem(await client.get(url), 400, "nul")


async def test_integers_beyond_32_bits_are_refused_in_bodies_and_queries(client: httpx.AsyncClient) -> None:
    body = _problem(await client.post("/api/probe/items", json={"name": "a", "count": 2**31}), 422, "int_range")
    assert body["errors"][0]["pointer"] == "/count"  # type: ignore[index]
    _problem(await client.get("/api/probe/items/a", params={"count": "99999999999"}), 422, "int_range")
    ok = await client.post("/api/probe/items", json={"name": "1234567890123", "count": 2**31 - 1})
    assert ok.status_code == 200  # long digit runs in strings, and the largest int32, are fine


async def test_bodies_that_are_not_json_are_refused_with_415_on_every_route(client: httpx.AsyncClient) -> None:
    item = "/api/probe/lean/00000000-0000-0000-0000-000000000001"
    for url in ("/api/probe/items", item):
        r = await client.post(url, content=b'{"name": "a"}', headers={"content-type": "text/plain"})
        _problem(r, 415)
        r = await client.post(url, content=b"name=a", headers={"content-type": "application/x-www-form-urlencoded"})
        _problem(r, 415)
    assert (await client.post(item, json={"name": "a"})).status_code == 200


async def test_a_staff_route_checks_the_token_before_the_body(client: httpx.AsyncClient) -> None:
    malformed = {"content": b"{not json", "headers": {"content-type": "application/json"}}
    _problem(await client.post("/api/probe/staff/items", **malformed), 401)  # type: ignore[arg-type]
    _problem(await client.post("/api/probe/staff/items", json={"count": "x"}), 401)
    _problem(await client.post("/api/probe/staff/items", content=b'{"name": "\\u0000"}'), 401)
    wrong_role = {"Authorization": "Bearer " + mint_token(tenant="t", roles=["checkin"], settings=SETTINGS)}
    _problem(await client.post("/api/probe/staff/items", json={"count": "x"}, headers=wrong_role), 403)
    _problem(await client.post("/api/probe/staff/items", json={"count": "x"}, headers=_staff()), 422)
    assert (await client.post("/api/probe/staff/items", json={"name": "a"}, headers=_staff())).status_code == 200


async def test_tokens_have_a_maximum_lifetime(client: httpx.AsyncClient) -> None:
    ten_years = _staff(ttl=timedelta(days=3650))
    body = _problem(await client.post("/api/probe/staff/items", json={"name": "a"}, headers=ten_years), 401)
    assert "longer than" in str(body["detail"])
    month = _staff(ttl=timedelta(hours=SETTINGS.jwt_max_lifetime_hours))
    assert (await client.post("/api/probe/staff/items", json={"name": "a"}, headers=month)).status_code == 200


async def test_unexpected_errors_are_problem_documents_not_plain_text(client: httpx.AsyncClient) -> None:
    body = _problem(await client.get("/api/probe/boom"), 500)
    assert "a bug" not in str(body)  # nothing of the internals leaks
    _problem(await client.get("/api/probe/overflow"), 422)
