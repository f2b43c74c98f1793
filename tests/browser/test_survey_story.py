"""The survey story in a real Chromium: decode the survey's poster QR code from its PNG, open it, answer every
step (meeting the error states), leave and come back through the resume link, submit twice, see the thank-you
page; with JavaScript and without, at desktop and phone size; axe (WCAG 2.1 A/AA) finds nothing on any page
state. Then the other states a person meets: not yet open, letter code refused, unknown resume code, closed,
public results."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.http.auth import mint_token
from shared.settings import Settings
from tests.browser.support import assert_accessible, assert_reflows, new_page
from tests.browser.survey_support import DEMO_SURVEY, Running, running_with_demo
from tests.qr import decode_png

TENANT = "kreis-dithmarschen"
SLUG = DEMO_SURVEY.rsplit("/", 1)[1]


@pytest.fixture(scope="module")
async def demo(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    """civic with its demo; asks for the browser first, so a machine without one skips before starting it."""
    async with running_with_demo(tmp_path_factory.mktemp("survey-pages")) as running:
        yield running


async def navigate(page: Any, selector: str) -> None:
    """Click what leads to another page and wait until that page is there (a POST answered by 303 and GET)."""
    async with page.expect_navigation():
        await page.click(selector)


def staff() -> dict[str, str]:
    # The process runs with the development JWT secret, as this test's Settings do.
    token = mint_token(tenant=TENANT, roles=["staff"], subject="test", settings=Settings())
    return {"Authorization": f"Bearer {token}"}


async def responses_of(civic: Running, slug: str) -> int:
    async with httpx.AsyncClient(base_url=civic.base_url, headers=staff()) as client:
        surveys = (await client.get("/api/surveys/surveys")).raise_for_status().json()
        sid = next(s["id"] for s in surveys if s["slug"] == slug)
        results = (await client.get(f"/api/surveys/surveys/{sid}/results")).raise_for_status().json()
        return int(results["responses"])


async def poster_qr_target(civic: Running) -> str:
    """What the county's poster QR code says: decoded from the PNG that is printed (the short link)."""
    async with httpx.AsyncClient(base_url=civic.base_url, headers=staff()) as client:
        png = await client.get("/api/content/staff/qr-codes/didi-umfrage/image.png", params={"size": "m"})
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        return decode_png(png.content)


STORIES = {
    "desktop, JavaScript": {"js": True, "phone": False},
    "desktop, no JavaScript": {"js": False, "phone": False},
    "phone, JavaScript": {"js": True, "phone": True},
    "phone, no JavaScript": {"js": False, "phone": True},
}


@pytest.mark.parametrize("story", list(STORIES))
async def test_the_poster_to_thank_you_story(demo: Running, browser: Any, story: str) -> None:
    civic = demo
    options = STORIES[story]
    page = await new_page(browser, javascript=options["js"], phone=options["phone"])
    before = await responses_of(civic, SLUG)

    # The poster: its QR code leads to the survey's page.
    target = await poster_qr_target(civic)
    assert target == f"{civic.base_url}/q/didi-umfrage"
    await page.goto(target)
    assert page.url == f"{civic.base_url}{DEMO_SURVEY}"
    assert await page.title() == "Digitale Angebote im Kreis Dithmarschen \u2013 Kreis Dithmarschen"
    assert await page.locator("text=Dauert etwa 10 Minuten.").count() == 1
    assert await page.locator("h2", has_text="Was anonym hier bedeutet").count() == 1
    await assert_accessible(page, "landing")
    await assert_reflows(page)
    await navigate(page, "text=Umfrage beginnen")

    # Step 1: moving on without the required answer shows the error summary, linked to the question.
    assert (await page.title()).startswith("Schritt 1 von 4: Was Sie heute nutzen")
    assert await page.locator("progress[max='4'][value='1']").count() == 1
    await assert_accessible(page, "step 1")
    await navigate(page, "button[value=weiter]")
    assert (await page.title()).startswith("Fehler: Schritt 1 von 4")
    summary = page.locator("#fehler a")
    assert await summary.count() == 1
    assert "Bitte wählen Sie eine Antwort aus." in await summary.inner_text()
    await assert_accessible(page, "step 1 with errors")
    await summary.click()
    assert page.url.endswith("#q-online")
    which = page.locator("#q-welche")
    # Without script the conditional question stands on the page with its condition; with script it
    # appears once "Ja" is chosen.
    assert await which.is_visible() is (not options["js"])
    await page.check("#q-online")
    assert await which.is_visible()
    await page.check("#q-welche")
    await page.check("#q-geraet")
    await page.check("#q-zufrieden-4")
    await navigate(page, "button[value=weiter]")

    # Step 2: a ranking (a place each) and a matrix; then leave, saving.
    assert (await page.title()).startswith("Schritt 2 von 4: Was besser werden soll")
    for option, place in (("verwaltung", "1"), ("gesundheit", "1"), ("kultur", "3"), ("mobilitaet", "4")):
        await page.select_option(f"#q-bereiche-{option}", place)
    await navigate(page, "button[value=weiter]")
    assert "Bitte vergeben Sie jeden Platz genau einmal." in await page.locator("#fehler").inner_text()
    await assert_accessible(page, "step 2 with errors")
    await page.select_option("#q-bereiche-gesundheit", "2")
    await page.check("#q-bewertung-finden-4")
    await page.check("#q-bewertung-verstehen-3")
    await navigate(page, "button[value=spaeter]")
    assert (
        await page.title()
        == "Ihre Antworten sind gespeichert \u2013 Digitale Angebote im Kreis Dithmarschen \u2013 Kreis Dithmarschen"
    )
    code = await page.locator("#fortsetzungscode").inner_text()
    link = await page.locator("#fortsetzungslink").get_attribute("href")
    assert re.fullmatch(r"[A-Z0-9]{4}(-[A-Z0-9]{4}){3}", code) and link and link.endswith(code)
    await assert_accessible(page, "saved")

    # Leave: the browser is closed; later, on another page, the resume link continues with step 3.
    await page.context.close()
    page = await new_page(browser, javascript=options["js"], phone=options["phone"])
    await page.goto(link)
    assert (await page.title()).startswith("Schritt 3 von 4: Zum Schluss")
    await navigate(page, "a.civic-back")
    assert (await page.title()).startswith("Schritt 2 von 4")
    assert await page.input_value("#q-bereiche-gesundheit") == "2"
    assert await page.is_checked("#q-bewertung-finden-4")
    await navigate(page, "button[value=weiter]")
    await page.fill("#q-besuche", "viele")
    await page.fill("#q-idee", "Termine im Kreishaus online buchen")
    await navigate(page, "button[value=weiter]")
    assert "Bitte geben Sie eine ganze Zahl ein" in await page.locator("#fehler").inner_text()
    assert await page.input_value("#q-idee") == "Termine im Kreishaus online buchen"
    await assert_accessible(page, "step 3 with errors")
    await page.fill("#q-besuche", "3")
    await navigate(page, "button[value=weiter]")

    # Review, then the form sent twice (a double click, then a retry of the same form).
    assert (await page.title()).startswith("Schritt 4 von 4: Ihre Antworten prüfen")
    assert await page.locator("dd", has_text="Kfz-Zulassung").count() == 1
    assert await page.locator("dd", has_text="Termine im Kreishaus online buchen").count() == 1
    await assert_accessible(page, "review")
    form = page.locator("form[action$='/pruefen']")
    fields = {
        name: await form.locator(f"input[name={name}]").get_attribute("value") for name in ("csrf", "einreichung")
    }
    action = await form.get_attribute("action")
    await page.dblclick("text=Antworten absenden")
    await page.wait_for_url(re.compile(r".*/danke$"))
    assert (
        await page.title()
        == "Vielen Dank für Ihre Teilnahme \u2013 Digitale Angebote im Kreis Dithmarschen \u2013 Kreis Dithmarschen"
    )
    await assert_accessible(page, "thank-you")
    retry = await page.request.post(f"{civic.base_url}{action}", form=fields, max_redirects=0)
    assert retry.status == 303 and retry.headers["location"].endswith("/danke")
    assert await responses_of(civic, SLUG) == before + 1
    # The resume link has done its work.
    await page.goto(link)
    assert await page.locator("#fortsetzungscode-fehler").count() == 1
    await page.context.close()


async def _survey(civic: Running, **body: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    survey = {
        "title": "Radwege im Kreis",
        "opens_at": (now - timedelta(minutes=1)).isoformat(),
        "closes_at": (now + timedelta(days=3)).isoformat(),
        "estimated_minutes": 2,
        "results_public": True,
        "sections": [
            {
                "title": "Radwege",
                "questions": [
                    {"id": "rad", "kind": "yes_no", "text": "Fahren Sie Rad?", "required": True},
                    {
                        "id": "wo",
                        "kind": "single_choice",
                        "text": "Wo fehlen Radwege am meisten?",
                        "options": [{"id": "land", "label": "Auf dem Land"}, {"id": "stadt", "label": "In der Stadt"}],
                    },
                    {"id": "wunsch", "kind": "free_text", "text": "Ihr Wunsch"},
                ],
            }
        ],
        **body,
    }
    async with httpx.AsyncClient(base_url=civic.base_url, headers=staff()) as client:
        created = (await client.post("/api/surveys/surveys", json=survey)).raise_for_status().json()
        if survey.get("access") == "token":
            r = await client.post(f"/api/surveys/surveys/{created['id']}/tokens", json={"count": 1})
            created["codes"] = r.raise_for_status().json()["codes"]
        (await client.post(f"/api/surveys/surveys/{created['id']}/publish")).raise_for_status()
    return dict(created)


async def test_every_other_state_is_a_page_without_accessibility_faults(demo: Running, browser: Any) -> None:
    civic = demo
    page = await new_page(browser, javascript=False)
    now = datetime.now(UTC)

    later = await _survey(civic, slug="radwege-spaeter", opens_at=(now + timedelta(days=2)).isoformat())
    await page.goto(f"{civic.base_url}/umfrage/{TENANT}/{later['slug']}")
    assert (await page.title()).startswith("Die Umfrage hat noch nicht begonnen")
    await assert_accessible(page, "not yet open")

    letter = await _survey(civic, slug="radwege-brief", access="token")
    await page.goto(f"{civic.base_url}/umfrage/{TENANT}/{letter['slug']}")
    await page.fill("#zugangscode", "AAAA-BBBB-CCCC")
    await navigate(page, "text=Umfrage beginnen")
    assert (await page.title()).startswith("Fehler: Radwege im Kreis")
    assert await page.get_attribute("#zugangscode", "aria-invalid") == "true"
    await assert_accessible(page, "access code refused")
    await page.fill("#zugangscode", letter["codes"][0].lower())
    await navigate(page, "text=Umfrage beginnen")
    assert (await page.title()).startswith("Schritt 1 von 2: Radwege")

    await page.goto(f"{civic.base_url}/umfrage/{TENANT}/{letter['slug']}/fortsetzen")
    await assert_accessible(page, "resume")
    await page.fill("#fortsetzungscode", "AAAA-BBBB-CCCC-DDDD")
    await navigate(page, "button:has-text('Weiter')")
    assert "keine gespeicherten Antworten" in await page.locator("#fehler").inner_text()
    await assert_accessible(page, "resume code unknown")

    soon = await _survey(civic, slug="radwege-kurz", closes_at=(datetime.now(UTC) + timedelta(seconds=20)).isoformat())
    async with httpx.AsyncClient(base_url=civic.base_url) as client:
        for answers in ({"rad": True, "wo": "land", "wunsch": "Ein Radweg nach Heide"}, {"rad": False}):
            r = await client.post(f"/api/surveys/public/{TENANT}/{soon['slug']}/responses", json={"answers": answers})
            assert r.status_code == 201, r.text
    await page.goto(f"{civic.base_url}/umfrage/{TENANT}/{soon['slug']}/ergebnisse")
    assert (await page.title()).startswith("Die Ergebnisse gibt es nach dem Ende der Umfrage")
    await assert_accessible(page, "results before closing")
    closes = datetime.fromisoformat(soon["closes_at"])
    await asyncio.sleep(max(0.0, (closes - datetime.now(UTC)).total_seconds()) + 1.0)
    await page.goto(f"{civic.base_url}/umfrage/{TENANT}/{soon['slug']}")
    assert (await page.title()).startswith("Die Umfrage ist beendet")
    await assert_accessible(page, "closed")
    await navigate(page, "text=Ergebnisse ansehen")
    assert (await page.title()).startswith("Ergebnisse: Radwege im Kreis")
    assert await page.locator("svg.survey-chart").count() == 2
    assert await page.locator("th[scope=row]", has_text="Auf dem Land").count() == 1
    assert await page.locator("li", has_text="Ein Radweg nach Heide").count() == 1
    await assert_accessible(page, "results")

    await page.goto(f"{civic.base_url}/umfrage/{TENANT}/gibt-es-nicht")
    assert (await page.title()).startswith("Diese Umfrage gibt es nicht")
    await assert_accessible(page, "unknown survey")
    await page.context.close()
