"""Staff build a process over HTTP; the public page shows it in one request, per language, with ETags."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from services.content.service import definition
from shared.clock import FrozenClock
from shared.http.app import create_app
from shared.settings import Settings
from tests.integration.content.helpers import clock, make_process, ok, staff
from tests.support import serve


@pytest.fixture
async def app_client(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, FrozenClock]]:
    c = clock()
    app = create_app([definition], settings, clock=c, background=False)
    async with serve(app) as client:
        yield client, c


async def _build(client: httpx.AsyncClient, h: dict[str, str]) -> dict[str, Any]:
    p = await make_process(client, h)
    base = f"/api/content/staff/processes/{p['id']}"
    await ok(
        await client.post(
            f"{base}/phases",
            headers=h,
            json={"title": {"de": "Umsetzungsphase"}, "starts_on": "2022-10-01"},
        ),
        201,
    )
    await ok(
        await client.post(
            f"{base}/phases",
            headers=h,
            json={
                "title": {"de": "Strategiephase", "en": "Strategy phase"},
                "starts_on": "2021-10-01",
                "ends_on": "2022-09-30",
            },
        ),
        201,
    )
    for number in ("1.3", "1.1", "1.10", "1.2"):
        await ok(
            await client.post(
                f"{base}/steps",
                headers=h,
                json={"number": number, "title": {"de": f"Schritt {number}"}, "body": {"de": f"**{number}**"}},
            ),
            201,
        )
    await ok(
        await client.post(
            f"{base}/contacts",
            headers=h,
            json={
                "name": "Alex Beispiel",
                "role": {"de": "Projektleitung", "en": "Project lead"},
                "unit": {"de": "Stabsstelle Digitalisierung"},
                "email": "digital@example.org",
                "phone": "+49 5231 0000",
                "address": "Rathausplatz 1, 32756 Beispielstadt",
                "opening_hours": {"de": "Mo-Fr 9-12 Uhr"},
            },
        ),
        201,
    )
    await ok(
        await client.post(
            f"{base}/attachments",
            headers=h,
            json={"title": {"de": "Strategie (PDF)"}, "url": "https://example.org/strategie.pdf"},
        ),
        201,
    )
    for i in range(7):
        a = await ok(
            await client.post(
                "/api/content/staff/articles",
                headers=h,
                json={
                    "kind": "news",
                    "slug": f"news-{i}",
                    "process_id": p["id"],
                    "title": {"de": f"Meldung {i}"},
                    "body": {"de": f"Text {i} <script>alert({i})</script>"},
                },
            ),
            201,
        )
        if i < 6:  # the last one stays a draft
            await ok(await client.post(f"/api/content/staff/articles/{a['id']}/publish", headers=h))
    return p


async def test_public_page_in_one_request(
    app_client: tuple[httpx.AsyncClient, FrozenClock], settings: Settings, prefix: str
) -> None:
    client, c = app_client
    tenant = prefix
    h = staff(tenant, settings)
    p = await _build(client, h)
    url = f"/api/content/public/{tenant}/processes/smart-city"

    r = await client.get(url)
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    await ok(await client.post(f"/api/content/staff/processes/{p['id']}/publish", headers=h))

    page = await ok(await client.get(url, params={"lang": "en", "news_per_page": 4}))
    assert page["title"] == "Smart city model project"
    assert page["motto"] == "Die co-kreative Stadt"  # no English: German
    assert page["funding"] == [
        {
            "label": "Federal funding",
            "amount": 5600000,
            "currency": "EUR",
            "source": "Bundesministerium (Beispiel)",
            "period": None,
        }
    ]
    assert [ph["title"] for ph in page["phases"]] == ["Strategy phase", "Umsetzungsphase"]
    assert page["current_phase"]["title"] == "Strategy phase"
    assert [s["number"] for s in page["steps"]] == ["1.1", "1.2", "1.3", "1.10"]
    assert page["steps"][0]["body_html"] == "<p><strong>1.1</strong></p>"
    contact = page["contacts"][0]
    assert contact["email"] == "digital [at] example [dot] org"
    assert contact["role"] == "Project lead" and contact["opening_hours"] == "Mo-Fr 9-12 Uhr"
    assert page["attachments"] == [
        {"title": "Strategie (PDF)", "url": "https://example.org/strategie.pdf", "media_type": None}
    ]
    news = page["news"]
    assert news["total"] == 6 and news["pages"] == 2 and len(news["items"]) == 4
    assert all("<script" not in n["body_html"] and "alert" not in n["body_html"] for n in news["items"])
    second = await ok(await client.get(url, params={"news_page": 2, "news_per_page": 4}))
    assert len(second["news"]["items"]) == 2
    assert {n["slug"] for n in news["items"]} | {n["slug"] for n in second["news"]["items"]} == {
        f"news-{i}" for i in range(6)
    }
    for language in ("de", "en"):
        text = (await client.get(url, params={"lang": language})).text
        assert "digital@example.org" not in text and "@" not in text

    # Staff see the address in clear.
    full = await ok(await client.get(f"/api/content/staff/processes/{p['id']}", headers=h))
    assert full["contacts"][0]["email"] == "digital@example.org"

    # The current phase follows the clock (Europe/Berlin): 1 October 2022 begins at 22:00 UTC the day before.
    c.set(c.now().replace(year=2022, month=9, day=30, hour=22, minute=0))
    later = await ok(await client.get(url))
    assert later["current_phase"]["title"] == "Umsetzungsphase"


async def test_etag_and_cache_control(
    app_client: tuple[httpx.AsyncClient, FrozenClock], settings: Settings, prefix: str
) -> None:
    client, clock_ = app_client
    h = staff(prefix, settings)
    p = await make_process(client, h)
    await ok(await client.post(f"/api/content/staff/processes/{p['id']}/publish", headers=h))
    url = f"/api/content/public/{prefix}/processes/smart-city"
    first = await client.get(url)
    etag = first.headers["etag"]
    assert first.headers["cache-control"].startswith("public, max-age=")
    again = await client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert (await client.get(url, params={"lang": "en"}, headers={"If-None-Match": etag})).status_code == 200
    await ok(
        await client.patch(
            f"/api/content/staff/processes/{p['id']}", headers=h, json={"motto": {"de": "Ein neues Motto"}}
        )
    )
    changed = await client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()["motto"] == "Ein neues Motto"

    # Every kind of change makes the old ETag stale, though a 304 is answered from the page's version.
    base = f"/api/content/staff/processes/{p['id']}"

    async def step() -> None:
        await ok(await client.post(f"{base}/steps", headers=h, json={"number": "2", "title": {"de": "S"}}), 201)

    async def news() -> None:
        a = await ok(
            await client.post(
                "/api/content/staff/articles",
                headers=h,
                json={"kind": "news", "slug": "neu", "process_id": p["id"], "title": {"de": "N"}, "body": {"de": "x"}},
            ),
            201,
        )
        await ok(await client.post(f"/api/content/staff/articles/{a['id']}/publish", headers=h))

    async def phase() -> None:
        body = {"title": {"de": "Phase"}, "starts_on": "2021-10-21"}
        await ok(await client.post(f"{base}/phases", headers=h, json=body), 201)

    async def next_day() -> None:
        clock_.advance(timedelta(days=1))  # the phase becomes current

    for change in (step, news, phase, next_day):
        current = (await client.get(url)).headers["etag"]
        assert (await client.get(url, headers={"If-None-Match": current})).status_code == 304
        await change()
        after = await client.get(url, headers={"If-None-Match": current})
        assert after.status_code == 200, change.__name__
        assert after.headers["etag"] != current
    assert (await client.get(url)).json()["current_phase"]["title"] == "Phase"


async def test_problems_auth_and_tenants(
    app_client: tuple[httpx.AsyncClient, FrozenClock], settings: Settings, prefix: str
) -> None:
    client, _ = app_client
    h = staff(prefix, settings)
    r = await client.post("/api/content/staff/processes", json={"slug": "x", "title": {"de": "X"}})
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"

    bad = await client.post(
        "/api/content/staff/processes",
        headers=h,
        json={"slug": "Nicht Gültig", "title": {"en": "no german"}, "funding": [{"label": {"de": "x"}, "amount": -1}]},
    )
    assert bad.status_code == 422
    pointers = {e["pointer"] for e in bad.json()["errors"]}
    assert {"/slug", "/title/de", "/funding/0/amount"} <= pointers

    p = await make_process(client, h)
    dup = await client.post(
        "/api/content/staff/processes", headers=h, json={"slug": "smart-city", "title": {"de": "Y"}}
    )
    assert dup.status_code == 409 and dup.json()["errors"][0]["pointer"] == "/slug"
    nulls = await client.patch(f"/api/content/staff/processes/{p['id']}", headers=h, json={"title": None, "slug": None})
    assert nulls.status_code == 422 and {e["pointer"] for e in nulls.json()["errors"]} == {"/title", "/slug"}
    cleared = await ok(await client.patch(f"/api/content/staff/processes/{p['id']}", headers=h, json={"motto": None}))
    assert cleared["motto"] is None and cleared["title"]["de"] == "Modellprojekt Smart City"
    phase = await client.post(
        f"/api/content/staff/processes/{p['id']}/phases",
        headers=h,
        json={"title": {"de": "P"}, "starts_on": "2022-01-02", "ends_on": "2022-01-01"},
    )
    assert phase.status_code == 422

    # Another tenant's staff neither see nor change this tenant's process.
    other = staff(f"{prefix}-other", settings)
    assert (await client.get(f"/api/content/staff/processes/{p['id']}", headers=other)).status_code == 404
    r = await client.patch(f"/api/content/staff/processes/{p['id']}", headers=other, json={"title": {"de": "gekapert"}})
    assert r.status_code == 404
    assert (await client.post(f"/api/content/staff/processes/{p['id']}/publish", headers=other)).status_code == 404
    assert (await client.get("/api/content/staff/processes", headers=other)).json()["items"] == []
    await ok(await client.post(f"/api/content/staff/processes/{p['id']}/publish", headers=h))
    assert (await client.get(f"/api/content/public/{prefix}-other/processes/smart-city")).status_code == 404
    again = await client.post(f"/api/content/staff/processes/{p['id']}/publish", headers=h)
    assert again.status_code == 409

    doc = await ok(await client.get("/openapi.json"))
    assert "/api/content/public/{tenant}/processes/{slug}" in doc["paths"]
    assert "/api/content/staff/qr-codes" in doc["paths"] and "/q/{code}" in doc["paths"]
