"""The door check-in pages against the real services (PostgreSQL, Redis, the bus), as a browser without
JavaScript uses them: signed in with the local sign-in, the code field sent as a plain POST form with the page's
CSRF field and nonce. Every outcome the door can show, a retried POST counted once, the name search, the counts,
and who may open the door (a ``checkin`` person yes; another tenant's person and an ``editor`` not)."""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from civic.services import select
from shared.http.app import create_app
from shared.settings import Settings
from tests.console_support import sign_in_locally
from tests.support import staff_headers
from web.app import create_app as create_web
from web.settings import WebSettings

BASE = "http://civic.test"


@dataclass
class Door:
    api: httpx.AsyncClient
    web: httpx.AsyncClient
    services: Any
    web_app: Any
    tenant: str
    headers: dict[str, str]

    def browser(self) -> httpx.AsyncClient:
        """Another browser (its own cookies) on the same web app."""
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.web_app), base_url=BASE)


@pytest.fixture
async def door(settings: Settings) -> AsyncIterator[Door]:
    settings = settings.model_copy(update={"public_base_url": BASE})
    tenant = f"kreis-{secrets.token_hex(3)}"
    services = create_app(select(None), settings)
    web = create_web(
        WebSettings(api_base_url=BASE, public_base_url=BASE, tenants={tenant: {"name": "Kreis Test"}}),
        transport=httpx.ASGITransport(app=services),
    )
    async with services.router.lifespan_context(services):
        api = httpx.AsyncClient(transport=httpx.ASGITransport(app=services), base_url=BASE)
        pages = httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url=BASE)
        async with api, pages:
            yield Door(api, pages, services, web, tenant, staff_headers(tenant, settings=settings))
        await web.state.api.close()


async def meeting_today(door: Door, title: str, capacity: int = 10) -> str:
    """A published meeting running now (so its tickets are valid today), open for registration until its end."""
    now = datetime.now(UTC).replace(microsecond=0)
    r = await door.api.post(
        "/api/registration/staff/meetings",
        headers=door.headers,
        json={
            "title": title,
            "venue": {"name": "Bürgerhaus"},
            "starts_at": (now - timedelta(hours=1)).isoformat(),
            "ends_at": (now + timedelta(hours=3)).isoformat(),
            "registration_closes_at": (now + timedelta(hours=3)).isoformat(),
            "capacity": capacity,
            "max_companions": 2,
        },
    )
    assert r.status_code == 201, r.text
    meeting_id = str(r.json()["id"])
    (
        await door.api.post(f"/api/registration/staff/meetings/{meeting_id}/publish", headers=door.headers)
    ).raise_for_status()
    return meeting_id


async def register(door: Door, meeting_id: str, name: str, companions: int = 0) -> dict[str, Any]:
    r = await door.api.post(
        f"/api/registration/meetings/{meeting_id}/registrations",
        json={
            "name": name,
            "email": f"{secrets.token_hex(4)}@example.org",
            "privacy_consent": True,
            "companions": companions,
        },
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    assert body["status"] == "confirmed" and body["ticket_code"]
    return body


def hidden_fields(page: str, form_id: str = "door-form") -> dict[str, str]:
    start = page.index(f'id="{form_id}"')
    form = page[start : page.index("</form>", start)]
    return {k: html.unescape(v) for k, v in re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form)}


async def door_page(client: httpx.AsyncClient, path: str, status: int = 200) -> str:
    r = await client.get(path)
    assert r.status_code == status, (path, r.status_code, r.text[:1500])
    assert r.headers["content-type"].startswith("text/html")
    assert "<script>" not in r.text and 'style="' not in r.text, "no inline script or style"
    return r.text


def result_of(page: str) -> str:
    """The outcome the door shows, and its words (without markup)."""
    found = re.search(r'data-outcome="(\w+)">(.*?)</div>', page, re.S)
    assert found, page[:3000]
    words = " ".join(re.sub(r"<[^>]+>", " ", html.unescape(found.group(2))).split())
    return f"{found.group(1)}: {words}"


async def scan(client: httpx.AsyncClient, path: str, code: str, *, fields: dict[str, str] | None = None) -> str:
    """The code typed into the door page's field and sent (Enter), as a browser without JavaScript does."""
    sent = fields or hidden_fields(await door_page(client, path))
    r = await client.post(path, data={**sent, "code": code})
    assert r.status_code == 200, (r.status_code, r.text[:2000])
    assert r.headers["content-type"].startswith("text/html")
    return r.text


def figures(page: str) -> dict[str, int]:
    return {k: int(v.replace(".", "")) for k, v in re.findall(r'data-figure="(\w+)">([\d.]+)<', page)}


async def test_door_outcomes_by_typed_code(door: Door) -> None:
    meeting_id = await meeting_today(door, "Bürgerversammlung Nord")
    other_id = await meeting_today(door, "Workshop Süd")
    kim = await register(door, meeting_id, "Kim Beispiel", companions=1)
    alex = await register(door, meeting_id, "Alex Muster")
    gone = await register(door, meeting_id, "Sam Abgesagt")
    (await door.api.delete(f"/api/registration/registrations/{gone['secret']}")).raise_for_status()
    elsewhere = await register(door, other_id, "Robin Anderswo")

    await sign_in_locally(door.web, door.tenant, "checkin", name="Einlass Nord")
    chooser = await door.web.get(f"/verwaltung/{door.tenant}/einlass")
    assert "wasm-unsafe-eval" not in chooser.headers["content-security-policy"], "strict everywhere but the door"
    assert "camera=()" in chooser.headers["permissions-policy"]
    choose = await door_page(door.web, f"/verwaltung/{door.tenant}/einlass")
    path = f"/verwaltung/{door.tenant}/einlass/{meeting_id}"
    assert f'href="{path}"' in choose and "Bürgerversammlung Nord" in choose and "Workshop Süd" in choose

    empty = await door.web.get(path)
    page = empty.text
    assert empty.status_code == 200
    assert 'id="code" name="code" type="text"' in page and "autofocus" in page
    assert "'wasm-unsafe-eval'" in empty.headers["content-security-policy"]
    assert "camera=(self)" in empty.headers["permissions-policy"]
    assert figures(page) == {
        "checked_in_seats": 0,
        "checked_in": 0,
        "confirmed_seats": 3,
        "confirmed": 2,
        "expected": 2,
    }

    english = await door_page(door.web, f"{path}?lang=en")
    assert "Check and admit" in english and "Ticket code" in english and "Still expected" in english

    # Admitted: the name and companions the service gives, in words and with a mark (not colour alone).
    admitted = await scan(door.web, path, kim["ticket_code"])
    assert result_of(admitted).startswith("admitted: ✓ Eingelassen Kim Beispiel (mit 1 Begleitperson) Eingelassen um")
    assert "civic-door-result--good" in admitted
    assert figures(admitted)["checked_in"] == 1 and figures(admitted)["checked_in_seats"] == 2

    # The same code again, in a new form: already checked in, with the time of the first scan.
    first_time = re.search(r"Eingelassen um (\d\d:\d\d) Uhr", admitted).group(1)
    again = await scan(door.web, path, kim["ticket_code"])
    assert result_of(again).startswith(f"already: ! Bereits eingelassen um {first_time} Uhr Kim Beispiel")
    assert f"Dieses Ticket wurde bereits um {first_time} Uhr eingelassen." in again
    assert "civic-door-result--warn" in again

    # A retried POST (same form, same nonce: a reload, a double Enter) counts once and says so.
    fields = hidden_fields(await door_page(door.web, path))
    once = await scan(door.web, path, alex["ticket_code"], fields=fields)
    retried = await scan(door.web, path, alex["ticket_code"], fields=fields)
    assert result_of(once).startswith("admitted: ✓ Eingelassen Alex Muster")
    assert result_of(retried).startswith("admitted: ✓ Eingelassen")
    assert "wurde nicht noch einmal gezählt" in retried
    stats = (await door.api.get(f"/api/registration/staff/meetings/{meeting_id}/stats", headers=door.headers)).json()
    assert stats["checked_in"] == 2 and stats["checked_in_seats"] == 3
    assert figures(retried)["checked_in"] == 2 and figures(retried)["expected"] == 0

    cancelled = await scan(door.web, path, gone["ticket_code"])
    assert (
        result_of(cancelled)
        == "cancelled: ✗ Abgesagt Sam Abgesagt Diese Anmeldung wurde abgesagt. Bitte nicht einlassen."
    ), "the service names whom it refuses"
    assert "civic-door-result--bad" in cancelled

    other = await scan(door.web, path, elsewhere["ticket_code"])
    assert result_of(other).startswith("other_meeting: ✗ Andere Veranstaltung Dieses Ticket gilt für: Workshop Süd,")

    unknown = await scan(door.web, path, "KEIN-TICKET-123")
    assert result_of(unknown).startswith("unknown: ✗ Unbekannter Code Dieser Code ist kein gültiges Ticket")
    assert "KEIN-TICKET-123" in unknown
    too_long = await scan(door.web, path, "A" * 450)
    assert result_of(too_long).startswith("unknown: ✗ Unbekannter Code")

    # A scanner that types spaces or lower case still reads as the same ticket.
    spaced = await scan(
        door.web, path, " " + " ".join(elsewhere["ticket_code"].lower()[i : i + 8] for i in range(0, 160, 8))
    )
    assert result_of(spaced).startswith("other_meeting:")

    # Nothing entered: an error at the field, nothing sent.
    fields = hidden_fields(await door_page(door.web, path))
    missing = await door.web.post(path, data={**fields, "code": "  "})
    assert missing.status_code == 422
    assert "<title>Fehler:" in missing.text and 'href="#code"' in missing.text and 'aria-invalid="true"' in missing.text

    # Without the CSRF field: refused, nothing counted.
    forged = await door.web.post(path, data={"code": alex["ticket_code"], "nonce": secrets.token_hex(8)})
    assert forged.status_code == 403

    counts = (await door.web.get(f"{path}/zahlen")).json()
    assert counts["checked_in"] == 2 and counts["confirmed"] == 2 and counts["expected"] == 0

    # The check-in person searches by name too (the service's door search shows no contact and no ticket).
    searched = await door_page(door.web, f"{path}?suche=kim")
    assert "1 Anmeldungen gefunden für „kim“." in searched and "eingelassen um" in searched
    assert "@example.org" not in searched and kim["ticket_code"] not in searched


async def test_name_search_checks_in_by_button(door: Door) -> None:
    meeting_id = await meeting_today(door, "Sprechstunde")
    await register(door, meeting_id, "Jördis Ohneticket")
    await register(door, meeting_id, "Jonas Anders")
    waiting = await register(door, meeting_id, "Jördis Zweite")
    (await door.api.delete(f"/api/registration/registrations/{waiting['secret']}")).raise_for_status()
    await sign_in_locally(door.web, door.tenant, "staff", name="Team")
    path = f"/verwaltung/{door.tenant}/einlass/{meeting_id}"

    found = await door_page(door.web, f"{path}?suche=j%C3%B6rdis")
    assert "2 Anmeldungen gefunden für „jördis“." in found
    assert "Jonas Anders" not in found
    rows = re.findall(r'<li class="civic-door-hit">(.*?)</li>', found, re.S)
    assert "Jördis Ohneticket" in rows[0] and "Einlassen" in rows[0]
    assert "Jördis Zweite" in rows[1] and "abgesagt" in rows[1] and "Einlassen" not in rows[1], "no button"
    row_form = rows[0][rows[0].index("<form") :]
    fields = {
        k: html.unescape(v) for k, v in re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', row_form)
    }
    assert set(fields) == {"csrf", "nonce", "registration_id", "suche"}
    admitted = await door.web.post(path, data=fields)
    assert result_of(admitted.text).startswith("admitted: ✓ Eingelassen Jördis Ohneticket")
    assert "2 Anmeldungen gefunden" in admitted.text, "the search stays on the page"
    # The button's form sent again (a retry): counted once; staff see the name even then.
    retried = await door.web.post(path, data=fields)
    assert result_of(retried.text).startswith("admitted: ✓ Eingelassen Jördis Ohneticket")
    assert "wurde nicht noch einmal gezählt" in retried.text
    assert figures(retried.text)["checked_in"] == 1
    # Once in, the row says so and has no button any more.
    rows = re.findall(r'<li class="civic-door-hit">(.*?)</li>', retried.text, re.S)
    assert "eingelassen um" in rows[0] and "Einlassen" not in rows[0]

    nothing = await door_page(door.web, f"{path}?suche=niemand")
    assert "Keine Anmeldung gefunden für „niemand“." in nothing


async def test_who_may_open_the_door(door: Door, settings: Settings) -> None:
    meeting_id = await meeting_today(door, "Nur für diesen Kreis")
    path = f"/verwaltung/{door.tenant}/einlass/{meeting_id}"

    anonymous = await door.web.get(path)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/verwaltung/anmelden")

    async with door.browser() as editor:
        await sign_in_locally(editor, door.tenant, "editor", name="Redaktion")
        refused = await editor.get(path)
        assert refused.status_code == 403 and "Nur für diesen Kreis" not in refused.text
        assert (await editor.get(f"/verwaltung/{door.tenant}/einlass")).status_code == 403

    other_tenant = f"stadt-{secrets.token_hex(3)}"
    async with door.browser() as stranger:
        await sign_in_locally(stranger, other_tenant, "staff", name="Andere Stadt")
        refused = await stranger.get(path)
        assert refused.status_code == 403 and "Nur für diesen Kreis" not in refused.text
        # Their own tenant's door path with this tenant's meeting: the service does not know it there.
        theirs = await stranger.get(f"/verwaltung/{other_tenant}/einlass/{meeting_id}")
        assert theirs.status_code == 404 and "Nur für diesen Kreis" not in theirs.text
