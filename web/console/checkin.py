"""The door check-in pages of the staff console (roles ``checkin`` and ``staff``).

``/verwaltung/{tenant}/einlass`` lists today's and upcoming meetings; ``/verwaltung/{tenant}/einlass/{meeting_id}``
is the door: one text field that a USB/Bluetooth scanner types into (code, then Enter) or a person types into,
sent as a plain POST form with a nonce made for each rendering, so a retried POST (a reload, a double Enter, a
scan queued while the network was away) is counted once by the registration service. The answer is the door page
again with the result in words and colour; a reload of that answer resends the same nonce, which the service
answers as before without counting again. Camera scanning, the live counts and the queue for a lost connection
are JavaScript enhancements (web/static/console/checkin*.js); without JavaScript everything else works.

Everything goes through the registration API with the signed-in person's token: ``POST
/api/registration/meetings/{id}/checkins`` (ticket or registration id, nonce; the answers and refusals name the
person), ``GET /api/registration/staff/meetings/{id}/stats`` for the counts and ``GET
/api/registration/meetings/{id}/checkins/search`` for the name search (names, status, companions: no contact,
no ticket, so the ``checkin`` role may use it too).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from web import i18n
from web.client import ApiProblem
from web.console.layout import render
from web.console.session import StaffSession, console_session, service_token
from web.pages.common import api, check_tenant, now, settings_of
from web.rendering import language
from web.security import CSP, HEADERS, checked_form

router = APIRouter(include_in_schema=False)

BERLIN = ZoneInfo("Europe/Berlin")
ROLES = ("checkin", "staff")
#: The service takes tickets up to this length; anything longer is no ticket of ours.
MAX_CODE = 400
NONCE = re.compile(r"^[A-Za-z0-9_-]{8,100}$")
#: Search results shown at most (a name search at the door narrows, it does not list the hall).
MAX_HITS = 20

#: Only the door page may run the WebAssembly barcode reader and use the camera; everywhere else the
#: console keeps the strict policy of web/security.py.
DOOR_HEADERS = {
    "content-security-policy": CSP.replace("script-src 'self'", "script-src 'self' 'wasm-unsafe-eval'"),
    "permissions-policy": HEADERS["permissions-policy"].replace("camera=()", "camera=(self)"),
}

Outcome = Literal["admitted", "already", "cancelled", "other_meeting", "wrong_day", "unknown", "missing"]

i18n.english(
    {
        "Einlass": "Check-in",
        "Einlass: Veranstaltung wählen": "Check-in: choose an event",
        "Für welche Veranstaltung lassen Sie Menschen ein?": "Which event are you checking people in for?",
        "Heute": "Today",
        "Demnächst": "Upcoming",
        "Es gibt keine veröffentlichten Veranstaltungen für heute oder die nächsten Tage.": "There are no "
        "published events for today or the coming days.",
        "Einlass öffnen": "Open check-in",
        "Ticket-Code": "Ticket code",
        "Scannen Sie den QR-Code des Tickets oder tippen Sie den Code ein und drücken Sie die Eingabetaste.": (
            "Scan the ticket's QR code or type the code and press Enter."
        ),
        "Prüfen und einlassen": "Check and admit",
        "Kamera": "Camera",
        "Kamera ausschalten": "Turn camera off",
        "Kamerabild zum Scannen": "Camera image for scanning",
        "Halten Sie den QR-Code vor die Kamera.": "Hold the QR code in front of the camera.",
        "Die Kamera lässt sich nicht öffnen. Bitte nutzen Sie das Textfeld.": "The camera cannot be opened. "
        "Please use the text field.",
        "Eingelassen": "Admitted",
        "Bereits eingelassen": "Already checked in",
        "Abgesagt": "Cancelled",
        "Andere Veranstaltung": "Another event",
        "Anderer Tag": "Another day",
        "Unbekannter Code": "Unknown code",
        "Bitte Code eingeben": "Please enter a code",
        "Eingelassen um {time}.": "Admitted at {time}.",
        "Diese Eingabe war schon angekommen und wurde nicht noch einmal gezählt.": "This entry had already "
        "arrived and was not counted again.",
        "mit {n} Begleitperson": "with {n} companion",
        "mit {n} Begleitpersonen": "with {n} companions",
        "Dieses Ticket wurde bereits um {time} eingelassen.": "This ticket was already checked in at {time}.",
        "Dieses Ticket wurde bereits eingelassen.": "This ticket was already checked in.",
        "Diese Anmeldung wurde abgesagt. Bitte nicht einlassen.": "This registration was cancelled. "
        "Please do not admit.",
        "Dieses Ticket gilt für eine andere Veranstaltung.": "This ticket is for another event.",
        "Dieses Ticket gilt für: {title}, {when}.": "This ticket is for: {title}, {when}.",
        "Dieses Ticket gilt an einem anderen Tag: {day}.": "This ticket is valid on another day: {day}.",
        "Dieser Code ist kein gültiges Ticket dieser Veranstaltung.": "This code is not a valid ticket for this event.",
        "Bitte scannen Sie einen Ticket-Code oder tippen Sie ihn ein.": "Please scan a ticket code or type it in.",
        "Eingegebener Code": "Code entered",
        "Zahlen": "Figures",
        "Eingelassen (Personen)": "Admitted (people)",
        "Angemeldet (Personen)": "Registered (people)",
        "Noch erwartet (Anmeldungen)": "Still expected (registrations)",
        "Anmeldungen": "Registrations",
        "Plätze": "Seats",
        "Stand {time}": "As of {time}",
        "Nach Namen suchen": "Search by name",
        "Wenn ein Ticket fehlt oder sich nicht lesen lässt.": "When a ticket is missing or cannot be read.",
        "Suchen": "Search",
        "Keine Anmeldung gefunden für „{q}“.": "No registration found for “{q}”.",
        "{n} Anmeldungen gefunden für „{q}“.": "{n} registrations found for “{q}”.",
        "Die ersten {n} Treffer; bitte genauer suchen.": "The first {n} matches; please search more precisely.",
        "Name": "Name",
        "Status": "Status",
        "Begleitung": "Companions",
        "Aktion": "Action",
        "bestätigt": "confirmed",
        "Warteliste": "waiting list",
        "abgesagt": "cancelled",
        "ohne Namen": "no name",
        "Einlassen": "Admit",
        "eingelassen um {time}": "checked in at {time}",
        "Diese Veranstaltung wurde abgesagt.": "This event has been cancelled.",
        "Zur Auswahl der Veranstaltung": "To the choice of event",
        "{n} Scans warten auf Verbindung": "{n} scans waiting for the connection",
        "um": "at",
        "Keine Verbindung: Der Scan ist gespeichert und wird gesendet, sobald die Verbindung zurück ist.": "No "
        "connection: the scan is saved and will be sent as soon as the connection is back.",
    }
)


@dataclass(frozen=True)
class Scan:
    """What the door says about one scanned or typed code."""

    outcome: Outcome
    name: str | None = None
    companions: int = 0
    at: datetime | None = None
    repeat: bool = False
    other_meeting_id: UUID | None = None
    other_title: str | None = None
    other_starts_at: datetime | None = None
    valid_on: date | None = None
    code: str = ""


def normalised(code: str) -> str:
    """A code as scanners and people enter it: surrounding and inner spaces dropped (the service ignores case)."""
    return "".join(code.split())


def scan_of_answer(answer: dict[str, Any], code: str) -> Scan:
    """The service's 200 answer: admitted now, or the same nonce again (answered as before, counted once)."""
    return Scan(
        "admitted",
        name=answer.get("name"),
        companions=int(answer.get("companions") or 0),
        at=_datetime(answer.get("checked_in_at")),
        repeat=bool(answer.get("repeat")),
        code=code,
    )


def scan_of_problem(problem: ApiProblem, code: str) -> Scan:
    """The service's refusal (409 ``checkin-<reason>``; 422 for what is no ticket at all) as a door result."""
    body = problem.body
    reason = body.get("reason") if problem.status == 409 else None
    # The service names the registration it refuses (already checked in, cancelled).
    name = body.get("name") if isinstance(body.get("name"), str) else None
    companions = int(body.get("companions") or 0)
    if reason == "already_checked_in":
        return Scan("already", at=_datetime(body.get("checked_in_at")), code=code, name=name, companions=companions)
    if reason == "revoked":
        return Scan("cancelled", code=code, name=name, companions=companions)
    if reason == "wrong_meeting":
        other = body.get("ticket_meeting_id")
        return Scan("other_meeting", other_meeting_id=_uuid(other), code=code)
    if reason == "invalid_time":
        valid_on = body.get("valid_on")
        return Scan(
            "wrong_day", valid_on=date.fromisoformat(valid_on) if isinstance(valid_on, str) else None, code=code
        )
    if problem.status in (409, 422):
        return Scan("unknown", code=code)
    raise problem


def _datetime(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return value if isinstance(value, datetime) else None


def _uuid(value: Any) -> UUID | None:
    try:
        return UUID(str(value)) if value else None
    except ValueError:
        return None


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


def door_meetings(meetings: list[dict[str, Any]], at: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(today's, the next fortnight's) published meetings, by start; a meeting still running counts as today's."""
    today = at.astimezone(BERLIN).date()
    day_start = datetime.combine(today, time(0), BERLIN)
    horizon = day_start + timedelta(days=15)
    todays: list[dict[str, Any]] = []
    later: list[dict[str, Any]] = []
    for m in meetings:
        starts, ends = datetime.fromisoformat(m["starts_at"]), datetime.fromisoformat(m["ends_at"])
        if m.get("status") != "published" or ends < day_start or starts >= horizon:
            continue
        (todays if starts.astimezone(BERLIN).date() <= today else later).append(m)

    def by_start(m: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(m["starts_at"])

    return sorted(todays, key=by_start), sorted(later, key=by_start)


# --- pages ----------------------------------------------------------------------------------------------------


@router.get("/verwaltung/{tenant}/einlass")
async def choose_meeting(request: Request, tenant: str) -> Response:
    check_tenant(tenant)
    session = await console_session(request, tenant, *ROLES)
    found: list[dict[str, Any]] = await api(request).get(
        "/api/registration/meetings", request=request, params={"tenant": tenant}
    )
    todays, later = door_meetings(found, now(request))
    return render(request, "console/checkin_choose.html", session, {"todays": todays, "later": later})


@router.get("/verwaltung/{tenant}/einlass/{meeting_id}")
async def door(request: Request, tenant: str, meeting_id: UUID) -> Response:
    check_tenant(tenant)
    session = await console_session(request, tenant, *ROLES)
    query = request.query_params.get("suche", "").strip()[:100]
    return await _door_page(request, session, meeting_id, query=query)


@router.post("/verwaltung/{tenant}/einlass/{meeting_id}")
async def check_in(request: Request, tenant: str, meeting_id: UUID) -> Response:
    """One scan or typed code (or a search row's button): checked in with the form's nonce, shown on the door."""
    check_tenant(tenant)
    form = await checked_form(request)
    session = await console_session(request, tenant, *ROLES)
    code = normalised(str(form.get("code") or ""))
    nonce = str(form.get("nonce") or "")
    query = str(form.get("suche") or "").strip()[:100]
    if not NONCE.match(nonce):
        # No usable nonce (an old form): this one POST is still counted once, only its retry is not recognised.
        nonce = new_nonce()
    found = _uuid(form.get("registration_id"))
    if found is not None:
        # A search row's button: the registration found by name (its ticket missing or unreadable).
        scan = await _check_in(request, session, meeting_id, {"registration_id": str(found)}, nonce, code="")
        return await _door_page(request, session, meeting_id, scan=scan, query=query)
    if not code:
        return await _door_page(request, session, meeting_id, scan=Scan("missing"), query=query, status=422)
    if len(code) > MAX_CODE:
        scan = Scan("unknown", code=code[:40])
    else:
        scan = await _check_in(request, session, meeting_id, {"ticket": code}, nonce, code=code)
    return await _door_page(request, session, meeting_id, scan=scan, query=query)


@router.get("/verwaltung/{tenant}/einlass/{meeting_id}/zahlen")
async def figures(request: Request, tenant: str, meeting_id: UUID) -> Response:
    """The live counts for the door page's script (JSON; the page itself shows them server-rendered)."""
    check_tenant(tenant)
    session = await console_session(request, tenant, *ROLES)
    stats = await _stats(request, session, meeting_id)
    return JSONResponse(
        {
            **{k: stats[k] for k in ("checked_in", "checked_in_seats", "confirmed", "confirmed_seats", "expected")},
            "as_of": i18n.time_of(now(request), language(request)),
        },
        headers={"Cache-Control": "no-store"},
    )


# --- what the pages ask the service ---------------------------------------------------------------------------


def _token(request: Request, session: StaffSession) -> str:
    return service_token(session, settings_of(request))


async def _stats(request: Request, session: StaffSession, meeting_id: UUID) -> dict[str, Any]:
    """The service's figures, with ``expected``: confirmed registrations not checked in yet (the service's
    ``no_shows`` is null until the start, while the door opens before it)."""
    stats: dict[str, Any] = await api(request).get(
        f"/api/registration/staff/meetings/{meeting_id}/stats", request=request, token=_token(request, session)
    )
    stats["expected"] = max(stats["confirmed"] - stats["checked_in"], 0)
    return stats


async def _meeting(request: Request, session: StaffSession, meeting_id: UUID) -> dict[str, Any]:
    m: dict[str, Any] = await api(request).get(f"/api/registration/meetings/{meeting_id}", request=request)
    if m.get("tenant") != session.tenant:
        raise HTTPException(404)
    return m


async def _search(request: Request, session: StaffSession, meeting_id: UUID, query: str) -> list[dict[str, Any]]:
    """The service's door search: every word in the name, case ignored; seat holders first."""
    found: list[dict[str, Any]] = await api(request).get(
        f"/api/registration/meetings/{meeting_id}/checkins/search",
        request=request,
        params={"q": query},
        token=_token(request, session),
    )
    return found


async def _check_in(
    request: Request, session: StaffSession, meeting_id: UUID, what: dict[str, str], nonce: str, *, code: str
) -> Scan:
    """``what``: the ticket, or the registration found by name; the service's answer or refusal names the person."""
    client = api(request)
    try:
        answer = await client.post(
            f"/api/registration/meetings/{meeting_id}/checkins",
            {**what, "nonce": nonce},
            request=request,
            token=_token(request, session),
        )
    except ApiProblem as problem:
        scan = scan_of_problem(problem, code)
    else:
        scan = scan_of_answer(answer, code)
    if scan.outcome == "other_meeting" and scan.other_meeting_id is not None:
        try:
            other = await client.get(f"/api/registration/meetings/{scan.other_meeting_id}", request=request)
        except ApiProblem:
            other = None
        if other and other.get("tenant") == session.tenant:
            scan = replace(scan, other_title=other["title"], other_starts_at=datetime.fromisoformat(other["starts_at"]))
    return scan


async def _door_page(
    request: Request,
    session: StaffSession,
    meeting_id: UUID,
    *,
    scan: Scan | None = None,
    query: str = "",
    status: int = 200,
) -> Response:
    m = await _meeting(request, session, meeting_id)
    stats = await _stats(request, session, meeting_id)
    hits: list[dict[str, Any]] | None = None
    if query:
        hits = await _search(request, session, meeting_id, query)
    context = {
        "m": m,
        "stats": stats,
        "scan": scan,
        "nonce": new_nonce(),
        "query": query,
        "hits": hits[:MAX_HITS] if hits is not None else None,
        "more_hits": hits is not None and len(hits) > MAX_HITS,
        "max_hits": MAX_HITS,
        "row_nonce": new_nonce,
        "as_of": now(request),
        "door_path": f"/verwaltung/{session.tenant}/einlass/{meeting_id}",
    }
    response = render(request, "console/checkin_door.html", session, context, status=status)
    response.headers.update(DOOR_HEADERS)
    return response
