"""Process pages and news articles (content API), with the live state of the process's meetings and surveys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from web import i18n
from web.pages.common import api, check_tenant, lang_of
from web.rendering import render

router = APIRouter(include_in_schema=False)

i18n.english(
    {
        "Beteiligungsverfahren": "Participation process",
        "Phasen": "Phases",
        "Aktuelle Phase": "Current phase",
        "aktuell": "current",
        "abgeschlossen": "completed",
        "geplant": "planned",
        "bis": "until",
        "ab": "from",
        "Schritte und Maßnahmen": "Steps and measures",
        "Schritt": "Step",
        "Maßnahme": "Measure",
        "Sofortprojekt": "Quick project",
        "Förderung": "Funding",
        "Termine": "Events",
        "Umfragen": "Surveys",
        "Zur Umfrage": "To the survey",
        "Zur Veranstaltung und Anmeldung": "Event and registration",
        "Neuigkeiten": "News",
        "Weitere Neuigkeiten": "More news",
        "Neuere Neuigkeiten": "Newer news",
        "Ansprechpersonen": "Contact persons",
        "E-Mail": "E-mail",
        "Telefon": "Phone",
        "Sprechzeiten": "Office hours",
        "Dokumente": "Documents",
        "Weitere Seiten": "More pages",
        "veröffentlicht am": "published on",
        "Zurück zum Verfahren": "Back to the process",
        "Umfrage offen": "Survey open",
        "Umfrage beginnt bald": "Survey opens soon",
        "Umfrage beendet": "Survey closed",
        "Umfrage in Vorbereitung": "Survey in preparation",
        "Teilnahme möglich bis": "Open until",
        "Beginnt am": "Opens on",
        "Zurzeit keine Termine.": "No events at the moment.",
        "Neuigkeiten, Seite {n}": "News, page {n}",
        "Lizenztext": "Licence text",
    }
)


def phase_marks(phases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each phase with ``state``: done before the current one, current, planned after it (by order)."""
    current = next((i for i, p in enumerate(phases) if p.get("current")), None)
    out = []
    for i, p in enumerate(phases):
        if current is None:
            state = "planned"
        elif i < current:
            state = "done"
        elif i == current:
            state = "current"
        else:
            state = "planned"
        out.append({**p, "state": state})
    return out


@router.get("/{tenant}/verfahren/{slug}")
async def process_page(request: Request, tenant: str, slug: str, seite: int = 1) -> Response:
    check_tenant(tenant)
    lang = lang_of(request)
    page_no = max(1, min(seite, 1000))
    p: dict[str, Any] = await api(request).get(
        f"/api/content/public/{tenant}/processes/{slug[:100]}",
        request=request,
        params={"lang": lang, "news_page": page_no, "news_per_page": 5},
    )
    return render(request, "pages/process.html", {"p": p, "phases": phase_marks(p["phases"])}, tenant=tenant)


@router.get("/{tenant}/neuigkeiten/{slug}")
async def news_article(request: Request, tenant: str, slug: str) -> Response:
    return await _article(request, tenant, "news", slug)


@router.get("/{tenant}/seiten/{slug}")
async def page_article(request: Request, tenant: str, slug: str) -> Response:
    return await _article(request, tenant, "pages", slug)


async def _article(request: Request, tenant: str, kind: str, slug: str) -> Response:
    check_tenant(tenant)
    a: dict[str, Any] = await api(request).get(
        f"/api/content/public/{tenant}/{kind}/{slug[:100]}", request=request, params={"lang": lang_of(request)}
    )
    return render(request, "pages/article.html", {"a": a, "kind": kind}, tenant=tenant)
