"""QR codes: the printed image decodes to the short link, the link redirects and counts, targets can change."""

from __future__ import annotations

from datetime import timedelta

from services.content import use_cases
from services.content.service import definition
from services.content.store import Store
from shared.http.app import create_app
from shared.settings import Settings
from tests.integration.content.helpers import clock, ok, outbox_events, staff
from tests.qr import decode_png
from tests.support import serve

SCANNED = "civic.content.qr.scanned.v1"


async def test_qr_code_round_trip(settings: Settings, prefix: str) -> None:
    c = clock()
    # No background loops: the test runs the reporting pass itself to see exactly what it emits.
    app = create_app([definition], settings, clock=c, background=False)
    async with serve(app) as client:
        ctx = app.state.civic["content"]
        h = staff(prefix, settings)
        code = await ok(
            await client.post(
                "/api/content/staff/qr-codes",
                headers=h,
                json={
                    "target_kind": "app",
                    "target_url": "https://apps.example.org/nachbarschaft",
                    "label": "Nachbarschafts-App",
                    "error_correction": "H",
                },
            ),
            201,
        )
        link = code["short_link"]
        assert link == f"{settings.public_base_url}/q/{code['code']}"

        png = await client.get(f"/api/content/staff/qr-codes/{code['code']}/image.png", headers=h, params={"size": "m"})
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert decode_png(png.content) == link
        svg = await client.get(
            f"/api/content/staff/qr-codes/{code['code']}/image.svg", headers=h, params={"size": "xl"}
        )
        assert svg.headers["content-type"].startswith("image/svg+xml") and b'width="200mm"' in svg.content
        assert (await client.get(f"/api/content/staff/qr-codes/{code['code']}/image.png")).status_code == 401

        path = f"/q/{code['code']}"
        for _ in range(3):
            r = await client.get(path, headers={"User-Agent": "Scanner/1.0", "Cookie": "a=b"})
            assert r.status_code == 302
            assert r.headers["location"] == "https://apps.example.org/nachbarschaft"
            assert r.headers["cache-control"] == "no-store" and r.headers["referrer-policy"] == "no-referrer"
            assert "set-cookie" not in r.headers
        missing = await client.get("/q/nichtda")
        # An unknown code leads to the web client's friendly page (CIVIC_LINK_SHORT_LINK_MISSING), uncounted.
        assert missing.status_code == 302
        assert missing.headers["location"] == f"{settings.public_base_url}/kurzlink/nichtda"

        scans = await ok(await client.get(f"/api/content/staff/qr-codes/{code['code']}/scans", headers=h))
        assert scans["days"] == [{"day": "2021-10-20", "scans": 3}] and scans["total"] == 3
        # Only the counter row exists: code, day, count. Nothing about who scanned.
        cols = {
            r["column_name"]
            for r in await ctx.pool.fetch(
                "select column_name from information_schema.columns"
                " where table_schema = 'content' and table_name = 'qr_scans'"
            )
        }
        assert cols == {"tenant", "code", "day", "scans", "reported_scans", "reported_at"}

        # Changed after printing: the same printed code leads to the new target.
        await ok(
            await client.patch(
                f"/api/content/staff/qr-codes/{code['code']}",
                headers=h,
                json={"target_kind": "url", "target_url": "https://example.org/umfrage"},
            )
        )
        r = await client.get(path)
        assert r.status_code == 302 and r.headers["location"] == "https://example.org/umfrage"

        # Aggregated on the bus: one event with the running count, then at most one a minute.
        async with ctx.pool.acquire() as conn, conn.transaction():
            assert await use_cases.report_scans(ctx.uows(Store).joined(conn), c.now()) == 1
        async with ctx.pool.acquire() as conn, conn.transaction():
            assert await use_cases.report_scans(ctx.uows(Store).joined(conn), c.now()) == 0  # nothing new
        events = await outbox_events(ctx.pool, prefix, SCANNED)
        assert [e["data"]["scans"] for e in events] == [4]
        for _ in range(5):
            await client.get(path)
        c.advance(timedelta(seconds=30))
        async with ctx.pool.acquire() as conn, conn.transaction():
            assert await use_cases.report_scans(ctx.uows(Store).joined(conn), c.now()) == 0
        c.advance(timedelta(seconds=30))
        async with ctx.pool.acquire() as conn, conn.transaction():
            assert await use_cases.report_scans(ctx.uows(Store).joined(conn), c.now()) == 1
        events = await outbox_events(ctx.pool, prefix, SCANNED)
        assert [e["data"]["scans"] for e in events] == [4, 9]
        assert events[-1]["data"] == {"code": code["code"], "target_kind": "url", "day": "2021-10-20", "scans": 9}

        # Another tenant's staff cannot see or retarget the code.
        other = staff(f"{prefix}-x", settings)
        assert (await client.get(f"/api/content/staff/qr-codes/{code['code']}/scans", headers=other)).status_code == 404
        r = await client.patch(
            f"/api/content/staff/qr-codes/{code['code']}", headers=other, json={"target_url": "https://evil.example"}
        )
        assert r.status_code == 404
        listed = await ok(await client.get("/api/content/staff/qr-codes", headers=h))
        assert [(i["code"], i["scans"]) for i in listed["items"]] == [(code["code"], 9)]
