"""The web client's pages against the real services (PostgreSQL, Redis, the bus): the web app's API client
speaks HTTP to the services' app in this process; every page is read as HTML and every form sent as a browser
without JavaScript sends it (CSRF cookie and field, redirect-after-POST)."""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest

from civic.services import select
from services.notifications.domain import sign_token
from services.notifications.service import definition as notifications
from shared.http.app import create_app
from shared.settings import Settings
from tests.support import eventually, staff_headers
from web.app import create_app as create_web
from web.settings import WebSettings

BASE = "http://civic.test"


class Site:
    def __init__(self, api: httpx.AsyncClient, web: httpx.AsyncClient, tenant: str) -> None:
        self.api, self.web, self.tenant = api, web, tenant

    async def page(self, path: str, status: int = 200) -> str:
        r = await self.web.get(path)
        assert r.status_code == status, (path, r.status_code, r.text[:1500])
        assert r.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert "<script" not in r.text and 'style="' not in r.text, "no inline script or style"
        return r.text

    async def send(self, path: str, fields: dict[str, Any], status: int = 303) -> httpx.Response:
        """The form on ``path`` sent with ``fields`` and the page's hidden fields (its CSRF token)."""
        text = await self.page(path)
        hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', text))
        action = html.unescape(re.search(r'<form[^>]* method="post" action="([^"]+)"', text).group(1))
        r = await self.web.post(action, data={**{k: html.unescape(v) for k, v in hidden.items()}, **fields})
        assert r.status_code == status, (action, r.status_code, r.text[:2000])
        return r


@pytest.fixture
async def site(settings: Settings) -> AsyncIterator[Site]:
    settings = settings.model_copy(update={"public_base_url": BASE})
    tenant = f"kreis-{secrets.token_hex(3)}"
    services = create_app(select(None), settings)
    web = create_web(
        WebSettings(
            api_base_url=BASE,
            public_base_url=BASE,
            tenants={tenant: {"name": "Kreis Test", "privacy_url": "https://example.org/datenschutz"}},
        ),
        transport=httpx.ASGITransport(app=services),
    )
    async with services.router.lifespan_context(services):
        api = httpx.AsyncClient(transport=httpx.ASGITransport(app=services), base_url=BASE)
        pages = httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url=BASE)
        async with api, pages:
            yield Site(api, pages, tenant)
        await web.state.api.close()


async def meeting_in_process(site: Site, settings: Settings, capacity: int = 1) -> tuple[str, str]:
    h = staff_headers(site.tenant, settings=settings)
    starts = (datetime.now(UTC) + timedelta(days=5)).replace(microsecond=0)
    m = (
        await site.api.post(
            "/api/registration/staff/meetings",
            headers=h,
            json={
                "title": "Auftakt in Heide",
                "venue": {"name": "Rathaus", "accessibility": "Aufzug vorhanden"},
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=2)).isoformat(),
                "capacity": capacity,
                "min_age": 14,
                "max_age": 99,
                "guardian_consent": True,
                "questions": [{"id": "essen", "label": "Essen Sie vegetarisch?", "kind": "yes_no"}],
            },
        )
    ).json()
    await site.api.post(f"/api/registration/staff/meetings/{m['id']}/publish", headers=h)
    p = (
        await site.api.post(
            "/api/content/staff/processes",
            headers=h,
            json={
                "slug": "strategie",
                "title": {"de": "Strategie", "en": "Strategy"},
                "funding": [{"label": {"de": "Landesmittel"}, "amount": 1250000}],
            },
        )
    ).json()
    await site.api.post(
        f"/api/content/staff/processes/{p['id']}/phases",
        headers=h,
        json={"title": {"de": "Jetzt"}, "starts_on": str(datetime.now(UTC).date() - timedelta(days=1))},
    )
    await site.api.post(
        f"/api/content/staff/processes/{p['id']}/contacts",
        headers=h,
        json={"name": "Robin Muster", "email": "robin@example.org", "phone": "+49 481 97 0"},
    )
    await site.api.post(
        f"/api/content/staff/processes/{p['id']}/references", headers=h, json={"kind": "meeting", "ref_id": m["id"]}
    )
    await site.api.post(f"/api/content/staff/processes/{p['id']}/publish", headers=h)
    return str(m["id"]), str(p["id"])


async def test_process_meeting_register_manage_cancel(site: Site, settings: Settings) -> None:
    meeting_id, _ = await meeting_in_process(site, settings)

    async def listed() -> str | None:
        text = await site.page(f"/{site.tenant}/verfahren/strategie")
        return text if "Auftakt in Heide" in text else None

    process = await eventually(listed, timeout=60, interval=0.2, what="the meeting on the process page")
    assert f'href="/{site.tenant}/termine/{meeting_id}"' in process
    assert 'aria-current="step"' in process and "1.250.000 €" in process
    assert "robin [at] example [dot] org" in process and "robin@example.org" not in process
    assert 'href="tel:+49481970"' in process

    meeting = await site.page(f"/{site.tenant}/termine/{meeting_id}")
    assert "Anmeldung bis" in meeting and "Aufzug vorhanden" in meeting and "Noch 1 von 1 Plätzen frei" in meeting
    assert 'name="accessibility_needs"' in meeting

    # Without the CSRF field: refused with a page, nothing registered.
    forged = await site.web.post(f"/{site.tenant}/termine/{meeting_id}", data={"name": "X", "email": "x@example.org"})
    assert forged.status_code == 403 and "Bitte laden Sie die Seite neu" in forged.text

    # The page's own checks and the API's, in German at their fields.
    refused = await site.send(
        f"/{site.tenant}/termine/{meeting_id}",
        {"name": "Kim", "email": "kein-at-zeichen", "age": "zwölf", "privacy_consent": "on"},
        status=422,
    )
    assert "Bitte geben Sie Ihr Alter als Zahl an" in refused.text
    bad_address = await site.send(
        f"/{site.tenant}/termine/{meeting_id}",
        {"name": "Kim", "email": "kein-at-zeichen", "age": "12", "privacy_consent": "on"},
        status=422,
    )
    assert 'href="#email"' in bad_address.text and "name@beispiel.de" in bad_address.text
    assert 'value="Kim"' in bad_address.text and 'value="12"' in bad_address.text, "what was entered is kept"
    too_young = await site.send(
        f"/{site.tenant}/termine/{meeting_id}",
        {"name": "Kim", "email": "kim@example.org", "age": "12", "privacy_consent": "on"},
        status=422,
    )
    assert 'href="#age"' in too_young.text and "andere Altersgruppe" in too_young.text
    assert 'href="#guardian_consent"' in too_young.text

    done = await site.send(
        f"/{site.tenant}/termine/{meeting_id}",
        {
            "name": "Kim Beispiel",
            "email": "kim@example.org",
            "age": "15",
            "guardian_consent": "on",
            "answers.essen": "ja",
            "accessibility_needs": "Rollstuhlplatz",
            "privacy_consent": "on",
        },
    )
    result_path = done.headers["location"]
    secret = re.fullmatch(r"/anmeldung/([^/]+)/ergebnis", result_path).group(1)
    result = await site.page(result_path)
    assert "Sie sind angemeldet" in result and f"/anmeldung/{secret}/ticket.png" in result
    own = (await site.api.get(f"/api/registration/registrations/{secret}")).json()
    assert own["answers"] == {"essen": True} and own["accessibility_needs"] == "Rollstuhlplatz"
    assert own["manage_url"] == f"{BASE}/anmeldung/{secret}"

    ticket = await site.web.get(f"/anmeldung/{secret}/ticket.png")
    assert ticket.status_code == 200 and ticket.content.startswith(b"\x89PNG")
    ics = await site.web.get(f"/{site.tenant}/termine/{meeting_id}/termin.ics")
    assert ics.headers["content-type"].startswith("text/calendar")
    assert "BEGIN:VEVENT" in ics.text and f"{BASE}/{site.tenant}/termine/{meeting_id}" in ics.text.replace("\r\n ", "")

    full = await site.page(f"/{site.tenant}/termine/{meeting_id}")
    assert "Auf die Warteliste setzen" in full

    manage = await site.page(f"/anmeldung/{secret}")
    assert "Rollstuhlplatz" in manage and f'href="/anmeldung/{secret}/absagen"' in manage
    # The link alone cancels nothing (mail scanners follow links).
    assert (await site.api.get(f"/api/registration/registrations/{secret}")).json()["status"] == "confirmed"
    cancelled = await site.send(f"/anmeldung/{secret}/absagen", {})
    assert cancelled.headers["location"] == f"/anmeldung/{secret}?abgesagt=1"
    after = await site.page(cancelled.headers["location"])
    assert "Sie haben Ihre Anmeldung abgesagt." in after and "/absagen" not in after
    assert (await site.api.get(f"/api/registration/registrations/{secret}")).json()["status"] == "cancelled"


async def test_start_page_news_and_missing_things(site: Site, settings: Settings) -> None:
    meeting_id, process_id = await meeting_in_process(site, settings, capacity=5)
    h = staff_headers(site.tenant, settings=settings)
    news = (
        await site.api.post(
            "/api/content/staff/articles",
            headers=h,
            json={
                "kind": "news",
                "slug": "ergebnisse",
                "process_id": process_id,
                "title": {"de": "Ergebnisse online"},
                "body": {"de": "Die **Ergebnisse** sind da."},
            },
        )
    ).json()
    await site.api.post(f"/api/content/staff/articles/{news['id']}/publish", headers=h)

    start = await site.page(f"/{site.tenant}")
    assert "Kreis Test" in start and f'href="/{site.tenant}/verfahren/strategie"' in start
    assert f'href="/{site.tenant}/termine/{meeting_id}"' in start
    assert 'href="https://example.org/datenschutz"' in start and f'href="/{site.tenant}/leichte-sprache"' in start
    article = await site.page(f"/{site.tenant}/neuigkeiten/ergebnisse")
    assert "<strong>Ergebnisse</strong>" in article
    process = await site.page(f"/{site.tenant}/verfahren/strategie")
    assert f'href="/{site.tenant}/neuigkeiten/ergebnisse"' in process

    switched = await site.web.get(f"/sprache?lang=en&next=/{site.tenant}/verfahren/strategie")
    assert switched.status_code == 303 and switched.headers["location"] == f"/{site.tenant}/verfahren/strategie"
    english = await site.web.get(switched.headers["location"])
    assert '<html lang="en">' in english.text and "Strategy" in english.text and "€1,250,000" in english.text

    await site.web.get("/sprache?lang=de")
    assert "Seite nicht gefunden" in await site.page(f"/{site.tenant}/neuigkeiten/gibt-es-nicht", 404)
    assert "Seite nicht gefunden" in await site.page(f"/{site.tenant}/termine/{uuid4()}", 404)
    assert "Seite nicht gefunden" in await site.page("/anmeldung/falsch", 404)
    assert "Seite nicht gefunden" in await site.page(f"/andere-kommune/termine/{meeting_id}", 404)
    unknown_api = await site.web.get("/api/gibt-es-nicht")
    assert unknown_api.status_code == 404 and unknown_api.headers["content-type"] == "application/problem+json"
    missing = await site.api.get("/q/weg")
    assert missing.headers["location"] == f"{BASE}/kurzlink/weg"
    assert "keiner Seite mehr" in await site.page("/kurzlink/weg", 404)


async def test_subscription_confirm_and_unsubscribe_pages(site: Site, settings: Settings) -> None:
    _, process_id = await meeting_in_process(site, settings)

    async def subscribed() -> bool:
        # Notifications learns of the process from content's event, a moment after it was published.
        r = await site.api.post(
            "/api/notifications/subscriptions",
            json={"tenant": site.tenant, "email": "nora@example.org", "process_id": process_id},
        )
        return r.status_code == 202

    await eventually(subscribed, timeout=10, interval=0.2, what="the process known to notifications")
    secret = notifications_secret()

    async def subscription_id() -> str | None:
        return await first_subscription(settings)

    sid = await eventually(subscription_id, timeout=10, interval=0.2, what="the subscription")
    confirm = sign_token(secret, "confirm", sid)
    page = await site.page(f"/abo/bestaetigen?token={confirm}")
    assert "Ja, Abonnement bestätigen" in page
    done = await site.send(f"/abo/bestaetigen?token={confirm}", {})
    assert done.headers["location"] == "/abo/bestaetigt"
    forged = await site.send(f"/abo/bestaetigen?token={sid}.AAAA", {}, status=400)
    assert "Der Link ist unvollständig" in forged.text

    unsubscribe = sign_token(secret, "unsubscribe", sid)
    done = await site.send(f"/abo/abbestellen?token={unsubscribe}", {})
    assert done.headers["location"] == "/abo/abbestellt"
    # A mail program's one-click unsubscribe (RFC 8058) to the same address, without a form.
    again = await site.web.post(f"/abo/abbestellen?token={unsubscribe}", content=b"List-Unsubscribe=One-Click")
    assert again.status_code == 200


def notifications_secret() -> str:
    from services.notifications.settings import NotificationSettings

    assert notifications.name == "notifications"
    return NotificationSettings().signing_secret


async def first_subscription(settings: Settings) -> str | None:
    import asyncpg

    conn = await asyncpg.connect(settings.database_url)
    try:
        found = await conn.fetchval("select id::text from notifications.subscriptions limit 1")
    finally:
        await conn.close()
    return str(found) if found else None
