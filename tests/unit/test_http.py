"""HTTP conventions: problem details, staff tokens, request ids (in-process, no servers needed)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from shared.http.app import create_app
from shared.http.auth import Principal, Staff, mint_token, require
from shared.http.problems import Problem
from shared.settings import Settings

SETTINGS = Settings(log_json=False)


class Signup(BaseModel):
    name: str = Field(min_length=1)
    seats: int = Field(ge=1, le=5)


router = APIRouter()


@router.post("/signups")
async def signup(body: Signup) -> dict[str, str]:
    if body.name == "full":
        raise Problem(409, "Meeting full", type_="meeting-full", detail="no seats left", seats_left=0)
    return {"ok": body.name}


@router.get("/staff-only")
async def staff_only(principal: Staff) -> dict[str, str]:
    return {"tenant": principal.tenant}


@router.get("/checkin-only")
async def checkin_only(principal: Annotated[Principal, Depends(require("checkin"))]) -> dict[str, str]:
    return {"subject": principal.subject}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app([], SETTINGS, migrate=False)
    app.include_router(router, prefix="/api/probe")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


def bearer(**kw: object) -> dict[str, str]:
    return {"Authorization": "Bearer " + mint_token(settings=SETTINGS, **kw)}  # type: ignore[arg-type]


async def test_every_bad_field_is_listed_in_one_problem(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/probe/signups", json={"name": "", "seats": 9})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 422 and body["type"].endswith("/validation")
    assert {e["pointer"] for e in body["errors"]} == {"/name", "/seats"}


async def test_domain_problems_keep_their_type_and_extensions(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/probe/signups", json={"name": "full", "seats": 1})
    assert r.status_code == 409
    assert r.json() | {} == {
        "type": "https://civic.example/problems/meeting-full",
        "title": "Meeting full",
        "status": 409,
        "detail": "no seats left",
        "instance": "/api/probe/signups",
        "seats_left": 0,
    }


async def test_unknown_paths_are_problems_too(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/probe/nothing-here")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


async def test_staff_endpoints_need_a_valid_token_with_tenant_and_role(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/probe/staff-only")).status_code == 401
    assert (await client.get("/api/probe/staff-only", headers={"Authorization": "Bearer x.y.z"})).status_code == 401
    ok = await client.get("/api/probe/staff-only", headers=bearer(tenant="stadt-detmold", roles=["staff"]))
    assert ok.status_code == 200 and ok.json() == {"tenant": "stadt-detmold"}
    other = Settings(jwt_secret="another-secret-of-sufficient-length-0123456789")
    forged = {"Authorization": "Bearer " + mint_token(tenant="x", roles=["staff"], settings=other)}
    assert (await client.get("/api/probe/staff-only", headers=forged)).status_code == 401
    wrong_role = await client.get("/api/probe/checkin-only", headers=bearer(tenant="t", roles=["staff"]))
    assert wrong_role.status_code == 403
    admin = await client.get("/api/probe/checkin-only", headers=bearer(tenant="t", roles=["admin"], subject="a1"))
    assert admin.status_code == 200 and admin.json() == {"subject": "a1"}


async def test_request_ids_are_echoed_or_made(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz", headers={"X-Request-ID": "gw-123"})
    assert r.headers["x-request-id"] == "gw-123"
    made = (await client.get("/healthz")).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)  # as nginx makes them
    assert (await client.get("/healthz")).headers["x-request-id"] != made
    unsafe = (await client.get("/healthz", headers={"X-Request-ID": "a b\tc"})).headers["x-request-id"]
    assert unsafe != "a b\tc"


async def test_readiness_fails_without_services_started(client: httpx.AsyncClient) -> None:
    r = await client.get("/readyz")
    assert r.status_code == 503


async def test_each_service_serves_its_own_openapi_document() -> None:
    from civic.services import ALL

    app = create_app(list(ALL.values()), SETTINGS, migrate=False, background=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        for name in ALL:
            doc = (await c.get(f"/api/{name}/openapi.json")).json()
            assert doc["paths"], f"{name} documents no paths"
            assert all(p.startswith(f"/api/{name}/") for p in doc["paths"])
            events = (await c.get(f"/api/{name}/asyncapi.json")).json()
            assert events["asyncapi"] == "3.0.0"
