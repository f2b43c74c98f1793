"""The webhook and dead-letter pages against the real services, a real HTTP receiver and the bus.

Staff create a webhook endpoint pointing at a local receiver that answers 500 first, see the failed delivery,
send it again once the receiver answers 200 and see it delivered. Operators (``admin``) list dead letters of
the bus, retry one and drop one; ``staff`` get the 403 page there, a ``checkin`` person on the webhooks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest

from civic import cli
from shared import db
from shared.bus.streams import Keys, redis_from_settings
from shared.contracts.content import ContentPublishedV1
from shared.contracts.registry import REGISTRY
from shared.settings import Settings
from tests.console_support import csrf_of, sign_in_locally
from tests.integration.console.conftest import Console
from tests.integration.notifications.support import Receiver, envelope
from tests.support import eventually, staff_headers


@pytest.fixture(autouse=True)
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """The receiving system: 500 to the first delivery, 200 from then on. Set up before the services start
    (autouse fixtures come first), so notifications may reach it and retries wait long (the re-send is what
    sends it again)."""
    with Receiver([500, 200]) as rx:
        monkeypatch.setenv("CIVIC_NOTIFICATIONS_ALLOW_PRIVATE_TARGETS", json.dumps([f"127.0.0.1/32#{rx.port}"]))
        monkeypatch.setenv("CIVIC_NOTIFICATIONS_WEBHOOK_RETRY_SCHEDULE", "[3600]")
        monkeypatch.setenv("CIVIC_NOTIFICATIONS_SENDER_POLL_SECONDS", "0.1")
        yield rx


def page_of(r: httpx.Response, status: int = 200) -> str:
    assert r.status_code == status, (r.status_code, r.text[:1500])
    assert r.headers["content-type"].startswith("text/html")
    assert "<script" not in r.text and 'style="' not in r.text
    return r.text


async def post_form(browser: httpx.AsyncClient, path: str, data: dict[str, Any] | None = None) -> httpx.Response:
    """Open the page that holds the form (for its CSRF field), then post it as a browser would."""
    form_page = await browser.get(path)
    return await browser.post(path, data={"csrf": csrf_of(form_page.text), **(data or {})})


async def publish_meeting(console: Console, settings: Settings) -> None:
    """A public event of the tenant: a meeting published (civic.registration.meeting.published.v1)."""
    headers = staff_headers(console.tenant, settings=settings)
    starts = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    r = await console.api.post(
        "/api/registration/staff/meetings",
        headers=headers,
        json={
            "title": "Bürgerforum",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(),
            "capacity": 20,
        },
    )
    assert r.status_code == 201, r.text
    published = await console.api.post(f"/api/registration/staff/meetings/{r.json()['id']}/publish", headers=headers)
    assert published.status_code == 200, published.text


async def test_staff_create_a_webhook_see_its_failure_and_send_it_again(
    make_console: Any, settings: Settings, receiver: Receiver
) -> None:
    async with make_console() as console, console.browser() as browser:
        await sign_in_locally(browser, console.tenant, "staff")
        base = f"/verwaltung/{console.tenant}/webhooks"
        assert "Noch keine Webhooks." in page_of(await browser.get(base))

        # Refused input comes back with an error summary, nothing created.
        refused = await post_form(browser, base + "/neu", {"url": "", "event_types": []})
        text = page_of(refused, 400)
        assert "Es gibt ein Problem" in text and "Bitte geben Sie die Adresse an." in text
        assert "Bitte wählen Sie mindestens ein Ereignis." in text
        internal = await post_form(browser, base + "/neu", {"url": "http://10.0.0.7/hook", "event_types": ["*"]})
        assert "sie zeigt ins interne Netz" in page_of(internal, 400)

        url = f"http://127.0.0.1:{receiver.port}/civic"
        created = await post_form(
            browser,
            base + "/neu",
            {"url": url, "event_types": ["civic.registration.meeting.published.v1"], "description": "Stadtteil-App"},
        )
        text = page_of(created)
        secret = re.search(r'id="secret"[^>]*>(whsec_[^<]+)<', text)
        assert secret, "the secret is shown once"
        listed = page_of(await browser.get(base))
        assert url in listed and "aktiv" in listed and secret.group(1) not in listed
        endpoint_id = re.search(rf'href="{base}/([0-9a-f-]{{36}})"', listed)
        assert endpoint_id
        endpoint = f"{base}/{endpoint_id.group(1)}"

        await publish_meeting(console, settings)
        await eventually(lambda: _received(receiver, 1), what="the first delivery")

        async def failed() -> str | None:
            text = page_of(await browser.get(endpoint + "?zeige=fehler"))
            return text if "fehlgeschlagen, nächster Versuch" in text else None

        text = await eventually(failed, what="the failed delivery on the page")
        assert "500" in text and "0 zugestellt, 1 fehlgeschlagen" in text
        resend = re.search(rf'action="({endpoint}/zustellungen/[0-9a-f-]{{36}}/erneut)"', text)
        assert resend
        answer = await browser.post(resend.group(1), data={"csrf": csrf_of(text)})
        assert answer.status_code == 303 and answer.headers["location"] == endpoint + "?erneut=ja"
        assert "Die Zustellung wird erneut gesendet." in page_of(await browser.get(answer.headers["location"]))

        async def sent() -> str | None:
            text = page_of(await browser.get(endpoint))
            return text if "1 zugestellt, 0 fehlgeschlagen" in text else None

        text = await eventually(sent, what="the delivery sent")
        assert "erneut gesendet: 1-mal" in text and "200" in text
        assert len(receiver.received) == 2
        # The same delivery: the same webhook-id, so the receiver can tell it is the one it missed.
        assert receiver.received[0].headers["webhook-id"] == receiver.received[1].headers["webhook-id"]

        # Delete, through its confirmation page.
        confirm = page_of(await browser.get(endpoint + "/loeschen"))
        assert "Möchten Sie den Webhook an" in confirm
        gone = await browser.post(endpoint + "/loeschen", data={"csrf": csrf_of(confirm)})
        assert gone.status_code == 303
        text = page_of(await browser.get(gone.headers["location"]))
        assert "Der Webhook ist gelöscht." in text and url not in text


async def _received(receiver: Receiver, n: int) -> bool:
    return len(receiver.received) >= n


async def test_the_api_resends_idempotently_and_only_webhooks(make_console: Any, settings: Settings) -> None:
    async with make_console() as console:
        headers = staff_headers(console.tenant, settings=settings)
        missing = await console.api.post(f"/api/notifications/deliveries/{uuid4()}/resend", headers=headers)
        assert missing.status_code == 404
        door = staff_headers(console.tenant, "checkin", settings=settings)
        refused = await console.api.post(f"/api/notifications/deliveries/{uuid4()}/resend", headers=door)
        assert refused.status_code == 403


async def test_a_checkin_person_may_not_see_the_webhooks(make_console: Any) -> None:
    async with make_console() as console, console.browser() as browser:
        await sign_in_locally(browser, console.tenant, "checkin")
        for path in ("webhooks", "webhooks/neu", "benachrichtigungen"):
            assert "Kein Zugriff" in page_of(await browser.get(f"/verwaltung/{console.tenant}/{path}"), 403)


# -- dead letters ----------------------------------------------------------------------------------------------------


async def _dead_letter_of_notifications(console: Console, settings: Settings, entry_id: str) -> dict[str, Any] | None:
    r = await console.api.get(
        "/api/notifications/admin/dead-letters", headers=staff_headers(console.tenant, "admin", settings=settings)
    )
    assert r.status_code == 200, r.text
    return next((d for d in r.json() if d["entry_id"] == entry_id), None)


async def two_dead_letters(console: Console, settings: Settings) -> tuple[dict[str, Any], int]:
    """A malformed entry on a stream notifications consumes (dead-lettered at once, as the consumer does), and
    an event whose handling failed before (set aside as the consumer does), which goes through now."""
    redis = redis_from_settings(settings)
    try:
        stream = REGISTRY.get("civic.registration.meeting.published.v1").stream
        entry = (await redis.xadd(Keys(settings.stream_prefix).stream(stream), {"event": b"{not json"})).decode()
    finally:
        await redis.aclose()
    bad = await eventually(
        lambda: _dead_letter_of_notifications(console, settings, entry), what="the malformed entry dead-lettered"
    )
    process_id = uuid4()
    good = envelope(
        ContentPublishedV1(content_id=process_id, kind="process", process_id=process_id, title="Verfahren"),
        console.tenant,
        f"process/{process_id}",
        producer="content",
    )
    conn = await db.connect(settings.database_url, "notifications")
    try:
        good_id = await conn.fetchval(
            "insert into dead_letters (stream, entry_id, event_id, type, tenant, raw, error, deliveries)"
            " values ($1, $2, $3, $4, $5, $6, 'database was away', 5) returning id",
            REGISTRY.get(good.type).stream,
            f"9-{uuid4().int % 10**9}",
            good.id,
            good.type,
            console.tenant,
            good.model_dump_json(),
        )
    finally:
        await conn.close()

    return bad, good_id


async def test_operators_list_retry_and_drop_dead_letters(make_console: Any, settings: Settings) -> None:
    async with make_console() as console, console.browser() as browser:
        bad, good_id = await two_dead_letters(console, settings)
        await sign_in_locally(browser, console.tenant, "admin", name="Betrieb")
        page = "/verwaltung/betrieb/fehler"
        text = page_of(await browser.get(page))
        assert "Fehler des Nachrichtenbusses" in text and "database was away" in text and "invalid event" in text
        assert f"/notifications/{bad['id']}/erneut" in text and f"/notifications/{good_id}/erneut" in text

        # Retrying the good one handles it: resolved, and gone from the open ones.
        done = await browser.post(f"{page}/notifications/{good_id}/erneut", data={"csrf": csrf_of(text)})
        assert done.headers["location"] == page + "?ergebnis=erledigt"
        text = page_of(await browser.get(done.headers["location"]))
        assert "Verarbeitet: Der Fehler ist erledigt." in text and "database was away" not in text
        # A second click changes nothing.
        again = await browser.post(f"{page}/notifications/{good_id}/erneut", data={"csrf": csrf_of(text)})
        assert again.headers["location"] == page + "?ergebnis=erledigt-schon"

        # The malformed one cannot be handled; it is dropped through the confirmation page.
        stuck = await browser.post(f"{page}/notifications/{bad['id']}/erneut", data={"csrf": csrf_of(text)})
        assert stuck.headers["location"] == page + "?ergebnis=unverarbeitbar"
        confirm = page_of(await browser.get(f"{page}/notifications/{bad['id']}/verwerfen"))
        assert "Möchten Sie diesen Eintrag wirklich verwerfen?" in confirm and "invalid event" in confirm
        dropped = await browser.post(f"{page}/notifications/{bad['id']}/verwerfen", data={"csrf": csrf_of(confirm)})
        assert dropped.headers["location"] == page + "?ergebnis=verworfen"
        assert f"/notifications/{bad['id']}/erneut" not in page_of(await browser.get(page))

        admin = staff_headers(console.tenant, "admin", settings=settings)
        rows = (await console.api.get("/api/notifications/admin/dead-letters?status=all", headers=admin)).json()
        states = {r["id"]: r["status"] for r in rows}
        assert states[good_id] == "retried" and states[bad["id"]] == "dropped"
        assert "raw" not in rows[0]


async def test_staff_may_not_see_the_dead_letters(make_console: Any, settings: Settings) -> None:
    async with make_console() as console, console.browser() as browser:
        await sign_in_locally(browser, console.tenant, "staff")
        assert "Kein Zugriff" in page_of(await browser.get("/verwaltung/betrieb/fehler"), 403)
        # Nor does the navigation offer it, nor the services answer a staff token.
        assert "/verwaltung/betrieb/fehler" not in page_of(await browser.get(f"/verwaltung/{console.tenant}/"))
        for service in ("registration", "surveys", "notifications", "content"):
            r = await console.api.get(
                f"/api/{service}/admin/dead-letters", headers=staff_headers(console.tenant, settings=settings)
            )
            assert r.status_code == 403, (service, r.text)
    async with make_console() as console, console.browser() as browser:
        # Not signed in: on to the sign-in.
        r = await browser.get("/verwaltung/betrieb/fehler")
        assert r.status_code == 303 and r.headers["location"].startswith("/verwaltung/anmelden")


async def test_civic_dlq_uses_the_same_functions(
    make_console: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with make_console() as console:
        bad, good_id = await two_dead_letters(console, settings)
        monkeypatch.setattr(cli, "get_settings", lambda: settings)
        listed = await cli.dlq("list", "notifications", None, "open")
        assert {bad["id"], good_id} <= {r["id"] for r in listed} and all("raw" not in r for r in listed)
        assert (await cli.dlq("show", "notifications", bad["id"], "open"))["raw"] == "{not json"
        assert await cli.dlq("retry", "notifications", good_id, "open") == {"retried": True}
        with pytest.raises(SystemExit, match="does not parse"):
            await cli.dlq("retry", "notifications", bad["id"], "open")
        assert await cli.dlq("drop", "notifications", bad["id"], "open") == {"dropped": True}
        assert await cli.dlq("drop", "notifications", bad["id"], "open") == {"dropped": False}
        with pytest.raises(SystemExit, match="is dropped"):
            await cli.dlq("retry", "notifications", bad["id"], "open")
        r = await console.api.get(
            f"/api/notifications/admin/dead-letters/{good_id}",
            headers=staff_headers(console.tenant, "admin", settings=settings),
        )
        assert r.status_code == 200 and r.json()["status"] == "retried"
