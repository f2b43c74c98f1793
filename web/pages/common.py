"""What page modules share: the API client of the app, the page language, tenant checks."""

from __future__ import annotations

import re
from datetime import datetime

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse

from shared.clock import Clock
from web.client import Api
from web.i18n import Language
from web.rendering import language
from web.settings import WebSettings

TENANT = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
#: First path segments that are not tenants (the web client's own paths and the services').
RESERVED = {
    "api",
    "q",
    "static",
    "umfrage",
    "anmeldung",
    "abo",
    "kurzlink",
    "sprache",
    "lizenzen",
    "_tenant",
    "dev",
    "verwaltung",
}


def api(request: Request) -> Api:
    client: Api = request.app.state.api
    return client


def settings_of(request: Request) -> WebSettings:
    s: WebSettings = request.app.state.web_settings
    return s


def lang_of(request: Request) -> Language:
    return language(request)


def now(request: Request) -> datetime:
    """The clock the services use too (a file in tests, the system's otherwise)."""
    clock: Clock = request.app.state.clock
    return clock.now()


def check_tenant(tenant: str) -> str:
    if len(tenant) > 63 or not TENANT.match(tenant) or tenant in RESERVED:
        raise HTTPException(404)
    return tenant


def see_other(location: str) -> RedirectResponse:
    """Redirect-after-POST."""
    return RedirectResponse(location, status_code=303)
