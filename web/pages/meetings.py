"""Meeting pages: the meeting with its registration form, the result after registering, the manage page from the
mail (ticket, calendar file, cancelling through a confirmation page and a POST), and the meeting's .ics file."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from shared import qr
from web import i18n
from web.client import ApiProblem
from web.pages import registration_form as rf
from web.pages.common import api, check_tenant, lang_of, now, see_other
from web.problems import FormErrors, form_errors
from web.rendering import render
from web.security import checked_form

router = APIRouter(include_in_schema=False)
manage_router = APIRouter(include_in_schema=False)

i18n.english(
    {
        "Veranstaltung": "Event",
        "Wann": "When",
        "Wo": "Where",
        "Barrierefreiheit": "Accessibility",
        "Plätze": "Seats",
        "Noch {left} von {capacity} Plätzen frei": "{left} of {capacity} seats left",
        "Noch Plätze frei": "Seats available",
        "Alle Plätze sind vergeben. Sie können sich auf die Warteliste setzen lassen.": "All seats are taken. "
        "You can join the waiting list.",
        "Alle Plätze sind vergeben.": "All seats are taken.",
        "Anmeldung bis {when}": "Register by {when}",
        "Die Anmeldung beginnt am {when}.": "Registration opens on {when}.",
        "Die Anmeldung ist geschlossen.": "Registration is closed.",
        "Diese Veranstaltung wurde abgesagt.": "This event has been cancelled.",
        "Termin in den Kalender (.ics)": "Add to calendar (.ics)",
        "Anmelden": "Register",
        "Verbindlich anmelden": "Register",
        "Auf die Warteliste setzen": "Join the waiting list",
        "Pflichtangaben sind nicht besonders gekennzeichnet; freiwillige Angaben sind mit „(freiwillig)“ "
        "markiert.": "Fields not marked “(optional)” are required.",
        "Datenschutzhinweise": "Privacy notice",
        "Fehler:": "Error:",
        "Es gibt ein Problem": "There is a problem",
        "Ihre Anmeldung": "Your registration",
        "Sie sind angemeldet": "You are registered",
        "Sie stehen auf der Warteliste": "You are on the waiting list",
        "Ihre Anmeldung ist bestätigt.": "Your registration is confirmed.",
        "Ihre Anmeldung ist bestätigt (mit {n} Begleitperson).": "Your registration is confirmed (with {n} companion).",
        "Ihre Anmeldung ist bestätigt (mit {n} Begleitpersonen).": "Your registration is confirmed (with {n} "
        "companions).",
        "Die Veranstaltung ist ausgebucht. Sie stehen auf Platz {position} der Warteliste. Wird ein Platz frei, "
        "rücken Sie automatisch nach und erhalten eine Nachricht.": "The event is fully booked. You are number "
        "{position} on the waiting list. If a seat becomes free, you move up automatically and we let you know.",
        "Wir haben Ihnen eine E-Mail mit allen Angaben geschickt.": "We have sent you an e-mail with all the details.",
        "Ticket": "Ticket",
        "QR-Code Ihres Tickets": "QR code of your ticket",
        "Bitte zeigen Sie diesen QR-Code am Einlass vor.": "Please show this QR code at the entrance.",
        "Ticket-Code": "Ticket code",
        "Anmeldung ansehen oder absagen": "View or cancel your registration",
        "Anmeldung absagen": "Cancel registration",
        "Möchten Sie Ihre Anmeldung wirklich absagen?": "Do you really want to cancel your registration?",
        "Ihr Platz wird frei für die nächste Person auf der Warteliste. Das lässt sich nicht rückgängig "
        "machen.": "Your seat goes to the next person on the waiting list. This cannot be undone.",
        "Ja, Anmeldung absagen": "Yes, cancel my registration",
        "Nein, zurück zur Anmeldung": "No, back to my registration",
        "Sie haben Ihre Anmeldung abgesagt.": "You have cancelled your registration.",
        "Diese Anmeldung ist abgesagt.": "This registration is cancelled.",
        "Schade, dass Sie nicht kommen können.": "We are sorry you cannot come.",
        "Status": "Status",
        "bestätigt": "confirmed",
        "Warteliste, Platz {position}": "waiting list, number {position}",
        "abgesagt": "cancelled",
        "Name": "Name",
        "Zur Veranstaltung": "To the event",
        "Zur Übersicht": "To the overview",
        "Anmeldung gespeichert": "Registration saved",
        "Anmeldung abgesagt": "Registration cancelled",
        "Ihr Bedarf": "What you need",
    }
)


async def _meeting(request: Request, tenant: str, meeting_id: UUID) -> dict[str, Any]:
    m: dict[str, Any] = await api(request).get(f"/api/registration/meetings/{meeting_id}", request=request)
    if m.get("tenant") != tenant:
        raise HTTPException(404)
    return m


def _meeting_page(
    request: Request,
    tenant: str,
    m: dict[str, Any],
    *,
    values: dict[str, Any] | None = None,
    errors: FormErrors | None = None,
    status: int = 200,
) -> Response:
    lang = lang_of(request)
    state = rf.registration_state(m, now(request))
    context = {
        "m": m,
        "state": state,
        "values": values or {"companions": "0"},
        "errors": errors or FormErrors(),
        "age_hint": rf.age_hint(m, lang) if (m.get("min_age") is not None or m.get("max_age") is not None) else "",
    }
    return render(request, "pages/meeting.html", context, status=status, tenant=tenant)


@router.get("/{tenant}/termine/{meeting_id}")
async def meeting_page(request: Request, tenant: str, meeting_id: UUID) -> Response:
    check_tenant(tenant)
    return _meeting_page(request, tenant, await _meeting(request, tenant, meeting_id))


@router.post("/{tenant}/termine/{meeting_id}")
async def register(request: Request, tenant: str, meeting_id: UUID) -> Response:
    """Register with the form; on success on to the result page (redirect-after-POST)."""
    check_tenant(tenant)
    form = await checked_form(request)
    m = await _meeting(request, tenant, meeting_id)
    lang = lang_of(request)
    multi = {k: [v for v in form.getlist(k) if isinstance(v, str)] for k in form}
    sub = rf.read(multi, m, lang)
    if sub.errors:
        sub.errors.summary = ""
        return _meeting_page(request, tenant, m, values=sub.values, errors=sub.errors, status=422)
    try:
        out = await api(request).post(
            f"/api/registration/meetings/{meeting_id}/registrations", sub.body, request=request
        )
    except ApiProblem as problem:
        if problem.status == 404:
            raise
        errors = form_errors(problem, rf.labels(m, lang), lang, rf.field_names(m))
        if errors.fields:
            errors.summary = ""
        # The seat count or window may have changed meanwhile: show the meeting as it is now.
        fresh = await _meeting(request, tenant, meeting_id)
        return _meeting_page(request, tenant, fresh, values=sub.values, errors=errors, status=problem.status)
    return see_other(f"/anmeldung/{out['secret']}/ergebnis")


@router.get("/{tenant}/termine/{meeting_id}/termin.ics")
async def meeting_ics(request: Request, tenant: str, meeting_id: UUID) -> Response:
    check_tenant(tenant)
    r = await api(request).request(
        "GET", f"/api/registration/meetings/{meeting_id}/calendar.ics", request=request, accept="text/calendar"
    )
    return Response(
        r.content,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="termin.ics"', "Cache-Control": "no-store"},
    )


# -- the registration, from the mail's link ----------------------------------------------------------------------


async def _registration(request: Request, secret: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if len(secret) > 200:
        raise HTTPException(404)
    client = api(request)
    reg: dict[str, Any] = await client.get(f"/api/registration/registrations/{secret}", request=request)
    meeting: dict[str, Any] = await client.get(f"/api/registration/meetings/{reg['meeting_id']}", request=request)
    return reg, meeting


@manage_router.get("/anmeldung/{secret}/ergebnis")
async def result(request: Request, secret: str) -> Response:
    """What the person sees right after registering: the same as the mail says."""
    reg, m = await _registration(request, secret)
    context = {"reg": reg, "m": m, "secret": secret}
    return render(request, "pages/registration_result.html", context, tenant=m["tenant"])


@manage_router.get("/anmeldung/{secret}")
async def manage(request: Request, secret: str) -> Response:
    reg, m = await _registration(request, secret)
    context = {
        "reg": reg,
        "m": m,
        "secret": secret,
        "just_cancelled": request.query_params.get("abgesagt") == "1",
        "can_cancel": reg["status"] != "cancelled"
        and rf.registration_state(m, now(request)) != "cancelled"
        and datetime.fromisoformat(m["ends_at"]) > now(request),
    }
    return render(request, "pages/manage.html", context, tenant=m["tenant"])


@manage_router.get("/anmeldung/{secret}/ticket.png")
async def ticket_image(request: Request, secret: str) -> Response:
    reg, _m = await _registration(request, secret)
    if not reg.get("ticket_code"):
        raise HTTPException(404)
    # Eight pixels a module: a ticket code is 41 modules wide, with a narrow quiet zone (the page is white).
    image = qr.png(reg["ticket_code"], size=360, border=2)
    return Response(image, media_type="image/png", headers={"Cache-Control": "no-store"})


@manage_router.get("/anmeldung/{secret}/absagen")
async def cancel_confirm(request: Request, secret: str) -> Response:
    """The confirmation page: a link in a mail never cancels by itself (mail scanners follow links)."""
    reg, m = await _registration(request, secret)
    if reg["status"] == "cancelled":
        return see_other(f"/anmeldung/{secret}")
    return render(request, "pages/cancel.html", {"reg": reg, "m": m, "secret": secret}, tenant=m["tenant"])


@manage_router.post("/anmeldung/{secret}/absagen")
async def cancel(request: Request, secret: str) -> Response:
    await checked_form(request)
    if len(secret) > 200:
        raise HTTPException(404)
    await api(request).delete(f"/api/registration/registrations/{secret}", request=request)
    return see_other(f"/anmeldung/{secret}?abgesagt=1")
