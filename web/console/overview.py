"""``/verwaltung/{tenant}/``: the tenant at a glance, as far as the person's roles reach.

Staff see how many people wait for a call (the call-back list, web/console/callbacks.py), the upcoming meetings
with seats and waiting list (registration's staff API), the open surveys with their response counts (surveys'
staff API) and the latest news (content's staff API); an editor sees the news; a check-in person only the way
to the door page. Each part asks its service with the person's staff token, and
a service that is down or refuses costs only its own part of the page, not the page.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from web import i18n
from web.client import ApiProblem, ApiUnavailable
from web.console.layout import render
from web.console.session import StaffSession, console_session, service_token
from web.pages.common import api, check_tenant, lang_of, now, settings_of

router = APIRouter(include_in_schema=False)

MEETINGS_SHOWN = 8
SURVEYS_SHOWN = 6
NEWS_SHOWN = 5

i18n.english(
    {
        "Nächste Veranstaltungen": "Upcoming events",
        "Es sind keine Veranstaltungen geplant.": "No events are planned.",
        "Alle Veranstaltungen": "All events",
        "Veranstaltung": "Event",
        "Beginn": "Starts",
        "Stand": "Status",
        "Angemeldet": "Registered",
        "Plätze": "Seats",
        "Warteliste": "Waiting list",
        "unbegrenzt": "unlimited",
        "Entwurf": "Draft",
        "Veröffentlicht": "Published",
        "Abgesagt": "Cancelled",
        "Offene Umfragen": "Open surveys",
        "Zurzeit ist keine Umfrage offen.": "No survey is open at the moment.",
        "Alle Umfragen": "All surveys",
        "Antworten": "Responses",
        "Läuft bis": "Open until",
        "Neuigkeiten": "News",
        "Es gibt noch keine Neuigkeiten.": "There is no news yet.",
        "Alle Inhalte": "All content",
        "Geplant": "Scheduled",
        "Einlass an der Tür": "Check-in at the door",
        "Tickets scannen oder Codes eingeben, Namen suchen, Besucherzahlen sehen.": "Scan tickets or type codes, "
        "search names, see the numbers.",
        "Zum Einlass": "To check-in",
        "Zu erledigen": "To do",
        "Menschen ohne E-Mail-Adresse, die nachgerückt sind oder deren Veranstaltung sich geändert hat, "
        "brauchen einen Anruf.": "People without an e-mail address who moved up from the waiting list, or whose "
        "event changed, need a call.",
        "Zur Rückrufliste": "To the call-back list",
        "Niemand wartet auf einen Anruf.": "Nobody is waiting for a call.",
        "1 Person wartet auf Ihren Anruf.": "1 person is waiting for your call.",
        "{n} Personen warten auf Ihren Anruf.": "{n} people are waiting for your call.",
        "Dieser Teil ist gerade nicht erreichbar.": "This part is not available right now.",
        "Ihre Rolle erlaubt diesen Teil nicht.": "Your role does not allow this part.",
        "Sie haben für diesen Mandanten keine Aufgaben.": "You have no tasks for this tenant.",
    }
)


@dataclass
class Part:
    """One part of the overview: its rows, or why there are none."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    failure: str | None = None  # "unavailable" or "refused"


async def _part(load: Any) -> Part:
    try:
        return Part(rows=await load)
    except ApiUnavailable:
        return Part(failure="unavailable")
    except ApiProblem as problem:
        return Part(failure="refused" if problem.status in (401, 403) else "unavailable")


def _upcoming_meetings(meetings: list[dict[str, Any]], at: datetime) -> list[dict[str, Any]]:
    upcoming = [m for m in meetings if datetime.fromisoformat(m["ends_at"]) >= at]
    upcoming.sort(key=lambda m: m["starts_at"])
    return upcoming[:MEETINGS_SHOWN]


def _text(texts: dict[str, str] | None, lang: str) -> str:
    if not texts:
        return ""
    return texts.get(lang) or texts.get("de") or next(iter(texts.values()), "")


@router.get("/verwaltung/{tenant}")
async def without_slash(request: Request, tenant: str) -> Response:
    """``/verwaltung/<tenant>`` as typed: on to the overview. Included after the console's fixed one-segment
    paths (``/verwaltung/mandant`` ...), which it would otherwise take."""
    return RedirectResponse(f"/verwaltung/{check_tenant(tenant)}/", status_code=308)


@router.get("/verwaltung/{tenant}/")
async def overview(request: Request, tenant: str) -> Response:
    session = await console_session(request, tenant)
    client = api(request)
    token = service_token(session, settings_of(request))
    at = now(request)
    lang = lang_of(request)

    async def meetings() -> list[dict[str, Any]]:
        found = await client.get("/api/registration/staff/meetings", request=request, token=token)
        return _upcoming_meetings(found, at)

    async def surveys() -> list[dict[str, Any]]:
        found = await client.get("/api/surveys/surveys", request=request, token=token)
        open_ones = sorted((s for s in found if s["state"] == "open"), key=lambda s: s["closes_at"])[:SURVEYS_SHOWN]
        results = await asyncio.gather(
            *(client.get(f"/api/surveys/surveys/{s['id']}/results", request=request, token=token) for s in open_ones)
        )
        return [{**s, "responses": r["responses"]} for s, r in zip(open_ones, results, strict=True)]

    async def news() -> list[dict[str, Any]]:
        found = await client.get("/api/content/staff/articles", request=request, token=token, params={"kind": "news"})
        items = sorted(
            found["items"], key=lambda a: a.get("published_at") or a.get("publish_at") or a["updated_at"], reverse=True
        )
        return [{**a, "title_text": _text(a.get("title"), lang)} for a in items[:NEWS_SHOWN]]

    async def calls() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await client.get(
            "/api/registration/staff/callbacks", request=request, token=token, params={"state": "open"}
        )
        return found

    async def nothing() -> list[dict[str, Any]]:
        return []

    shows = _sections(session)
    parts = await asyncio.gather(
        _part(meetings() if "meetings" in shows else nothing()),
        _part(surveys() if "surveys" in shows else nothing()),
        _part(news() if "news" in shows else nothing()),
        _part(calls() if "callbacks" in shows else nothing()),
    )
    context = {"shows": shows, "meetings": parts[0], "surveys": parts[1], "news": parts[2], "callbacks": parts[3]}
    return render(request, "console/overview.html", session, context)


def _sections(session: StaffSession) -> set[str]:
    """What the overview shows this person (the services refuse the rest anyway)."""
    shows: set[str] = set()
    if session.may("staff"):
        shows |= {"meetings", "surveys", "callbacks"}
    if session.may("editor"):
        shows.add("news")
    if session.may("checkin"):
        shows.add("door")
    return shows
