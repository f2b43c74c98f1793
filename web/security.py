"""CSRF protection for every form, security headers (CSP without inline script) and the cookie rules.

CSRF: a random value in a cookie (HttpOnly, SameSite=Lax, Secure on https, ``__Host-`` prefixed when secure)
and, in each form, a hidden ``csrf`` field holding the HMAC of that value under CIVIC_WEB_SECRET. A POST is
accepted only when both are there and match; pages render the field with ``{{ csrf_field() }}``. The cookie is
made on the first page a person opens, so a form works on first visit, without JavaScript.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web.settings import WebSettings

CSRF_FIELD = "csrf"

#: No inline script or style anywhere; KERN's icons are data: SVGs in its CSS.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; connect-src 'self'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    # Manage pages carry their secret in the address: no page tells another site where it came from.
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    "cross-origin-opener-policy": "same-origin",
}


class CsrfFailed(Exception):
    pass


def cookie_name(settings: WebSettings) -> str:
    return "__Host-civic_csrf" if settings.cookie_secure else "civic_csrf"


def token_for(settings: WebSettings, value: str) -> str:
    return hmac.new(settings.secret.encode(), b"csrf:" + value.encode(), hashlib.sha256).hexdigest()[:40]


def csrf_value(request: Request) -> str:
    """This person's CSRF cookie value; made for this response when the request brought none."""
    value: str | None = getattr(request.state, "csrf_value", None)
    if value is None:
        settings: WebSettings = request.app.state.web_settings
        value = request.cookies.get(cookie_name(settings))
        if not value or len(value) > 100:
            value = secrets.token_urlsafe(24)
            request.state.csrf_new = True
        request.state.csrf_value = value
    return value


def csrf_token(request: Request) -> str:
    return token_for(request.app.state.web_settings, csrf_value(request))


def verify(request: Request, form: FormData) -> None:
    settings: WebSettings = request.app.state.web_settings
    cookie = request.cookies.get(cookie_name(settings))
    sent = form.get(CSRF_FIELD)
    if not cookie or not isinstance(sent, str) or not hmac.compare_digest(sent, token_for(settings, cookie)):
        raise CsrfFailed


async def checked_form(request: Request) -> FormData:
    """The POSTed form, after the CSRF check (raises ``CsrfFailed``, shown as a page asking to reload)."""
    form = await request.form(max_files=0, max_fields=200)
    verify(request, form)
    return form


def set_csrf_cookie(request: Request, response: Response) -> None:
    if getattr(request.state, "csrf_new", False):
        settings: WebSettings = request.app.state.web_settings
        response.set_cookie(
            cookie_name(settings),
            request.state.csrf_value,
            httponly=True,
            secure=bool(settings.cookie_secure),
            samesite="lax",
            path="/",
        )


class SecurityHeaders:
    """Adds the security headers to every response of the web app (pages, static files, errors)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k.encode(), v.encode()) for k, v in HEADERS.items() if k.encode() not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
