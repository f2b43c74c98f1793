"""The installation's and each tenant's own pages: start pages, Leichte Sprache, language switch, licences,
tenant colours and the landing page of a QR short link that leads nowhere."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from web import i18n
from web.client import ApiProblem
from web.pages.common import api, check_tenant, lang_of, now, settings_of
from web.rendering import render

router = APIRouter(include_in_schema=False)
tenant_router = APIRouter(include_in_schema=False)

i18n.english(
    {
        "Bürgerbeteiligung": "Public participation",
        "Beteiligung in Ihrer Region": "Participation in your region",
        "Wählen Sie Ihre Kommune.": "Choose your municipality.",
        "Es ist noch keine Kommune eingerichtet.": "No municipality has been set up yet.",
        "Beteiligungsverfahren": "Participation processes",
        "Hier können Sie mitreden: Termine, Umfragen und Neuigkeiten.": "Have your say here: events, surveys and news.",
        "Zurzeit gibt es keine Beteiligungsverfahren.": "There are no participation processes at the moment.",
        "Nächste Termine": "Upcoming events",
        "Zurzeit sind keine Termine geplant.": "No events are planned at the moment.",
        "Offene Umfragen": "Open surveys",
        "Zurzeit gibt es keine offenen Umfragen.": "There are no open surveys at the moment.",
        "Teilnahme bis": "Take part until",
        "Lizenzen": "Licences",
        "Diese Seiten nutzen freie Software.": "These pages use free software.",
        "für das Scannen mit der Kamera beim Einlass": "for scanning tickets with the camera at the door",
        "mit dem Lesemodul von": "with the reader of",
        "QR-Code ohne Ziel": "QR code without a target",
        "Dieser QR-Code führt zu keiner Seite mehr.": "This QR code no longer leads to a page.",
        "Vielleicht ist die Umfrage oder Veranstaltung vorbei, oder der Code wurde falsch gelesen. Auf der "
        "Startseite finden Sie alle laufenden Beteiligungen.": "Perhaps the survey or event is over, or the code "
        "was misread. The start page lists all current participation.",
        "Code": "Code",
        "Leichte Sprache": "Easy-to-read",
        "Zum Inhalt springen": "Skip to content",
        "Sprache und Hilfe": "Language and help",
        "Rechtliches": "Legal",
        "Impressum": "Imprint",
        "Datenschutz": "Privacy",
        "Erklärung zur Barrierefreiheit": "Accessibility statement",
        "Anmeldung offen": "Registration open",
        "Warteliste": "Waiting list",
        "Anmeldung geschlossen": "Registration closed",
        "Anmeldung noch nicht offen": "Registration not open yet",
        "Abgesagt": "Cancelled",
        "Ausgebucht": "Fully booked",
        "Anmeldung bis": "Register by",
        "Plätze frei": "seats left",
        "Mehr erfahren": "Read more",
    }
)


@router.get("/")
async def index(request: Request) -> Response:
    s = settings_of(request)
    if s.default_tenant:
        return RedirectResponse(f"/{s.default_tenant}", status_code=302)
    tenants = sorted(((slug, site.name) for slug, site in s.tenants.items()), key=lambda t: t[1])
    return render(request, "pages/index.html", {"tenants": tenants})


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """Ready when the APIs answer (the gateway, or this process in ``make up``)."""
    try:
        await api(request).request("GET", "/healthz")
    except Exception as exc:
        return JSONResponse({"status": "not ready", "api": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get("/sprache")
async def switch_language(request: Request, lang: str = "de", next: str = "/") -> Response:
    """Set the page language (a cookie) and go back; a plain link, so it works without JavaScript."""
    chosen = i18n.pick(lang, None)
    target = next if next.startswith("/") and not next.startswith("//") and "\\" not in next else "/"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        i18n.LANG_COOKIE,
        chosen,
        max_age=365 * 24 * 3600,
        httponly=True,
        secure=bool(settings_of(request).cookie_secure),
        samesite="lax",
        path="/",
    )
    return response


@router.get("/lizenzen")
async def licences(request: Request) -> Response:
    return render(request, "pages/licences.html")


@router.get("/_tenant/{tenant}.css")
async def tenant_css(tenant: str, request: Request) -> Response:
    """The tenant's colours as CSS variables (a file, since the CSP allows no inline style)."""
    site = settings_of(request).site(check_tenant(tenant))
    css = f":root {{ --civic-tenant: {site.colour}; --kern-color-action-default: {site.colour}; }}\n"
    return Response(css, media_type="text/css", headers={"Cache-Control": "public, max-age=300"})


@router.get("/kurzlink/{code}")
async def short_link_missing(request: Request, code: str) -> Response:
    """Where content's /q/<code> sends an unknown code (CIVIC_LINK_SHORT_LINK_MISSING): a page, with 404."""
    return render(request, "pages/short_link_missing.html", {"code": code[:32]}, status=404)


# -- the tenant's pages ----------------------------------------------------------------------------------------


async def overview(request: Request, tenant: str) -> dict[str, Any]:
    """Processes, upcoming meetings and open surveys of a tenant, from the content and registration APIs."""
    lang = lang_of(request)
    client = api(request)
    processes_doc, meetings_list = await asyncio.gather(
        client.get(f"/api/content/public/{tenant}/processes", request=request, params={"lang": lang, "per_page": 50}),
        client.get("/api/registration/meetings", request=request, params={"tenant": tenant}),
    )
    processes = processes_doc["items"]
    pages = await asyncio.gather(
        *(
            client.get(f"/api/content/public/{tenant}/processes/{p['slug']}", request=request, params={"lang": lang})
            for p in processes
        ),
        return_exceptions=True,
    )
    moment = now(request)
    surveys: list[dict[str, Any]] = []
    states: dict[str, dict[str, Any]] = {}
    for p, page in zip(processes, pages, strict=True):
        if isinstance(page, BaseException):
            if isinstance(page, ApiProblem):
                continue
            raise page
        for s in page["surveys"]:
            if s["open"] and all(x["survey_id"] != s["survey_id"] for x in surveys):
                surveys.append({**s, "process": p})
        for m in page["meetings"]:
            states[str(m["meeting_id"])] = m
    upcoming = sorted(
        (m for m in meetings_list if datetime.fromisoformat(m["ends_at"]) > moment),
        key=lambda m: m["starts_at"],
    )
    for m in upcoming:
        m["live"] = states.get(str(m["id"]))
    return {"processes": processes, "meetings": upcoming[:10], "surveys": surveys}


@tenant_router.get("/{tenant}")
async def tenant_start(request: Request, tenant: str) -> Response:
    check_tenant(tenant)
    return render(request, "pages/tenant.html", await overview(request, tenant), tenant=tenant)


@tenant_router.get("/{tenant}/leichte-sprache")
async def easy_language(request: Request, tenant: str) -> Response:
    check_tenant(tenant)
    return render(request, "pages/easy_language.html", tenant=tenant)
