"""The HTTP surface: OpenAPI, problem documents for every error, staff-only endpoints, opt-in links."""

from __future__ import annotations

from uuid import uuid4

from shared.settings import Settings
from tests.integration.notifications.support import mail_settings, running_service
from tests.support import staff_headers

PROBLEM = "application/problem+json"


async def test_openapi_and_problem_documents(settings: Settings) -> None:
    async with running_service(settings, mail_settings(1)) as svc:
        doc = (await svc.client.get("/api/notifications/openapi.json")).json()
        for path in (
            "/api/notifications/subscriptions",
            "/api/notifications/subscriptions/confirm",
            "/api/notifications/unsubscribe",
            "/api/notifications/causes/{event_id}/deliveries",
            "/api/notifications/deliveries",
            "/api/notifications/webhooks",
        ):
            assert path in doc["paths"], path

        bad = await svc.client.post(
            "/api/notifications/subscriptions", json={"tenant": "", "email": "not-an-address", "locale": "fr"}
        )
        assert bad.status_code == 422 and bad.headers["content-type"].startswith(PROBLEM)
        pointers = {e["pointer"] for e in bad.json()["errors"]}
        assert pointers == {"/tenant", "/email", "/process_id", "/locale"}

        forged = await svc.client.post("/api/notifications/subscriptions/confirm", params={"token": f"{uuid4()}.AAAA"})
        assert forged.status_code == 400 and forged.headers["content-type"].startswith(PROBLEM)

        headers = staff_headers(svc.tenant, settings=settings)
        hook = await svc.client.post(
            "/api/notifications/webhooks", json={"url": "ftp://x", "event_types": ["Bad Type!"]}, headers=headers
        )
        assert hook.status_code == 422 and hook.headers["content-type"].startswith(PROBLEM)
        assert any(e["pointer"].startswith("/event_types") for e in hook.json()["errors"])
        missing = await svc.client.delete(f"/api/notifications/webhooks/{uuid4()}", headers=headers)
        assert missing.status_code == 404 and missing.headers["content-type"].startswith(PROBLEM)
        anonymous = await svc.client.get("/api/notifications/webhooks")
        assert anonymous.status_code == 401 and anonymous.headers["content-type"].startswith(PROBLEM)
        no_role = await svc.client.get("/api/notifications/webhooks", headers=staff_headers(svc.tenant, "checkin"))
        assert no_role.status_code == 403 and no_role.headers["content-type"].startswith(PROBLEM)
