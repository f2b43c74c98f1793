"""Issue 14's inputs against all four services on real PostgreSQL: whatever a careless or hostile client
sends, the answer is a 4xx problem document, never a 500 or plain text (shared/http/guard.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import httpx
import pytest

from civic.services import ALL
from shared.http.app import create_app
from shared.settings import Settings
from tests.support import staff_headers

MEETING = uuid4()


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(list(ALL.values()), settings, background=False)
    async with app.router.lifespan_context(app):
        # Errors stay answers here: a 500 is seen as the client would see it, not raised into the test.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://civic.test") as c:
            yield c


def registration(**changes: Any) -> dict[str, Any]:
    return {"name": "Erika Beispiel", "email": "erika@example.org", "privacy_consent": True, **changes}


JSON = {"content-type": "application/json"}
NUL_CASES: list[tuple[str, str, bytes | None]] = [
    ("POST", f"/api/registration/meetings/{MEETING}/registrations", b'{"name": "A\\u0000", "privacy_consent": true}'),
    ("GET", "/api/registration/meetings?tenant=kreis%00", None),
    ("GET", "/api/registration/registrations/abc%00def", None),
    ("DELETE", "/api/registration/registrations/abc%00def", None),
    ("POST", "/api/surveys/public/kreis/umfrage/responses", b'{"answers": {"q1": "ja\\u0000"}}'),
    ("GET", "/api/surveys/public/kreis%00/umfrage", None),
    ("POST", "/api/notifications/subscriptions", b'{"tenant": "k\\u0000", "email": "a@example.org", "process_id": "'
     + str(uuid4()).encode() + b'"}'),
    ("GET", "/api/notifications/subscriptions/confirm?token=%00", None),
    ("GET", "/api/content/public/kreis%00/processes", None),
    ("GET", "/api/content/public/kreis/processes/smart%00city", None),
    ("GET", "/q/ab%00", None),
]  # fmt: skip


@pytest.mark.parametrize(("method", "url", "body"), NUL_CASES)
async def test_a_nul_anywhere_is_a_400_problem_on_every_service(
    client: httpx.AsyncClient, method: str, url: str, body: bytes | None
) -> None:
    r = await client.request(method, url, content=body, headers=JSON if body else None)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["code"] == "nul"


@pytest.mark.parametrize(
    "url",
    [
        "/api/notifications/subscriptions/confirm?token=j%C3%B6rg.abc",
        "/api/notifications/unsubscribe?token=%E2%9C%93.x",
        "/api/registration/registrations/j%C3%B6rg",
    ],
)
async def test_non_ascii_link_tokens_are_4xx_problems(client: httpx.AsyncClient, url: str) -> None:
    for method in ("GET", "POST"):
        r = await client.request(method, url)
        if r.status_code == 405:
            continue
        assert 400 <= r.status_code < 500, (method, url, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")


async def test_integers_postgresql_cannot_store_are_refused(client: httpx.AsyncClient, settings: Settings) -> None:
    staff = staff_headers("kreis-dithmarschen", settings=settings)
    survey = {
        "title": "Mobilität",
        "opens_at": "2030-01-01T00:00:00+01:00",
        "closes_at": "2030-02-01T00:00:00+01:00",
        "reminder_offsets_hours": [1_000_000],  # fits 32 bits, but not as seconds
        "sections": [{"questions": [{"id": "q1", "kind": "text", "label": "Was fehlt?"}]}],
    }
    r = await client.post("/api/surveys/surveys", json=survey, headers=staff)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["pointer"].startswith("/reminder_offsets_hours")
    meeting = {"title": "Auftakt", "starts_at": "2030-01-01T18:00:00", "ends_at": "2030-01-01T20:00:00"}
    r = await client.post("/api/registration/staff/meetings", json={**meeting, "capacity": 2**40}, headers=staff)
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "int_range", r.text
    r = await client.get("/api/surveys/surveys", params={"limit": 10**12}, headers=staff)
    assert r.status_code == 422, r.text


@pytest.mark.parametrize(
    ("changes", "pointer", "code"),
    [
        ({"name": "   "}, "/name", "blank"),
        ({"name": "\u200b\u200d\ufeff \u2060"}, "/name", "blank"),
        ({"email": "x" * 65 + "@example.org"}, "/email", "value_error"),
    ],
)
async def test_blank_names_and_long_local_parts_are_refused(
    client: httpx.AsyncClient, changes: dict[str, Any], pointer: str, code: str
) -> None:
    r = await client.post(f"/api/registration/meetings/{MEETING}/registrations", json=registration(**changes))
    assert r.status_code == 422, r.text
    assert [(e["pointer"], e["code"]) for e in r.json()["errors"]] == [(pointer, code)]


async def test_registration_refuses_a_text_plain_body_like_the_other_services(client: httpx.AsyncClient) -> None:
    body = b'{"name": "Erika", "privacy_consent": true}'
    for url in (
        f"/api/registration/meetings/{MEETING}/registrations",
        "/api/notifications/subscriptions",
        "/api/surveys/public/kreis/umfrage/responses",
    ):
        r = await client.post(url, content=body, headers={"content-type": "text/plain"})
        assert r.status_code == 415, (url, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    "url",
    ["/api/registration/staff/meetings", "/api/surveys/surveys", "/api/notifications/webhooks",
     "/api/content/staff/processes"],
)  # fmt: skip
async def test_staff_routes_check_the_token_before_the_body(client: httpx.AsyncClient, url: str) -> None:
    for body in (b"{not json", b'{"title": 5}', b'{"title": "\\u0000"}'):
        r = await client.post(url, content=body, headers=JSON)
        assert r.status_code == 401, (url, body, r.text)
