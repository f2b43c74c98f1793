"""The console's meeting pages against the real services (PostgreSQL, Redis, the bus), signed in with the local
sign-in as staff: create a meeting through the pages, edit it section by section, publish, take a phone
registration without e-mail, fill the meeting, cancel an online registration so the waiting phone registrant
moves up, search, download CSV and XLSX, see the attendance figures, cancel the meeting; and a ``checkin``
person is refused every one of these pages."""

from __future__ import annotations

import csv
import html
import io
import re
import secrets
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from civic.services import select
from shared.clock import FileClock
from shared.http.app import create_app
from shared.settings import Settings
from tests.console_support import sign_in_locally
from tests.support import staff_headers
from web.app import create_app as create_web
from web.settings import WebSettings

BASE = "http://civic.test"
BERLIN = ZoneInfo("Europe/Berlin")


class Console:
    def __init__(self, api: httpx.AsyncClient, web: httpx.AsyncClient, tenant: str, clock: Path) -> None:
        self.api, self.web, self.tenant, self.clock = api, web, tenant, clock
        self.base = f"/verwaltung/{tenant}/veranstaltungen"

    def move_clock(self, to: datetime) -> None:
        """Services and web app both read this file: time jumps there and runs on."""
        self.clock.write_text(to.isoformat())

    async def page(self, path: str, status: int = 200) -> str:
        r = await self.web.get(path)
        assert r.status_code == status, (path, r.status_code, r.text[:1500])
        assert r.headers["content-type"].startswith("text/html")
        assert "<script" not in r.text and 'style="' not in r.text, "no inline script or style"
        return r.text

    async def send(
        self, path: str, fields: dict[str, Any], status: int = 303, action: str | None = None
    ) -> httpx.Response:
        """The form on ``path`` whose action is ``action`` (default: ``path``), sent with its hidden fields."""
        text = await self.page(path)
        action = action or path
        forms = re.findall(r'<form[^>]* method="post" action="([^"]+)"[^>]*>(.*?)</form>', text, re.S)
        body = next((b for a, b in forms if html.unescape(a) == action), None)
        assert body is not None, (action, [a for a, _ in forms])
        hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', body))
        r = await self.web.post(action, data={**{k: html.unescape(v) for k, v in hidden.items()}, **fields})
        assert r.status_code == status, (action, r.status_code, r.text[:2000])
        return r


@pytest.fixture
async def console(settings: Settings, tmp_path: Path) -> AsyncIterator[Console]:
    clock = tmp_path / "clock"
    settings = settings.model_copy(update={"public_base_url": BASE, "clock_file": str(clock)})
    tenant = f"kreis-{secrets.token_hex(3)}"
    services = create_app(select(None), settings, clock=FileClock(str(clock)))
    web = create_web(
        WebSettings(
            api_base_url=BASE, public_base_url=BASE, tenants={tenant: {"name": "Kreis Test"}}, clock_file=str(clock)
        ),
        transport=httpx.ASGITransport(app=services),
    )
    async with services.router.lifespan_context(services):
        api = httpx.AsyncClient(transport=httpx.ASGITransport(app=services), base_url=BASE)
        pages = httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url=BASE)
        async with api, pages:
            yield Console(api, pages, tenant, clock)
        await web.state.api.close()


def local(dt: datetime) -> str:
    return dt.astimezone(BERLIN).strftime("%Y-%m-%dT%H:%M")


async def test_meeting_from_creation_to_promotion_and_exports(console: Console) -> None:
    await sign_in_locally(console.web, console.tenant, "staff", name="Sachbearbeitung Test")
    listing = await console.page(console.base)
    assert "Neue Veranstaltung" in listing and "Keine Veranstaltungen." in listing

    # The page's own checks and then the API's, each in an error summary linking to its field.
    starts = (datetime.now(UTC) + timedelta(days=7)).replace(second=0, microsecond=0)
    empty = await console.send(f"{console.base}/neu", {"title": "", "starts_at": "", "ends_at": ""}, status=422)
    assert "<title>Fehler:" in empty.text and 'class="kern-alert kern-alert--danger civic-error-summary"' in empty.text
    assert 'href="#title"' in empty.text and "Bitte geben Sie einen Titel an." in empty.text
    backwards = await console.send(
        f"{console.base}/neu",
        {
            "title": "Bürgerdialog Süderstraße",
            "starts_at": local(starts),
            "ends_at": local(starts - timedelta(hours=1)),
        },
        status=422,
    )
    assert 'href="#ends_at"' in backwards.text and "Das Ende muss nach dem Beginn liegen." in backwards.text
    assert 'value="Bürgerdialog Süderstraße"' in backwards.text, "what was entered is kept"

    created = await console.send(
        f"{console.base}/neu",
        {
            "title": "Bürgerdialog Süderstraße",
            "starts_at": local(starts),
            "ends_at": local(starts + timedelta(hours=2)),
        },
    )
    meeting_path = created.headers["location"].split("?")[0]
    meeting_id = meeting_path.rsplit("/", 1)[1]
    overview = await console.page(created.headers["location"])
    assert "als Entwurf angelegt" in overview and "Entwurf" in overview

    bad_postcode = await console.send(
        f"{meeting_path}/bearbeiten/ort", {"venue.name": "Rathaus", "venue.postal_code": "123"}, status=422
    )
    assert 'href="#venue-postal_code"' in bad_postcode.text and "fünf Ziffern" in bad_postcode.text
    await console.send(
        f"{meeting_path}/bearbeiten/ort",
        {"venue.name": "Rathaus", "venue.postal_code": "25746", "venue.city": "Heide", "venue.accessibility": "Aufzug"},
    )
    await console.send(
        f"{meeting_path}/bearbeiten/anmeldung", {"capacity": "1", "waitlist": "on", "max_companions": "0"}
    )
    one_option = await console.send(
        f"{meeting_path}/fragen", {"label": "Thema", "kind": "single", "options": "Verkehr"}, status=422
    )
    assert 'href="#options"' in one_option.text and "mindestens zwei" in one_option.text
    await console.send(f"{meeting_path}/fragen", {"label": "Essen Sie vegetarisch?", "kind": "yes_no"})
    await console.send(f"{meeting_path}/bestaetigungen", {"text": "Ich wohne im Kreis."})
    overview = await console.page(meeting_path)
    assert "Rathaus" in overview and "Essen Sie vegetarisch?" in overview and "Ich wohne im Kreis." in overview

    await console.send(meeting_path, {}, action=f"{meeting_path}/veroeffentlichen")
    published = await console.page(meeting_path)
    assert "Veröffentlicht" in published and f'href="/{console.tenant}/termine/{meeting_id}"' in published
    # Not started yet: no no-shows counted (the stats API would report every registrant as one).
    assert "wird nach Beginn der Veranstaltung gezählt" in published

    online = await console.api.post(
        f"/api/registration/meetings/{meeting_id}/registrations",
        json={
            "name": "Kim Online",
            "email": "kim@example.org",
            "privacy_consent": True,
            "attestations": ["ich-wohne-im-kreis"],
        },
    )
    assert online.status_code == 201 and online.json()["status"] == "confirmed", online.text

    entry = f"{meeting_path}/anmeldungen/neu"
    no_phone = await console.send(
        entry,
        {"channel": "phone", "name": "Jürgen Müßig", "attestations": "ich-wohne-im-kreis", "privacy_consent": "on"},
        status=422,
    )
    assert 'href="#phone"' in no_phone.text and "Bitte geben Sie die Telefonnummer an." in no_phone.text
    taken = await console.send(
        entry,
        {
            "channel": "phone",
            "name": "Jürgen Müßig",
            "phone": "0481 123456",
            "attestations": "ich-wohne-im-kreis",
            "privacy_consent": "on",
        },
    )
    result = await console.page(taken.headers["location"])
    assert "Jürgen Müßig steht auf Platz 1 der Warteliste." in result
    assert "Ohne E-Mail-Adresse erhält die Person keine Nachricht" in result

    table = await console.page(f"{meeting_path}/anmeldungen")
    assert "Kim Online" in table and "Jürgen Müßig" in table and "Telefon" in table and "online" in table
    assert "Warteliste, Platz 1" in table and "2 von 2 Anmeldungen" in table
    found = await console.page(f"{meeting_path}/anmeldungen?suche=m%C3%BC%C3%9F")
    assert "Jürgen Müßig" in found and "Kim Online" not in found and "1 von 2 Anmeldungen" in found
    waiting = await console.page(f"{meeting_path}/warteliste")
    assert "Jürgen Müßig" in waiting and "Kim Online" not in waiting

    kim = online.json()["id"]
    confirm = await console.page(f"{meeting_path}/anmeldungen/{kim}/absagen")
    assert "Möchten Sie die Anmeldung von Kim Online wirklich absagen?" in confirm
    done = await console.send(f"{meeting_path}/anmeldungen/{kim}/absagen", {})
    after = await console.page(done.headers["location"])
    assert "Die Anmeldung von Kim Online ist abgesagt." in after
    assert "Nachgerückt: Jürgen Müßig." in after and "Ohne E-Mail-Adresse, bitte anrufen: Jürgen Müßig." in after
    row = re.search(r"<tr[^>]*>\s*<th[^>]*>Jürgen Müßig.*?</tr>", after, re.S)
    assert row is not None and ">bestätigt<" in row.group(0)

    # The meeting has begun: now the page counts no-shows; checked in at the door (the door page's API call),
    # the table says so, with the time.
    console.move_clock(starts + timedelta(minutes=10))
    # A week later by the clock the sign-in has ended (the session ends by the app's clock): sign in again.
    await sign_in_locally(console.web, console.tenant, "staff", name="Sachbearbeitung Test")
    begun = await console.page(meeting_path)
    no_shows = re.search(r"<dt>Nicht erschienen</dt>\s*<dd>(.*?)</dd>", begun, re.S)
    assert no_shows is not None and no_shows.group(1).strip() == "1"
    door = staff_headers(console.tenant, "checkin")
    listing = (
        await console.api.get(
            f"/api/registration/staff/meetings/{meeting_id}/registrations", headers=staff_headers(console.tenant)
        )
    ).json()
    ticket = next(r["ticket_code"] for r in listing if r["name"] == "Jürgen Müßig")
    admitted = await console.api.post(
        f"/api/registration/meetings/{meeting_id}/checkins", headers=door, json={"ticket": ticket, "nonce": "tuer-0001"}
    )
    assert admitted.status_code == 200, admitted.text
    row = re.search(
        r"<tr[^>]*>\s*<th[^>]*>Jürgen Müßig.*?</tr>", await console.page(f"{meeting_path}/anmeldungen"), re.S
    )
    assert row is not None and ">eingecheckt " in row.group(0) and " Uhr<" in row.group(0)
    counted = await console.page(meeting_path)
    assert re.search(r"<dt>Eingecheckt</dt>\s*<dd>1 ", counted) and re.search(
        r"<dt>Nicht erschienen</dt>\s*<dd>0</dd>", counted
    )

    csv_file = await console.web.get(f"{meeting_path}/anmeldungen.csv")
    assert csv_file.status_code == 200 and csv_file.headers["content-type"].startswith("text/csv")
    assert csv_file.content.startswith(b"\xef\xbb\xbf"), "a byte order mark, so Excel reads UTF-8"
    text = csv_file.content.decode("utf-8-sig")
    assert text.split("\r\n")[0].startswith("Name;E-Mail;Telefon;Kanal;Status;")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    by_name = {r[0]: r for r in rows[1:]}
    assert by_name["Jürgen Müßig"][1] == "" and by_name["Jürgen Müßig"][2].endswith("481123456"), rows
    assert {r[0]: r[4] for r in rows[1:]} == {"Kim Online": "abgesagt", "Jürgen Müßig": "eingecheckt"}
    assert "Essen Sie vegetarisch?" in rows[0]

    xlsx = await console.web.get(f"{meeting_path}/anmeldungen.xlsx")
    assert xlsx.status_code == 200 and "spreadsheetml" in xlsx.headers["content-type"]
    with zipfile.ZipFile(io.BytesIO(xlsx.content)) as book:
        assert "xl/worksheets/sheet1.xml" in book.namelist()
        assert "Jürgen Müßig" in book.read("xl/sharedStrings.xml").decode()

    await console.page(f"{meeting_path}/absagen")
    await console.send(f"{meeting_path}/absagen", {"reason": "Der Saal ist wegen eines Wasserschadens gesperrt."})
    cancelled = await console.page(meeting_path)
    assert "Die Veranstaltung ist abgesagt." in cancelled and "Wasserschadens" in cancelled
    assert "veroeffentlichen" not in cancelled and "bearbeiten/" not in cancelled
    assert "Abgesagt" in await console.page(console.base)


async def test_a_checkin_person_is_refused_the_meeting_pages(console: Console) -> None:
    await sign_in_locally(console.web, console.tenant, "checkin", name="Einlass Test")
    for path in (
        console.base,
        f"{console.base}/neu",
        f"{console.base}/00000000-0000-0000-0000-000000000000/anmeldungen.csv",
    ):
        r = await console.web.get(path)
        assert r.status_code == 403, (path, r.status_code)
        assert "Neue Veranstaltung" not in r.text


async def test_time_slots_english_and_removing_items(console: Console) -> None:
    await sign_in_locally(console.web, console.tenant, "staff")
    starts = (datetime.now(UTC) + timedelta(days=3)).replace(second=0, microsecond=0)
    created = await console.send(
        f"{console.base}/neu",
        {"title": "Sprechstunde", "starts_at": local(starts), "ends_at": local(starts + timedelta(hours=3))},
    )
    meeting = created.headers["location"].split("?")[0]
    await console.send(f"{meeting}/bearbeiten/anmeldung", {"capacity": "10", "max_companions": "0"})

    # A meeting with one capacity cannot take slots: the page says what to do first.
    slot = {"starts_at": local(starts), "ends_at": local(starts + timedelta(hours=1)), "capacity": "4"}
    refused = await console.send(f"{meeting}/zeitfenster", slot, status=422)
    assert 'href="#capacity"' in refused.text and "Bitte leeren Sie zuerst" in refused.text
    outside = await console.send(
        f"{meeting}/zeitfenster",
        {"starts_at": local(starts - timedelta(hours=2)), "ends_at": local(starts), "capacity": "4"},
        status=422,
    )
    assert "innerhalb der Veranstaltung" in outside.text

    await console.send(f"{meeting}/bearbeiten/anmeldung", {"capacity": "", "max_companions": "0"})
    await console.send(f"{meeting}/zeitfenster", slot)
    slots = await console.page(f"{meeting}/zeitfenster")
    assert "Plätze: 4" in slots
    slot_id = re.search(r'/zeitfenster/([0-9a-f-]{36})/entfernen"', slots).group(1)
    await console.send(f"{meeting}/zeitfenster", {}, action=f"{meeting}/zeitfenster/{slot_id}/entfernen")
    assert "Noch keine Zeitfenster." in await console.page(f"{meeting}/zeitfenster")

    await console.send(f"{meeting}/bestaetigungen", {"text": "Ich bin volljährig."})
    page = await console.page(f"{meeting}/bestaetigungen")
    assert "Ich bin volljährig." in page
    await console.send(
        f"{meeting}/bestaetigungen", {}, action=f"{meeting}/bestaetigungen/ich-bin-volljaehrig/entfernen"
    )
    assert "Noch keine Bestätigungen." in await console.page(f"{meeting}/bestaetigungen")

    # English through the language switch: the same page, its texts translated.
    await console.web.get("/sprache?lang=en")
    english = await console.page(f"{meeting}/bearbeiten/grunddaten")
    assert '<html lang="en">' in english and "Title and time" in english and "Save" in english
    empty = await console.send(f"{meeting}/bearbeiten/grunddaten", {"title": "", "starts_at": "", "ends_at": ""}, 422)
    assert "Please enter a title." in empty.text
