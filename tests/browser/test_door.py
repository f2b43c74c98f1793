"""The door check-in in a real Chromium against civic in one process: a ``checkin`` person signs in with the local
sign-in, chooses the meeting, checks three people in by typed code (one of them twice: shown as already checked
in), one by a camera scan, and meets every other result (cancelled, another meeting, unknown, nothing entered).

The camera is Chromium's fake capture device fed with the ticket's QR code (the PNG the manage page serves,
written as a Y4M video here). Chromium on Linux has no BarcodeDetector of its own, so the scan goes through the
ZXing WebAssembly polyfill that civic serves; the test records which detector ran. With JavaScript (results
without reloading, the queue while the network is away) and without (plain form posts), desktop and phone;
axe-core checks every page state for the WCAG 2.1 A/AA rules."""

from __future__ import annotations

import io
import os
import re
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.browser.conftest import TENANT
from tests.browser.support import (
    CHROMIUM_ARGS,
    ROOT,
    Civic,
    assert_accessible,
    assert_reflows,
    chromium_path,
    new_page,
)
from tests.console_support import sign_in_locally_page
from tests.qr import decode_png
from tests.support import staff_headers

pytestmark = pytest.mark.asyncio(loop_scope="session")

#: ``CIVIC_DOCS_SCREENSHOTS=1`` renews the screenshot in docs/console.md (a plain run leaves the work tree alone).
SCREENSHOT = ROOT / "docs" / "img" / "console-door.png"


async def meeting_with_people(civic: Civic, title: str, names: list[str]) -> tuple[str, list[dict[str, Any]]]:
    """A published meeting running now (its tickets are valid today) and a confirmed registration per name."""
    now = datetime.now(UTC).replace(microsecond=0)
    async with httpx.AsyncClient(base_url=civic.base_url, headers=staff_headers(TENANT), timeout=10) as api:
        m = (
            (
                await api.post(
                    "/api/registration/staff/meetings",
                    json={
                        "title": title,
                        "venue": {"name": "Bürgerhaus", "city": "Heide"},
                        "starts_at": (now - timedelta(minutes=30)).isoformat(),
                        "ends_at": (now + timedelta(hours=3)).isoformat(),
                        "registration_closes_at": (now + timedelta(hours=3)).isoformat(),
                        "capacity": 50,
                        "max_companions": 2,
                    },
                )
            )
            .raise_for_status()
            .json()
        )
        (await api.post(f"/api/registration/staff/meetings/{m['id']}/publish")).raise_for_status()
        people = []
        for i, name in enumerate(names):
            r = await api.post(
                f"/api/registration/meetings/{m['id']}/registrations",
                json={
                    "name": name,
                    "email": f"tuer-{secrets.token_hex(3)}@example.org",
                    "privacy_consent": True,
                    "companions": i % 2,
                },
            )
            people.append(r.raise_for_status().json())
    return str(m["id"]), people


async def cancel(civic: Civic, person: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=civic.base_url, timeout=10) as api:
        (await api.delete(f"/api/registration/registrations/{person['secret']}")).raise_for_status()


def y4m_of(png: bytes, path: Path, frames: int = 10) -> None:
    """A short YUV4MPEG2 video (4:2:0) of the QR code on white, as a camera held over a phone's screen sees it;
    Chromium's fake capture device plays it in a loop."""
    qr = Image.open(io.BytesIO(png)).convert("L")
    width, height = 640, 480
    side = 360
    frame = Image.new("RGB", (width, height), "white")
    frame.paste(
        qr.resize((side, side), Image.Resampling.NEAREST).convert("RGB"), ((width - side) // 2, (height - side) // 2)
    )
    y, cb, cr = frame.convert("YCbCr").split()
    half = (width // 2, height // 2)
    data = y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + data)


async def outcome(page: Any) -> tuple[str, str]:
    result = page.locator("#door-result .civic-door-result")
    await result.wait_for()
    return str(await result.get_attribute("data-outcome")), " ".join((await result.inner_text()).split())


async def type_code(page: Any, code: str, *, javascript: bool, expect: str) -> str:
    """Types ``code`` into the focused field and presses Enter, as a scanner does; the result shown."""
    field = page.get_by_label("Ticket-Code")
    assert await field.evaluate("el => el === document.activeElement"), "the code field has the focus"
    await field.fill(code)
    if javascript:
        before = await page.locator("#door-result").inner_html()
        await field.press("Enter")
        await page.wait_for_function(
            "before => document.getElementById('door-result').innerHTML !== before", arg=before
        )
    else:
        async with page.expect_navigation():
            await field.press("Enter")
    kind, words = await outcome(page)
    assert kind == expect, words
    return words


async def figure(page: Any, name: str) -> int:
    return int((await page.locator(f'[data-figure="{name}"]').inner_text()).replace(".", ""))


async def open_door(page: Any, civic: Civic, meeting_id: str, title: str) -> None:
    await sign_in_locally_page(page, civic.base_url, TENANT, "checkin")
    await page.goto(f"{civic.base_url}/verwaltung/{TENANT}/einlass")
    await assert_accessible(page, "choice of meeting")
    await page.get_by_role("link", name=f"Einlass öffnen: {title}").click()
    await page.wait_for_load_state()
    assert page.url.endswith(f"/verwaltung/{TENANT}/einlass/{meeting_id}")


@pytest.mark.parametrize(
    ("javascript", "phone"),
    [(True, False), (False, True), (False, False), (True, True)],
    ids=["desktop", "phone-no-js", "desktop-no-js", "phone"],
)
async def test_door_by_typed_code(civic: Civic, browser: Any, javascript: bool, phone: bool) -> None:
    title = f"Einwohnerversammlung {secrets.token_hex(2)}"
    meeting_id, people = await meeting_with_people(
        civic, title, ["Kim Beispiel", "Alex Muster", "Robin Probe", "Sam Abgesagt"]
    )
    _, elsewhere = await meeting_with_people(civic, f"Andere {title}", ["Jo Anderswo"])
    kim, alex, robin, sam = people
    await cancel(civic, sam)

    page = await new_page(browser, javascript=javascript, phone=phone)
    await open_door(page, civic, meeting_id, title)
    await assert_accessible(page, "door, empty")
    if phone:
        await assert_reflows(page)
    assert await figure(page, "checked_in") == 0 and await figure(page, "confirmed") == 3
    camera = page.get_by_role("button", name="Kamera")
    assert await camera.is_visible() is javascript, "the camera button only where script can use it"

    words = await type_code(page, kim["ticket_code"], javascript=javascript, expect="admitted")
    assert "Eingelassen" in words and "Kim Beispiel" in words
    await assert_accessible(page, "door, admitted")
    if phone:
        await assert_reflows(page)
    if javascript and not phone and os.environ.get("CIVIC_DOCS_SCREENSHOTS"):
        await page.screenshot(path=str(SCREENSHOT), full_page=False)

    words = await type_code(page, alex["ticket_code"], javascript=javascript, expect="admitted")
    assert "Alex Muster" in words and "mit 1 Begleitperson" in words
    words = await type_code(page, robin["ticket_code"], javascript=javascript, expect="admitted")
    assert "Robin Probe" in words

    words = await type_code(page, kim["ticket_code"], javascript=javascript, expect="already")
    assert re.search(r"Bereits eingelassen um \d\d:\d\d Uhr", words), words
    await assert_accessible(page, "door, already checked in")

    words = await type_code(page, sam["ticket_code"], javascript=javascript, expect="cancelled")
    assert "Abgesagt" in words and "Bitte nicht einlassen" in words
    await assert_accessible(page, "door, cancelled")

    words = await type_code(page, elsewhere[0]["ticket_code"], javascript=javascript, expect="other_meeting")
    assert f"Andere {title}" in words
    await assert_accessible(page, "door, other meeting")

    words = await type_code(page, "KEIN-TICKET", javascript=javascript, expect="unknown")
    assert "Unbekannter Code" in words and "KEIN-TICKET" in words
    await assert_accessible(page, "door, unknown code")
    if phone:
        await assert_reflows(page)

    # Nothing entered: the server's error page (with or without script), the field marked.
    await page.get_by_label("Ticket-Code").fill("")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Prüfen und einlassen").click()
    assert (await page.title()).startswith("Fehler:")
    assert await page.get_by_label("Ticket-Code").get_attribute("aria-invalid") == "true"
    await assert_accessible(page, "door, nothing entered")

    await page.goto(f"{civic.base_url}/verwaltung/{TENANT}/einlass/{meeting_id}")
    assert await figure(page, "checked_in") == 3 and await figure(page, "checked_in_seats") == 4
    assert await figure(page, "expected") == 0
    await page.context.close()


async def test_door_queues_scans_while_the_network_is_away(civic: Civic, browser: Any) -> None:
    title = f"Stadtteilforum {secrets.token_hex(2)}"
    meeting_id, people = await meeting_with_people(civic, title, ["Lea Online", "Mo Offline", "Nu Offline"])
    page = await new_page(browser, javascript=True, phone=True)
    await open_door(page, civic, meeting_id, title)
    await type_code(page, people[0]["ticket_code"], javascript=True, expect="admitted")

    await page.context.set_offline(True)
    for person in people[1:]:
        await page.get_by_label("Ticket-Code").fill(person["ticket_code"])
        await page.get_by_label("Ticket-Code").press("Enter")
    waiting = page.locator("#door-queue")
    await waiting.get_by_text("2 Scans warten auf Verbindung").wait_for()
    kind, _ = await outcome(page)
    assert kind == "queued"
    await assert_accessible(page, "door, scans waiting for the connection")
    await assert_reflows(page)

    await page.context.set_offline(False)
    await waiting.wait_for(state="hidden", timeout=20_000)
    log = page.locator("#door-log")
    assert "Mo Offline" in await log.inner_text() and "Nu Offline" in await log.inner_text()
    await assert_accessible(page, "door, queued scans sent")
    async with httpx.AsyncClient(base_url=civic.base_url, headers=staff_headers(TENANT), timeout=10) as api:
        stats = (await api.get(f"/api/registration/staff/meetings/{meeting_id}/stats")).json()
    assert stats["checked_in"] == 3, "each queued scan counted once"
    await page.context.close()


async def test_door_by_camera_scan(civic: Civic, browser: Any, tmp_path: Path) -> None:
    title = f"Planungswerkstatt {secrets.token_hex(2)}"
    meeting_id, people = await meeting_with_people(civic, title, ["Eda Kamera"])
    async with httpx.AsyncClient(base_url=civic.base_url, timeout=10) as web:
        png = (await web.get(f"/anmeldung/{people[0]['secret']}/ticket.png")).raise_for_status().content
    assert decode_png(png) == people[0]["ticket_code"], "the ticket image holds the ticket code"
    video = tmp_path / "ticket.y4m"
    y4m_of(png, video)

    path = chromium_path()
    assert path is not None
    camera_browser = await browser.browser_type.launch(
        executable_path=path,
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ],
    )
    try:
        page = await new_page(camera_browser, javascript=True)
        await page.context.grant_permissions(["camera"], origin=civic.base_url)
        await open_door(page, civic, meeting_id, title)
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        await page.get_by_role("button", name="Kamera").click()
        await page.locator("#door-result .civic-door-result").wait_for(timeout=30_000)
        kind, words = await outcome(page)
        assert kind == "admitted" and "Eda Kamera" in words, words
        detector = await page.get_by_role("button", name="Kamera").get_attribute("data-detector")
        assert detector in ("native", "zxing")
        if detector == "zxing":
            assert any(u.endswith("/static/vendor/barcode-detector/zxing_reader.wasm") for u in requests)
        assert all(u.startswith(civic.base_url) for u in requests), "no third-party requests"
        assert await page.locator("#door-camera-view").is_hidden(), "the camera stops after a code"
        await assert_accessible(page, "door, admitted by camera")
        await page.context.close()
    finally:
        await camera_browser.close()
