"""Webhooks against real local receivers: signatures, retries, 410, and the SSRF list reaching no listener."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any
from uuid import uuid4

from shared.contracts.registration import Contact, RegistrationConfirmedV1, RegistrationReceivedV1
from shared.contracts.surveys import SurveyClosedV1
from shared.settings import Settings
from tests.integration.notifications.support import (
    Receiver,
    Receiver6,
    Running,
    envelope,
    mail_settings,
    meeting,
    running_service,
)
from tests.support import eventually, staff_headers


async def _async(value: Any) -> Any:
    return value


def allow(receiver: Receiver) -> list[str]:
    return [f"127.0.0.1/32#{receiver.port}"]


async def register(svc: Running, settings: Settings, url: str, types: list[str]) -> dict[str, Any]:
    r = await svc.client.post(
        "/api/notifications/webhooks",
        json={"url": url, "event_types": types},
        headers=staff_headers(svc.tenant, settings=settings),
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def confirmed(meeting_id: Any) -> RegistrationConfirmedV1:
    return RegistrationConfirmedV1(
        registration_id=uuid4(),
        meeting_id=meeting_id,
        contact=Contact(name="Erika Beispiel", email="erika@example.org"),
        ticket_code="T-SECRET",
        manage_url="https://beteiligung.example.org/anmeldung/geheim",
    )


async def test_signed_delivery_without_personal_data(settings: Settings) -> None:
    with Receiver([200]) as rx:
        async with running_service(settings, mail_settings(1, allow_private_targets=allow(rx))) as svc:
            hook = await register(svc, settings, f"http://127.0.0.1:{rx.port}/civic", ["civic.registration.*"])
            assert hook["secret"].startswith("whsec_")
            listed = await svc.client.get(
                "/api/notifications/webhooks", headers=staff_headers(svc.tenant, settings=settings)
            )
            assert "secret" not in listed.json()[0]  # shown once

            m = meeting()
            # A private event (personal data) never goes to a webhook, whatever the endpoint asked for.
            await svc.feed(envelope(confirmed(m.meeting_id), svc.tenant, f"meeting/{m.meeting_id}"))
            reg = RegistrationReceivedV1(registration_id=uuid4(), meeting_id=m.meeting_id)
            env = envelope(reg, svc.tenant, f"meeting/{m.meeting_id}")
            await svc.feed(env)
            closed = SurveyClosedV1(survey_id=uuid4(), closed_at=m.starts_at, responses=3)
            await svc.feed(envelope(closed, svc.tenant, None, producer="surveys"))  # not asked for

            got = await eventually(lambda: _async(rx.received), what="a webhook request")
            req = got[0]
            # Verified independently of the service's code: HMAC-SHA256 over "id.timestamp.body".
            key = base64.b64decode(hook["secret"].removeprefix("whsec_"))
            signed = f"{req.headers['webhook-id']}.{req.headers['webhook-timestamp']}.".encode() + req.body
            expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
            assert req.headers["webhook-signature"] == f"v1,{expected}"
            assert req.headers["webhook-id"] == str(env.id)
            assert req.headers["content-type"] == "application/cloudevents+json; charset=utf-8"
            body = json.loads(req.body)
            assert body["type"] == "civic.registration.registration.received.v1"
            assert body["data"]["registration_id"] == str(reg.registration_id)
            for personal in ("contact", "ticket_code", "manage_url"):
                assert personal not in body["data"]
            assert b"erika" not in req.body and b"T-SECRET" not in req.body
            await eventually(
                lambda: svc.rows("select 1 from deliveries where channel = 'webhook' and state = 'sent'"), what="sent"
            )
            assert len(rx.received) == 1


async def test_retries_on_500_with_the_same_id_then_succeeds(settings: Settings) -> None:
    with Receiver([500, 500, 200]) as rx:
        async with running_service(settings, mail_settings(1, allow_private_targets=allow(rx))) as svc:
            await register(svc, settings, f"http://127.0.0.1:{rx.port}/", ["*"])
            m = meeting()
            await svc.feed(envelope(m, svc.tenant, f"meeting/{m.meeting_id}"))
            rows = await eventually(
                lambda: svc.rows("select * from deliveries where channel = 'webhook' and state = 'sent'"),
                what="sent after retries",
            )
            assert rows[0]["attempts"] == 3
            assert len(rx.received) == 3
            assert len({r.headers["webhook-id"] for r in rx.received}) == 1
            failed = await svc.outbox_events("civic.notifications.notification.failed.v1", rows[0]["cause_event_id"])
            assert len(failed) == 2 and all(not f["data"]["permanent"] for f in failed)


async def test_410_gone_disables_the_endpoint(settings: Settings) -> None:
    with Receiver([410]) as rx:
        async with running_service(settings, mail_settings(1, allow_private_targets=allow(rx))) as svc:
            hook = await register(svc, settings, f"http://127.0.0.1:{rx.port}/", ["civic.registration.*"])
            m = meeting()
            await svc.feed(envelope(m, svc.tenant, f"meeting/{m.meeting_id}"))
            await eventually(
                lambda: svc.rows("select 1 from webhook_endpoints where not enabled and disabled_reason like '410%'"),
                what="endpoint disabled",
            )
            rows = await svc.rows("select state, attempts from deliveries where channel = 'webhook'")
            assert [(r["state"], r["attempts"]) for r in rows] == [("given_up", 1)]
            await svc.feed(envelope(meeting(), svc.tenant, None))
            assert len(await svc.rows("select 1 from deliveries where channel = 'webhook'")) == 1
            listed = await svc.client.get(
                "/api/notifications/webhooks", headers=staff_headers(svc.tenant, settings=settings)
            )
            assert listed.json()[0]["id"] == hook["id"] and listed.json()[0]["enabled"] is False
            assert len(rx.received) == 1


async def test_ssrf_targets_reach_no_listener(settings: Settings) -> None:
    """Protection on. Only the redirecting receiver itself is allow-listed (by port): its redirect is not followed."""
    inside, inside6 = Receiver([200]), Receiver6()
    redirector = Receiver([302], redirect_to=f"http://127.0.0.1:{inside.port}/stolen")
    with inside, inside6, redirector:
        nsettings = mail_settings(1, allow_private_targets=[f"127.0.0.1/32#{redirector.port}"])
        async with running_service(settings, nsettings) as svc:
            targets = [
                f"http://127.0.0.1:{inside.port}/",
                f"http://2130706433:{inside.port}/",
                f"http://[::1]:{inside6.port}/",
                f"http://[::ffff:127.0.0.1]:{inside.port}/",
                f"http://[fd00::1]:{inside.port}/",
                "http://169.254.169.254/latest/meta-data/",
                f"http://localhost:{inside.port}/",
            ]
            headers = staff_headers(svc.tenant, settings=settings)
            for url in targets:  # the API refuses them outright ...
                r = await svc.client.post(
                    "/api/notifications/webhooks", json={"url": url, "event_types": ["*"]}, headers=headers
                )
                assert r.status_code == 422, url
                assert r.json()["errors"][0]["pointer"] == "/url"
            # ... and the sender refuses them at connect time even when they got into the table.
            for url in [*targets, f"http://127.0.0.1:{redirector.port}/"]:
                await svc.ctx.pool.execute(
                    "insert into webhook_endpoints (id, tenant, url, event_types, secret, created_at)"
                    " values ($1, $2, $3, $4, $5, now())",
                    uuid4(),
                    svc.tenant,
                    url,
                    ["*"],
                    "whsec_" + base64.b64encode(b"k" * 32).decode(),
                )
            m = meeting()
            await svc.feed(envelope(m, svc.tenant, f"meeting/{m.meeting_id}"))
            rows = await eventually(lambda: _settled(svc, len(targets) + 1), timeout=20, what="every attempt settled")
            by_url = {r["url"]: r for r in rows}
            for url in targets:
                assert by_url[url]["state"] == "given_up", url
                assert by_url[url]["last_answer"].startswith("refused target"), by_url[url]["last_answer"]
            assert "redirect not followed" in by_url[f"http://127.0.0.1:{redirector.port}/"]["last_answer"]
            assert len(redirector.received) >= 1
            assert inside.received == [] and inside6.received == []


async def _settled(svc: Running, n: int) -> list[Any]:
    rows = await svc.rows(
        "select e.url, d.state, d.last_answer from deliveries d join webhook_endpoints e on e.id = d.endpoint_id"
        " where d.channel = 'webhook' and d.last_answer is not null"
    )
    return rows if len(rows) == n else []
