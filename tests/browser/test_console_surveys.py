"""The console's survey pages in a real Chromium against civic in one process: sign in locally as staff, create a
survey (after a refused empty form), add a question with a display condition, publish it after the confirmation,
download its poster and decode the poster's QR code from a rendering of the PDF's page, and read the live results
after a response; on a desktop and a phone, axe-core (WCAG 2.1 A/AA) on every page state.

``CIVIC_DOCS_SCREENSHOTS=1`` renews docs/img/console-surveys.png and docs/img/survey-poster.png (a plain run
leaves the work tree alone)."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.browser.conftest import TENANT
from tests.browser.support import Civic, assert_accessible, assert_reflows, new_page
from tests.console_support import sign_in_locally_page
from tests.qr import decode_png

pytestmark = [
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils (pdftoppm) is not installed"),
]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "img"


async def checked(page: Any, state: str, phone: bool) -> None:
    await assert_accessible(page, state)
    if phone:
        await assert_reflows(page)


def poster_png(pdf: Path, out: Path, dpi: int) -> bytes:
    subprocess.run(
        ["pdftoppm", "-png", "-r", str(dpi), "-f", "1", "-l", "1", "-singlefile", str(pdf), str(out)], check=True
    )
    return out.with_suffix(".png").read_bytes()


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
async def test_create_publish_and_print_a_survey_poster(
    civic: Civic, browser: Any, phone: bool, tmp_path: Path
) -> None:
    page = await new_page(browser, phone=phone)
    await sign_in_locally_page(page, civic.base_url, TENANT, "staff")
    base = f"{civic.base_url}/verwaltung/{TENANT}/umfragen"
    await page.goto(base)
    await checked(page, "surveys list", phone)

    await page.get_by_role("link", name="Neue Umfrage").click()
    await page.wait_for_load_state()
    await checked(page, "new survey form", phone)
    await page.get_by_role("button", name="Umfrage anlegen").click()
    await page.wait_for_load_state()
    summary = page.get_by_role("alert")
    assert await summary.get_by_role("link", name="Bitte geben Sie einen Titel an.").get_attribute("href") == "#title"
    assert (await page.title()).startswith("Fehler:")
    await checked(page, "new survey form with errors", phone)

    title = f"Radwege im Kreis ({'Telefon' if phone else 'Rechner'})"
    berlin = ZoneInfo("Europe/Berlin")
    opens = (datetime.now(UTC) - timedelta(hours=1)).astimezone(berlin)
    closes = (datetime.now(UTC) + timedelta(days=21)).astimezone(berlin).replace(hour=18, minute=0)
    await page.get_by_label("Titel der Umfrage").fill(title)
    await page.get_by_label("Beginn der Umfrage").fill(opens.strftime("%Y-%m-%dT%H:%M"))
    await page.get_by_label("Ende der Umfrage").fill(closes.strftime("%Y-%m-%dT%H:%M"))
    await page.get_by_label("Text der Frage").fill("Fahren Sie Rad?")
    await page.get_by_label("Ja oder Nein", exact=True).check()
    await page.get_by_role("button", name="Umfrage anlegen").click()
    await page.wait_for_load_state()
    assert "als Entwurf angelegt" in await page.locator("main").inner_text()
    await checked(page, "survey page (draft)", phone)
    survey_url = page.url.split("?")[0]

    await page.get_by_role("link", name="Frage hinzufügen").click()
    await page.wait_for_load_state()
    await checked(page, "add question form", phone)
    await page.get_by_label("Text der Frage").fill("Wo fehlen Radwege?")
    await page.get_by_label("Freitext", exact=True).check()
    # With script only the fields of the chosen kind are shown.
    assert await page.get_by_label("Höchstzahl an Zeichen").is_visible()
    assert not await page.get_by_label("Antwortmöglichkeiten").is_visible()
    await page.get_by_label("Ja", exact=True).check()
    await page.get_by_role("button", name="Speichern").click()
    await page.wait_for_load_state()
    main = await page.locator("main").inner_text()
    assert "Wo fehlen Radwege?" in main and "Nur zeigen, wenn „Fahren Sie Rad?“ ist „Ja“" in main

    await page.get_by_role("link", name="Veröffentlichen").click()
    await page.wait_for_load_state()
    await checked(page, "publish confirmation", phone)
    await page.get_by_role("button", name="Ja, veröffentlichen").click()
    await page.wait_for_load_state()
    assert "Die Umfrage ist veröffentlicht." in await page.locator("main").inner_text()
    await checked(page, "survey page (published)", phone)
    public_link = await page.locator(".civic-console-link a").get_attribute("href")
    assert public_link and public_link.startswith("http")

    # The poster, downloaded as a person would, and its QR code read from a rendering of the printed page.
    async with page.expect_download() as info:
        await page.get_by_role("link", name="PDF, A4").click()
    download = await info.value
    pdf = tmp_path / "poster.pdf"
    await download.save_as(str(pdf))
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert decode_png(poster_png(pdf, tmp_path / "poster", 100)) == public_link

    # One response, then the live results with a chart.
    slug = public_link.rstrip("/").rsplit("/", 1)[1]
    async with httpx.AsyncClient(base_url=civic.base_url, timeout=10) as client:
        survey = (await client.get(f"/api/surveys/public/{TENANT}/{slug}")).json()
        ids = [q["id"] for s in survey["sections"] for q in s["questions"]]
        r = await client.post(
            f"/api/surveys/public/{TENANT}/{slug}/responses",
            json={"answers": {ids[0]: True, ids[1]: "An der Bundesstraße"}},
        )
        assert r.status_code == 201, r.text
    await page.goto(survey_url + "/ergebnisse")
    main = await page.locator("main").inner_text()
    assert "Eine Person hat teilgenommen." in main
    assert await page.locator("svg.survey-chart").count() == 1
    await checked(page, "live results", phone)
    await page.get_by_role("link", name="Antworten in eigenen Worten lesen").click()
    await page.wait_for_load_state()
    assert "An der Bundesstraße" in await page.locator("main").inner_text()
    await checked(page, "free texts", phone)
    await page.get_by_role("link", name="Entfernen").click()
    await page.wait_for_load_state()
    assert "An der Bundesstraße" in await page.locator("blockquote").inner_text()
    await checked(page, "remove a free text", phone)

    if not phone and os.environ.get("CIVIC_DOCS_SCREENSHOTS"):
        DOCS.mkdir(exist_ok=True)
        await page.goto(survey_url)
        await page.screenshot(path=str(DOCS / "console-surveys.png"), full_page=True)
        (DOCS / "survey-poster.png").write_bytes(poster_png(pdf, tmp_path / "doc-poster", 60))
    await page.context.close()
