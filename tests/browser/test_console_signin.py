"""Signing in to the staff console in a real Chromium: through a real OpenID provider on loopback
(oidc-provider-mock on a thread of this process) against civic in one process, the overview on a desktop and a
phone, another tenant refused, signing out at the provider; then the local sign-in without JavaScript (its
error state, a check-in person's overview, the choice of tenant). axe-core checks every console page state."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.browser.conftest import TENANT, TENANTS
from tests.browser.support import Civic, assert_accessible, assert_reflows, new_page, running_civic
from tests.console_support import Provider, running_provider, sign_in_locally_page
from tests.support import staff_headers

pytestmark = [
    pytest.mark.asyncio(loop_scope="session"),
    # The provider's own use of Authlib is from an older release; its warnings are not this code's.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:authlib.oidc.core.grants._legacy"),
]


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    # Any client may ask (civic's port, hence its redirect URI, is chosen when it starts); a nonce is required.
    # The integration tests (tests/integration/console) use registered clients.
    with running_provider(registered_clients=False) as p:
        yield p


@pytest.fixture(scope="module")
async def console_civic(tmp_path_factory: pytest.TempPathFactory, provider: Provider) -> AsyncIterator[Civic]:
    env = {
        "CIVIC_WEB_TENANTS": TENANTS,
        "CIVIC_WEB_OIDC_ISSUER": provider.issuer,
        "CIVIC_WEB_OIDC_CLIENT_ID": "civic-console",
        "CIVIC_WEB_OIDC_CLIENT_SECRET": secrets.token_urlsafe(16),
    }
    async with running_civic(tmp_path_factory.mktemp("console"), env) as c:
        yield c


async def a_meeting(civic: Civic, title: str) -> None:
    starts = (datetime.now(UTC) + timedelta(days=6)).replace(hour=16, minute=0, second=0, microsecond=0)
    async with httpx.AsyncClient(base_url=civic.base_url, headers=staff_headers(TENANT), timeout=10) as api:
        m = await api.post(
            "/api/registration/staff/meetings",
            json={
                "title": title,
                "venue": {"name": "Kreishaus", "city": "Heide"},
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=2)).isoformat(),
                "capacity": 40,
                "waitlist": True,
            },
        )
        m.raise_for_status()
        (await api.post(f"/api/registration/staff/meetings/{m.json()['id']}/publish")).raise_for_status()


async def test_sign_in_through_the_provider(console_civic: Civic, browser: Any, provider: Provider) -> None:
    civic = console_civic
    title = f"Bürgerforum {secrets.token_hex(2)}"
    await a_meeting(civic, title)
    sub = f"kim-{secrets.token_hex(3)}"
    provider.set_person(sub, name="Kim Sachbearbeiterin", tenant=TENANT, roles=["staff"])

    page = await new_page(browser)
    await page.goto(f"{civic.base_url}/verwaltung/{TENANT}/")
    assert page.url.startswith(provider.issuer + "/oauth2/authorize")
    await page.locator('input[name="sub"]').fill(sub)
    await page.get_by_role("button", name="Authorize").click()
    await page.wait_for_url(f"{civic.base_url}/verwaltung/{TENANT}/")
    assert await page.get_by_role("heading", name=re.compile("^Übersicht")).count() == 1
    assert "Kim Sachbearbeiterin" in await page.locator("header").inner_text()
    assert await page.get_by_role("link", name=title).count() == 1
    nav = page.get_by_role("navigation", name="Bereiche der Verwaltung")
    assert await nav.get_by_role("link", name="Übersicht").get_attribute("aria-current") == "page"
    assert await nav.get_by_role("link", name="Einlass").count() == 1
    await assert_accessible(page, "console overview (staff)")

    # The session is a cookie the page's script cannot read.
    cookies = {c["name"]: c for c in await page.context.cookies()}
    assert cookies["civic_console"]["httpOnly"] and cookies["civic_console"]["sameSite"] == "Lax"
    assert "civic_console" not in await page.evaluate("document.cookie")

    # Another tenant's console: refused, naming nothing of it.
    await page.goto(f"{civic.base_url}/verwaltung/stadt-anderswo/")
    assert await page.get_by_role("heading", name="Kein Zugriff").count() == 1
    assert "anderswo" not in (await page.content()).lower()
    await assert_accessible(page, "console: no access")

    # On a phone the overview reflows.
    await page.set_viewport_size({"width": 360, "height": 740})
    await page.goto(f"{civic.base_url}/verwaltung/{TENANT}/")
    await assert_reflows(page)
    await assert_accessible(page, "console overview on a phone")
    await page.set_viewport_size({"width": 1100, "height": 900})

    # Signing out ends the session here and at the provider, and comes back to the console's page.
    await page.get_by_role("button", name="Abmelden").click()
    await page.wait_for_url(re.compile(re.escape(provider.issuer) + "/oauth2/end_session.*"))
    await page.get_by_role("button", name="End session").click()
    await page.wait_for_url(re.compile(re.escape(civic.base_url) + "/verwaltung/abgemeldet.*"))
    assert await page.get_by_role("heading", name="Sie sind abgemeldet").count() == 1
    await assert_accessible(page, "console: signed out")
    await page.goto(f"{civic.base_url}/verwaltung/{TENANT}/")
    assert page.url.startswith(provider.issuer)  # asked to sign in again
    await page.context.close()


async def test_local_sign_in_without_javascript(console_civic: Civic, browser: Any) -> None:
    civic = console_civic
    page = await new_page(browser, javascript=False)
    await page.goto(f"{civic.base_url}/verwaltung/anmelden/lokal")
    await assert_accessible(page, "local sign-in")
    await page.get_by_role("button", name="Anmelden").click()
    await page.wait_for_load_state()
    assert (await page.title()).startswith("Fehler:")
    summary = page.get_by_role("alert")
    assert await summary.get_by_role("link", name="Bitte geben Sie Ihren Namen ein.").get_attribute("href") == "#name"
    await assert_accessible(page, "local sign-in with errors")

    await sign_in_locally_page(page, civic.base_url, TENANT, "checkin", name="Tür Eins")
    assert page.url == f"{civic.base_url}/verwaltung/{TENANT}/"
    nav = page.get_by_role("navigation", name="Bereiche der Verwaltung")
    assert await nav.get_by_role("link").all_inner_texts() == ["Übersicht", "Einlass"]
    assert await page.get_by_role("link", name="Zum Einlass").count() == 1
    assert await page.get_by_role("heading", name="Nächste Veranstaltungen").count() == 0
    await assert_accessible(page, "console overview (check-in)")
    await page.context.close()

    page = await new_page(browser, javascript=False, phone=True)
    await sign_in_locally_page(page, civic.base_url, [TENANT, "stadt-beispiel"], "staff,editor", name="Kreis hilft")
    assert page.url == f"{civic.base_url}/verwaltung/mandant"
    await assert_accessible(page, "choice of tenant")
    await assert_reflows(page)
    await page.get_by_role("button", name="Stadt Beispiel").click()
    await page.wait_for_url(f"{civic.base_url}/verwaltung/stadt-beispiel/")
    assert await page.get_by_role("link", name="Mandant wechseln").count() == 1
    await assert_accessible(page, "console overview of the second tenant")
    await page.context.close()
