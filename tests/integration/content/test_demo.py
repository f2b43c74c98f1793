"""The demo loads both tenants through the service's own functions, and loading twice duplicates nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from civic.demo import KICKOFF_MEETING_ID, SURVEY_ID, load_content_demo
from services.content.service import definition
from shared.clock import FrozenClock
from shared.http.app import create_app
from shared.settings import Settings
from tests.integration.content.helpers import ok
from tests.support import serve

TABLES = ("processes", "phases", "steps", "contacts", "articles", "refs", "qr_codes")


async def _counts(pool) -> dict[str, int]:  # type: ignore[no-untyped-def]
    tenants = ["stadt-detmold", "kreis-dithmarschen"]
    return {t: await pool.fetchval(f"select count(*) from {t} where tenant = any($1)", tenants) for t in TABLES}


async def test_demo_loads_once_and_serves(settings: Settings) -> None:
    c = FrozenClock(datetime(2021, 10, 20, 12, tzinfo=UTC))
    app = create_app([definition], settings, clock=c, background=False)
    async with serve(app) as client:
        pool = app.state.civic["content"].pool
        first = await load_content_demo(pool, settings=settings, clock=c)
        counts = await _counts(pool)
        again = await load_content_demo(pool, settings=settings, clock=c)
        assert await _counts(pool) == counts
        assert first["stadt-detmold"]["created"] and not again["stadt-detmold"]["created"]
        assert counts["processes"] == 2 and counts["qr_codes"] == 3

        detmold = await ok(await client.get("/api/content/public/stadt-detmold/processes/smart-city"))
        assert detmold["motto"].startswith("Die co-kreative Stadt")
        assert detmold["funding"][0]["amount"] == 5_600_000
        assert detmold["current_phase"]["title"] == "Strategiephase"
        assert [s["number"] for s in detmold["steps"]][:3] == ["1.1", "1.2", "1.3"]
        assert sum(1 for s in detmold["steps"] if s["kind"] == "quick_project") == 5
        assert detmold["news"]["items"][0]["title"] == "1. Platz als Bestes Kooperationsprojekt"
        assert detmold["contacts"][0]["email"].endswith("[at] example [dot] org")
        r = await client.get("/q/detmold-app")
        # Poster codes lead to the web client's pages, which a phone can open.
        base = settings.public_base_url.rstrip("/")
        assert r.status_code == 302 and r.headers["location"] == f"{base}/stadt-detmold/seiten/nachbarschafts-app"
        r = await client.get("/q/didi-umfrage")
        assert r.headers["location"] == f"{base}/umfrage/kreis-dithmarschen/dithmarschen-digital"
        r = await client.get("/q/didi-auftakt")
        assert r.headers["location"] == f"{base}/kreis-dithmarschen/termine/{KICKOFF_MEETING_ID}"

        county = await ok(await client.get("/api/content/public/kreis-dithmarschen/processes/dithmarschen-digital"))
        assert county["funding"][0]["amount"] == 100_000
        # Dated around the day it is loaded: the kick-off phase is current.
        assert county["current_phase"]["title"] == "Auftakt und Online-Umfrage"
        assert county["meetings"][0]["meeting_id"] == str(KICKOFF_MEETING_ID)
        assert county["surveys"][0]["survey_id"] == str(SURVEY_ID)
        assert all(ct["email"] and "example" in ct["email"] for ct in county["contacts"])
        published = await pool.fetchval(
            "select count(*) from outbox where type = 'civic.content.content.published.v1' and tenant = any($1)",
            ["stadt-detmold", "kreis-dithmarschen"],
        )
        assert published == 5  # two processes, one news item, two pages: once, not twice
