"""The console's content pages against the real services (PostgreSQL, Redis, the bus), signed in with the local
sign-in as an editor: a process with two phases and a contact person, a news item written in Markdown, previewed
and published (the citizen page shows it), a QR short link created, retargeted and followed (its scans shown);
a ``checkin`` person is refused, and staff of another tenant see nothing of this one."""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from civic.services import select
from shared.clock import FileClock
from shared.http.app import create_app
from shared.settings import Settings
from tests.console_support import sign_in_locally
from web.app import create_app as create_web
from web.settings import WebSettings

BASE = "http://civic.test"


class Console:
    def __init__(self, services: Any, api: httpx.AsyncClient, web: Any, tenant: str, other: str) -> None:
        self.services, self.api, self.web_app, self.tenant, self.other = services, api, web, tenant, other
        self.web = self.client()
        self.base = f"/verwaltung/{tenant}/inhalte"

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.web_app), base_url=BASE)

    async def page(self, path: str, status: int = 200, web: httpx.AsyncClient | None = None) -> str:
        r = await (web or self.web).get(path)
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
    tenant, other = f"kreis-{secrets.token_hex(3)}", f"stadt-{secrets.token_hex(3)}"
    services = create_app(select(None), settings, clock=FileClock(str(clock)))
    web = create_web(
        WebSettings(
            api_base_url=BASE,
            public_base_url=BASE,
            tenants={tenant: {"name": "Kreis Test"}, other: {"name": "Stadt Test"}},
            clock_file=str(clock),
        ),
        transport=httpx.ASGITransport(app=services),
    )
    async with services.router.lifespan_context(services):
        api = httpx.AsyncClient(transport=httpx.ASGITransport(app=services), base_url=BASE)
        c = Console(services, api, web, tenant, other)
        async with api, c.web:
            yield c
        await web.state.api.close()


def location(r: httpx.Response) -> str:
    return r.headers["location"].split("?")[0]


async def test_an_editor_runs_processes_news_and_short_links(console: Console) -> None:
    await sign_in_locally(console.web, console.tenant, "editor", name="Redaktion Test")
    start = await console.page(console.base)
    assert "Noch keine Verfahren." in start and "Noch keine Neuigkeiten." in start and "Noch keine QR-Codes." in start

    # A process: the page's own checks, then the API's (a bad short name) in German at its field.
    empty = await console.send(f"{console.base}/verfahren/neu", {"title": "", "slug": ""}, status=422)
    assert "<title>Fehler:" in empty.text and 'href="#title"' in empty.text and 'href="#slug"' in empty.text
    bad = await console.send(
        f"{console.base}/verfahren/neu", {"title": "Radweg Nord", "slug": "Radweg Nord"}, status=422
    )
    assert "nur Kleinbuchstaben, Ziffern" in bad.text and 'value="Radweg Nord"' in bad.text
    created = await console.send(
        f"{console.base}/verfahren/neu",
        {"title": "Radweg Nord", "slug": "radweg-nord", "motto": "Sicher ans Ziel", "summary": "Wir planen."},
    )
    process = location(created)
    assert "Angelegt als Entwurf" in await console.page(created.headers["location"])

    backwards = await console.send(
        f"{process}/phasen", {"title": "Planung", "starts_on": "2026-03-01", "ends_on": "2026-02-01"}, status=422
    )
    assert "Das Ende darf nicht vor dem Beginn liegen." in backwards.text
    await console.send(f"{process}/phasen", {"title": "Planung", "starts_on": "2026-01-01", "ends_on": "2026-06-30"})
    await console.send(f"{process}/phasen", {"title": "Bau", "starts_on": "2026-07-01", "ends_on": ""})
    phases = await console.page(f"{process}/phasen")
    edit = re.findall(rf'href="({process}/phasen/[0-9a-f-]{{36}}/bearbeiten)"', phases)
    assert len(edit) == 2 and phases.index("Planung") < phases.index("Bau"), "ordered by start"
    await console.send(edit[1], {"title": "Bau und Eröffnung", "starts_on": "2026-07-01", "ends_on": "2027-06-30"})
    assert "Bau und Eröffnung" in await console.page(f"{process}/phasen")
    bad_mail = await console.send(
        f"{process}/ansprechpersonen", {"name": "Erika Beispiel", "email": "nicht-gültig"}, status=422
    )
    assert 'href="#email"' in bad_mail.text and "name@beispiel.de" in bad_mail.text
    await console.send(
        f"{process}/ansprechpersonen",
        {"name": "Erika Beispiel", "role": "Projektleitung", "email": "erika@example.org", "phone": "0481 97-1"},
    )
    await console.send(f"{process}/foerderung", {"label": "Landesmittel", "amount": "100000"})
    shown = await console.page(process)
    assert shown.index("Planung") < shown.index("Bau") and "Erika Beispiel" in shown and "100.000" in shown
    stored = (await console.api.get(f"/api/content/public/{console.tenant}/processes/radweg-nord")).status_code
    assert stored == 404, "a draft is not public"
    await console.send(process, {}, action=f"{process}/veroeffentlichen")
    citizen = await console.page(f"/{console.tenant}/verfahren/radweg-nord")
    assert "Radweg Nord" in citizen and "Planung" in citizen and "Bau und Eröffnung" in citizen
    assert "Erika Beispiel" in citizen
    english = await console.page(f"{process}?lang=en")
    assert "Participation process" in english and "Withdraw" in english and "Contact persons" in english

    # A news item in Markdown: previewed (nothing stored), saved, published; the citizen page shows it.
    markdown = "Der **Radweg** wird *breiter*.\n\n- Abschnitt 1\n- Abschnitt 2\n\n<script>alert(1)</script>"
    new = f"{console.base}/artikel/neu?art=news"
    fields = {"title": "Baustart", "slug": "baustart", "summary": "Es geht los.", "body": markdown}
    preview = await console.send(
        new, {**fields, "aktion": "vorschau"}, status=200, action=f"{console.base}/artikel/neu"
    )
    shown_preview = preview.text[
        preview.text.index('id="vorschau"') : preview.text.index("<form", preview.text.index('id="vorschau"'))
    ]
    assert "<strong>Radweg</strong>" in shown_preview and "<li>Abschnitt 1</li>" in shown_preview
    assert "alert(1)" not in shown_preview and "Die Vorschau ist noch nicht gespeichert." in shown_preview
    assert "Radweg** wird" in preview.text and "&lt;script&gt;alert(1)" in preview.text, "the field keeps the text"
    assert (await console.api.get(f"/api/content/public/{console.tenant}/news/baustart")).status_code == 404
    saved = await console.send(new, {**fields, "aktion": "speichern"}, action=f"{console.base}/artikel/neu")
    article = location(saved)
    assert re.fullmatch(rf"{console.base}/artikel/[0-9a-f-]{{36}}", article)
    await console.send(article, {}, action=f"{article}/veroeffentlichen")
    published = await console.page(article + "?hinweis=veroeffentlicht")
    assert "Veröffentlicht" in published and f'href="/{console.tenant}/neuigkeiten/baustart"' in published
    news = await console.page(f"/{console.tenant}/neuigkeiten/baustart")
    assert "Baustart" in news and "<strong>Radweg</strong>" in news
    edited = await console.send(f"{article}/bearbeiten", {**fields, "title": "Baustart im März", "aktion": "speichern"})
    assert location(edited) == article
    assert "Baustart im März" in await console.page(console.base)

    # A QR short link: created, retargeted, followed; its scans per day shown as a chart and a table.
    refused = await console.send(
        f"{console.base}/qr/neu", {"label": "Plakat", "target_kind": "url", "target_url": "kein link"}, status=422
    )
    assert 'href="#target_url"' in refused.text and "https://" in refused.text
    made = await console.send(
        f"{console.base}/qr/neu",
        {"label": "Plakat Rathaus", "target_kind": "url", "target_url": "https://example.org/alt"},
    )
    qr = location(made)
    code = qr.rsplit("/", 1)[1]
    await console.send(
        f"{qr}/ziel", {"label": "Plakat Rathaus", "target_kind": "page", "target_url": "https://example.org/neu"}
    )
    for _ in range(3):
        follow = await console.api.get(f"/q/{code}")
        assert follow.status_code == 302 and follow.headers["location"] == "https://example.org/neu"
    detail = await console.page(qr)
    assert "https://example.org/neu" in detail and f"{BASE}/q/{code}" in detail
    assert '<svg class="civic-console-chart__svg"' in detail and "<rect" in detail
    table = detail[detail.index("<caption") :]
    assert re.search(r'kern-table__cell--numeric">3</td>', table), table[:800]
    assert "3 insgesamt" in detail
    png = await console.web.get(f"{qr}/qr-code.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG") and "attachment" in png.headers["content-disposition"]
    svg = await console.web.get(f"{qr}/qr-code.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content
    listing = await console.page(console.base)
    assert "Plakat Rathaus" in listing and "https://example.org/neu" in listing

    # No CSRF field: refused, nothing changed.
    forged = await console.web.post(f"{article}/zurueckziehen", data={})
    assert forged.status_code == 403
    assert "Veröffentlicht" in await console.page(article)


async def test_who_may_open_the_content_pages(console: Console) -> None:
    editor = console.web
    await sign_in_locally(editor, console.tenant, "editor")
    made = await editor.get(f"{console.base}/verfahren/neu")
    assert made.status_code == 200
    await sign_in_locally(editor, console.tenant, "editor")

    door = console.client()
    async with door:
        await sign_in_locally(door, console.tenant, "checkin")
        for path in ("", "/verfahren/neu", "/artikel/neu", "/qr/neu"):
            r = await door.get(console.base + path)
            assert r.status_code == 403, (path, r.status_code)
            assert "Kein Zugriff" in r.text

    # Something of this tenant's, then staff of another tenant: refused here, and their own pages show none of it.
    await console.send(f"{console.base}/verfahren/neu", {"title": "Geheimplan", "slug": "geheimplan"})
    elsewhere = console.client()
    async with elsewhere:
        await sign_in_locally(elsewhere, console.other, "staff")
        r = await elsewhere.get(console.base)
        assert r.status_code == 403 and "Geheimplan" not in r.text
        own = await console.page(f"/verwaltung/{console.other}/inhalte", web=elsewhere)
        assert "Geheimplan" not in own and "Noch keine Verfahren." in own

    signed_out = console.client()
    async with signed_out:
        r = await signed_out.get(console.base)
        assert r.status_code == 303 and r.headers["location"].startswith("/verwaltung/anmelden")
