"""What every console page shares: ``render`` with the console layout, and the pages for "sign in first"
(a redirect) and "not for you" (403, naming nothing of the tenant asked for)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from web import i18n
from web.console.session import NoAccess, SignInNeeded, StaffSession, signed_in
from web.rendering import render as render_page
from web.security import CSP
from web.settings import WebSettings

i18n.english(
    {
        "Verwaltung": "Administration",
        "Angemeldet als": "Signed in as",
        "Mandant wechseln": "Switch tenant",
        "Abmelden": "Sign out",
        "Bereiche der Verwaltung": "Administration areas",
        "Übersicht": "Overview",
        "Veranstaltungen": "Events",
        "Einlass": "Check-in",
        "Rückrufe": "Call-backs",
        "Umfragen": "Surveys",
        "Inhalte": "Content",
        "Benachrichtigungen": "Notifications",
        "Betrieb": "Operations",
        "Zu den Seiten für Bürgerinnen und Bürger": "To the public pages",
        "Kein Zugriff": "No access",
        "Mit Ihrer Anmeldung können Sie diese Seite nicht öffnen. Wenn Sie sie brauchen, wenden Sie sich an die "
        "Stelle, die Ihre Zugänge verwaltet.": "Your sign-in does not allow this page. If you need it, ask whoever "
        "manages your access.",
        "Zu Ihrer Übersicht": "To your overview",
        "Mandant wählen": "Choose a tenant",
    }
)


def render(
    request: Request,
    template: str,
    session: StaffSession | None,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
) -> HTMLResponse:
    """A console page (extending ``console/base.html``) for ``session``'s tenant."""
    page = {"session": session, "signed_in": signed_in(request), **(context or {})}
    response = render_page(request, template, page, status=status, tenant=session.tenant if session else None)
    response.headers["X-Robots-Tag"] = "noindex"
    if origins := provider_origins(request):
        # Signing out posts here and is then sent on to the provider's end_session_endpoint; browsers apply
        # form-action to that redirect too, so the provider's origin is allowed as a form's destination.
        response.headers["Content-Security-Policy"] = CSP.replace("form-action 'self'", f"form-action 'self' {origins}")
    return response


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else None


def provider_origins(request: Request) -> str:
    """The provider's origins a sign-out may be redirected to: its issuer's, and its end-session endpoint's."""
    settings: WebSettings = request.app.state.web_settings
    if not settings.oidc_issuer:
        return ""
    found = [_origin(settings.oidc_issuer)]
    client = getattr(request.app.state, "oidc_client", None)
    if client is not None and client.server_metadata.get("end_session_endpoint"):
        found.append(_origin(str(client.server_metadata["end_session_endpoint"])))
    return " ".join(dict.fromkeys(o for o in found if o))


def sign_in_address(next_path: str | None = None, expired: bool = False) -> str:
    query = []
    if next_path:
        query.append("next=" + quote(next_path, safe="/"))
    if expired:
        query.append("abgelaufen=1")
    return "/verwaltung/anmelden" + ("?" + "&".join(query) if query else "")


def safe_next(value: str | None) -> str | None:
    """A path inside the console to return to after signing in; anything else (another site) is dropped."""
    if not value or not value.startswith("/verwaltung/") or value.startswith("//") or "\\" in value:
        return None
    return value if len(value) <= 500 else None


def home_of(request: Request) -> str:
    """Where a signed-in person starts: their tenant's overview, or the choice of tenant."""
    who = signed_in(request)
    if who is None:
        return sign_in_address()
    if who.tenant:
        return f"/verwaltung/{who.tenant}/"
    return "/verwaltung/mandant"


def no_access(request: Request) -> Response:
    _ = i18n.gettext(i18n.pick(request.query_params.get("lang"), request.cookies.get(i18n.LANG_COOKIE)))
    who = signed_in(request)
    session = who.session(who.tenant) if who and who.tenant else None
    context = {
        "heading": _("Kein Zugriff"),
        "message": _(
            "Mit Ihrer Anmeldung können Sie diese Seite nicht öffnen. Wenn Sie sie brauchen, wenden Sie sich an "
            "die Stelle, die Ihre Zugänge verwaltet."
        ),
        "back_href": home_of(request),
        "back_text": _("Zu Ihrer Übersicht") if session else _("Mandant wählen"),
        # The page names nothing of what was asked for, not even in the language switch's link.
        "here": home_of(request),
    }
    return render(request, "console/message.html", session, context, status=403)


def install(app: FastAPI) -> None:
    @app.exception_handler(SignInNeeded)
    async def _sign_in(request: Request, exc: SignInNeeded) -> Response:
        return RedirectResponse(sign_in_address(exc.next_path, exc.expired), status_code=303)

    @app.exception_handler(NoAccess)
    async def _no_access(request: Request, exc: NoAccess) -> Response:
        return no_access(request)
