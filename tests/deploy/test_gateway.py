"""The nginx gateway for real, in front of the four services started as separate processes."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from tests.deploy.gateway import SERVICES, Gateway

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def client(gateway: Gateway) -> httpx.AsyncClient:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as c:
        yield c


@pytest.mark.parametrize("service", SERVICES)
async def test_each_service_documents_reachable_through_gateway(client: httpx.AsyncClient, service: str) -> None:
    openapi = await client.get(f"/api/{service}/openapi.json")
    assert openapi.status_code == 200, openapi.text
    assert openapi.json()["info"]["title"] == f"civic {service}"
    assert all(path.startswith(f"/api/{service}/") for path in openapi.json().get("paths", {}))

    asyncapi = await client.get(f"/api/{service}/asyncapi.json")
    assert asyncapi.status_code == 200, asyncapi.text
    assert asyncapi.json()["asyncapi"].startswith("3.")


async def test_requests_reach_the_process_of_their_service(gateway: Gateway, client: httpx.AsyncClient) -> None:
    """Each prefix goes to its own process: the other services' documents are not served there."""
    for service in SERVICES:
        direct = await client.get(f"{gateway.service_urls[service]}/api/{service}/openapi.json")
        assert direct.status_code == 200
        for other in (s for s in SERVICES if s != service):
            elsewhere = await client.get(f"{gateway.service_urls[service]}/api/{other}/openapi.json")
            assert elsewhere.status_code == 404, (service, other)


async def test_qr_short_links_are_routed_to_content(gateway: Gateway, client: httpx.AsyncClient) -> None:
    """/q/<code> is answered by the content process: the same answer as asking it directly."""
    via_gateway = await client.get("/q/does-not-exist-0000")
    direct = await client.get(f"{gateway.service_urls['content']}/q/does-not-exist-0000")
    assert via_gateway.status_code == direct.status_code
    assert via_gateway.content == direct.content
    gateway_404 = await client.get("/nowhere/q/does-not-exist-0000")
    assert via_gateway.content != gateway_404.content, "answered by nginx itself, not by content"


async def test_unknown_paths_answer_404(client: httpx.AsyncClient) -> None:
    for path in ("/api/unknown/openapi.json", "/api/registrationx/openapi.json", "/metrics"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == 404


async def test_pages_are_answered_by_the_web_client(gateway: Gateway, client: httpx.AsyncClient) -> None:
    """Everything outside /api/ and /q/ is the web client's: pages, and a page for an unknown path."""
    start = await client.get("/")
    assert start.status_code == 200 and start.headers["content-type"].startswith("text/html")
    assert '<html lang="de">' in start.text
    assert start.headers["content-security-policy"].startswith("default-src 'none'")
    missing = await client.get("/nowhere/at/all")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert "Seite nicht gefunden" in missing.text
    direct = await client.get(f"{gateway.service_urls['web']}/nowhere/at/all")
    assert direct.text == missing.text
    css = await client.get("/static/civic.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


async def test_request_id_is_forwarded_and_echoed(client: httpx.AsyncClient) -> None:
    sent = f"test-{uuid.uuid4()}"
    for path in ("/api/registration/openapi.json", "/api/content/asyncapi.json", "/nowhere"):
        response = await client.get(path, headers={"X-Request-ID": sent})
        assert response.headers.get_list("x-request-id") == [sent], path


async def test_request_id_is_made_when_absent_or_malformed(client: httpx.AsyncClient) -> None:
    seen = set()
    for headers in ({}, {}, {"X-Request-ID": "bad id with spaces;"}):
        response = await client.get("/api/surveys/openapi.json", headers=headers)
        ids = response.headers.get_list("x-request-id")
        assert len(ids) == 1
        assert re.fullmatch(r"[0-9a-f]{32}", ids[0]), ids
        seen.add(ids[0])
    assert len(seen) == 3


async def test_gateway_health_and_service_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    for service in SERVICES:
        ready = await client.get(f"/readyz/{service}")
        assert ready.status_code == 200
        assert ready.json()["services"] == {service: "ok"}
