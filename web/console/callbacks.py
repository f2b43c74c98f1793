"""``/verwaltung/{tenant}/rueckrufe`` (role ``staff``): the call-back list.

People without an e-mail address (registered by phone or in person) hear nothing when they move up from the
waiting list or their meeting changes or is cancelled; the registration service puts them on its call-back list
in the same transaction as the change. This page lists the open calls (name, phone as a ``tel:`` link, meeting,
what to tell them) with an "Anruf erledigt" button each, and the calls done below. Everything comes from the
registration API's staff routes with the signed-in person's token; the web client keeps nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import phonenumbers
from fastapi import APIRouter, Request
from fastapi.responses import Response

from web import i18n
from web.console.layout import render
from web.console.meetings import stamp
from web.console.session import console_session, service_token
from web.pages.common import api, check_tenant, see_other, settings_of
from web.security import checked_form

router = APIRouter(include_in_schema=False)

API = "/api/registration/staff/callbacks"

#: What to tell the person, by the service's reason.
REASONS = {
    "promoted": "Von der Warteliste nachgerückt: hat jetzt einen Platz",
    "meeting_changed": "Veranstaltung geändert (Zeit oder Ort)",
    "meeting_cancelled": "Veranstaltung abgesagt",
}

i18n.english(
    {
        "Rückrufe": "Call-backs",
        "Rückrufliste": "Call-back list",
        "Diese Menschen haben keine E-Mail-Adresse angegeben und erfahren von der Änderung nur, wenn Sie sie "
        "anrufen.": "These people gave no e-mail address and hear of the change only if you call them.",
        "Anzurufen": "To call",
        "Niemand wartet auf einen Anruf.": "Nobody is waiting for a call.",
        "Erledigt": "Done",
        "Noch keine erledigten Anrufe.": "No calls done yet.",
        "Name": "Name",
        "Telefon": "Phone",
        "Veranstaltung": "Event",
        "Anlass": "Reason",
        "Seit": "Since",
        "Erledigt am": "Done on",
        "Aktion": "Action",
        "Anruf erledigt": "Call done",
        "ohne Namen": "no name",
        "Der Anruf bei {name} ist als erledigt vermerkt.": "The call to {name} is marked done.",
        "Von der Warteliste nachgerückt: hat jetzt einen Platz": "Moved up from the waiting list: now has a seat",
        "Veranstaltung geändert (Zeit oder Ort)": "Event changed (time or place)",
        "Veranstaltung abgesagt": "Event cancelled",
        "{n} offene Anrufe": "{n} open calls",
        "1 offener Anruf": "1 open call",
    }
)


def phone_text(number: str | None) -> str:
    """``+49 481 971234``: the stored E.164 number as people read it aloud (the ``tel:`` link keeps E.164)."""
    if not number:
        return ""
    try:
        parsed = phonenumbers.parse(number, "DE")
    except phonenumbers.NumberParseException:
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


@router.get("/verwaltung/{tenant}/rueckrufe")
async def callbacks(request: Request, tenant: str) -> Response:
    check_tenant(tenant)
    session = await console_session(request, tenant, "staff")
    client = api(request)
    token = service_token(session, settings_of(request))
    open_calls, done_calls = await asyncio.gather(
        client.get(API, request=request, token=token, params={"state": "open"}),
        client.get(API, request=request, token=token, params={"state": "done"}),
    )
    marked = request.query_params.get("erledigt", "")
    context: dict[str, Any] = {
        "open_calls": open_calls,
        "done_calls": done_calls,
        "reasons": REASONS,
        "phone_text": phone_text,
        "stamp": stamp,
        "marked": next((c for c in done_calls if str(c["id"]) == marked), None),
    }
    return render(request, "console/callbacks.html", session, context)


@router.post("/verwaltung/{tenant}/rueckrufe/{callback_id}/erledigt")
async def mark_done(request: Request, tenant: str, callback_id: UUID) -> Response:
    """The call made (a second POST of the same form changes nothing: the service keeps the first mark)."""
    check_tenant(tenant)
    await checked_form(request)
    session = await console_session(request, tenant, "staff")
    await api(request).post(
        f"{API}/{callback_id}/done", None, request=request, token=service_token(session, settings_of(request))
    )
    return see_other(f"/verwaltung/{tenant}/rueckrufe?erledigt={callback_id}#erledigt")
