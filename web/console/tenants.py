"""``/verwaltung``: where a signed-in person starts, and the explicit choice of tenant for people with several."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from web import i18n
from web.console import session as sessions
from web.console.layout import home_of, render, safe_next, sign_in_address
from web.pages.common import see_other, settings_of
from web.security import checked_form

router = APIRouter(include_in_schema=False)

i18n.english(
    {
        "Für welchen Mandanten arbeiten Sie?": "Which tenant are you working for?",
        "Sie können mehrere Mandanten betreuen. Die Verwaltung zeigt immer nur einen; wechseln können Sie "
        "jederzeit oben über „Mandant wechseln“.": "You look after several tenants. The console always shows "
        "one; you can switch at any time with “Switch tenant” at the top.",
        "Weiter": "Continue",
        "zurzeit gewählt": "currently chosen",
    }
)


@router.get("/verwaltung")
@router.get("/verwaltung/")
async def console_home(request: Request) -> Response:
    return RedirectResponse(home_of(request), status_code=303)


@router.get("/verwaltung/mandant")
async def choose_form(request: Request, next: str | None = None) -> Response:
    who = sessions.signed_in(request)
    if who is None:
        return RedirectResponse(
            sign_in_address("/verwaltung/mandant", sessions.had_session_cookie(request)), status_code=303
        )
    sites = settings_of(request)
    options = [(t, sites.site(t).name) for t in who.tenants]
    session = who.session(who.tenant) if who.tenant else None
    return render(
        request,
        "console/choose_tenant.html",
        session,
        {"options": options, "current": who.tenant, "next": safe_next(next) or ""},
    )


@router.post("/verwaltung/mandant")
async def choose(request: Request) -> Response:
    form = await checked_form(request)
    who = sessions.signed_in(request)
    if who is None:
        return see_other(sign_in_address("/verwaltung/mandant", sessions.had_session_cookie(request)))
    tenant = str(form.get("tenant") or "")
    if tenant not in who.tenants:
        raise sessions.NoAccess(who)
    next_path = safe_next(str(form.get("next") or ""))
    on_tenant = next_path and next_path.startswith(f"/verwaltung/{tenant}/")
    response = see_other(next_path if next_path and on_tenant else f"/verwaltung/{tenant}/")
    sessions.choose_tenant(request, response, who, tenant)
    return response
