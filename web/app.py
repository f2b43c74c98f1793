"""The web client's application: ``uvicorn --factory web.app:app`` (its own process), or mounted at ``/`` of the
one-process runner in ``make up`` (civic/up.py), where it calls the APIs over HTTP on the same port."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.clock import clock_from_settings
from web import i18n
from web.client import Api, ApiProblem, ApiUnavailable
from web.console import auth as console_auth
from web.console import callbacks as console_callbacks
from web.console import checkin as console_checkin
from web.console import content as console_content
from web.console import layout as console_layout
from web.console import local as console_local
from web.console import meetings as console_meetings
from web.console import operations as console_operations
from web.console import overview as console_overview
from web.console import surveys as console_surveys
from web.console import tenants as console_tenants
from web.pages import content, meetings, site, subscriptions
from web.rendering import environment, language, render
from web.security import CsrfFailed, SecurityHeaders
from web.settings import WebSettings, get_web_settings
from web.surveys import pages as survey_pages

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"

i18n.english(
    {
        "Seite nicht gefunden": "Page not found",
        "Diese Seite gibt es nicht (mehr). Bitte prüfen Sie die Adresse.": "This page does not exist (any more). "
        "Please check the address.",
        "Zur Startseite": "To the start page",
        "Bitte laden Sie die Seite neu": "Please reload the page",
        "Das Formular war zu lange geöffnet oder Ihr Browser hat kein Cookie gesendet. Bitte laden Sie die Seite "
        "neu und senden Sie das Formular noch einmal.": "The form was open for too long or your browser sent no "
        "cookie. Please reload the page and send the form again.",
        "Zurzeit nicht erreichbar": "Not available right now",
        "Bitte versuchen Sie es in einigen Minuten noch einmal.": "Please try again in a few minutes.",
        "Dieser Dienst ist gerade nicht erreichbar. Bitte versuchen Sie es in einigen Minuten noch einmal.": "This "
        "service is not available right now. Please try again in a few minutes.",
    }
)


def create_app(settings: WebSettings | None = None, *, transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    """The web app; ``transport`` lets tests route the API client elsewhere (it still speaks HTTP)."""
    settings = settings or get_web_settings()
    api = Api(settings, transport=transport)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await api.close()

    app = FastAPI(title="civic web", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.web_settings = settings
    app.state.web_env = environment()
    app.state.api = api
    app.state.clock = clock_from_settings(settings.clock_file, settings.production)
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # Fixed paths first; the tenant's pages (/<tenant>/...) last, as they match any first segment.
    # Survey pages (/umfrage/<tenant>/<slug>) are a router of their own, included before site.tenant_router.
    app.include_router(site.router)
    # The staff console under /verwaltung (web/console/): sign-in first, the tenant's pages after.
    app.include_router(console_auth.router)
    app.include_router(console_local.router)
    app.include_router(console_tenants.router)
    app.include_router(console_operations.router)
    app.include_router(console_overview.router)
    app.include_router(console_meetings.router)
    app.include_router(console_content.router)
    app.include_router(console_callbacks.router)
    app.include_router(console_surveys.router)
    app.include_router(subscriptions.router)
    app.include_router(meetings.manage_router)
    app.include_router(meetings.router)
    app.include_router(content.router)
    app.include_router(survey_pages.router)
    app.include_router(console_checkin.router)
    app.include_router(site.tenant_router)
    install_error_pages(app)
    console_layout.install(app)
    return app


def install_error_pages(app: FastAPI) -> None:
    """Every error a person can meet is a page in their language, never a JSON body."""

    def page(request: Request, status: int, heading: str, message: str) -> Response:
        _ = i18n.gettext(language(request))
        context = {"heading": _(heading), "message": _(message), "back_href": "/", "back_text": _("Zur Startseite")}
        return render(request, "pages/error.html", context, status=status)

    def not_found(request: Request) -> Response:
        if request.url.path.startswith("/api/"):
            # Mounted at / of ``make up``: an unknown API path stays a problem document, as behind the gateway.
            body = {"type": "about:blank", "title": "Not Found", "status": 404}
            return JSONResponse(body, status_code=404, media_type="application/problem+json")
        return page(
            request, 404, "Seite nicht gefunden", "Diese Seite gibt es nicht (mehr). Bitte prüfen Sie die Adresse."
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            return not_found(request)
        if exc.status_code != 404:
            log.info("web: HTTP %s on %s", exc.status_code, request.url.path)
        return not_found(request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return not_found(request)

    @app.exception_handler(ApiProblem)
    async def _problem(request: Request, exc: ApiProblem) -> Response:
        if exc.status in (404, 410):
            return not_found(request)
        from web.problems import sentence

        _ = i18n.gettext(language(request))
        return render(
            request,
            "pages/error.html",
            {
                "heading": _("Das hat leider nicht geklappt."),
                "message": sentence(exc, language(request)),
                "back_href": "/",
                "back_text": _("Zur Startseite"),
            },
            status=exc.status if exc.status < 500 else 503,
        )

    @app.exception_handler(ApiUnavailable)
    async def _down(request: Request, exc: ApiUnavailable) -> Response:
        log.warning("web: API unavailable: %s", exc)
        return page(
            request,
            503,
            "Zurzeit nicht erreichbar",
            "Dieser Dienst ist gerade nicht erreichbar. Bitte versuchen Sie es in einigen Minuten noch einmal.",
        )

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        log.exception("web: error on %s", request.url.path, exc_info=exc)
        return page(
            request, 500, "Das hat leider nicht geklappt.", "Bitte versuchen Sie es in einigen Minuten noch einmal."
        )

    @app.exception_handler(CsrfFailed)
    async def _csrf(request: Request, exc: CsrfFailed) -> Response:
        return page(
            request,
            403,
            "Bitte laden Sie die Seite neu",
            "Das Formular war zu lange geöffnet oder Ihr Browser hat kein Cookie gesendet. Bitte laden Sie die Seite "
            "neu und senden Sie das Formular noch einmal.",
        )


def app() -> FastAPI:
    """Factory for ``uvicorn --factory web.app:app``."""
    from shared.logs import configure_logging
    from shared.settings import get_settings

    s = get_settings()
    configure_logging(s.log_level, s.log_json)
    return create_app()
