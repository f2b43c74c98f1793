"""The FastAPI application for one or several services in a process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.staticfiles import StaticFiles

from shared import db, tracing
from shared.clock import Clock
from shared.http import dead_letters, openapi, outages, problems
from shared.http.guard import InputGuard
from shared.http.metrics import MetricsMiddleware
from shared.http.requests import RequestIdMiddleware
from shared.privacy import share_keyrings
from shared.service import ServiceDefinition, ServiceRuntime
from shared.settings import Settings


def create_app(
    definitions: Sequence[ServiceDefinition],
    settings: Settings,
    *,
    clock: Clock | None = None,
    migrate: bool = True,
    background: bool = True,
    title: str = "civic",
) -> FastAPI:
    runtimes = [ServiceRuntime(d, settings, clock=clock, background=background) for d in definitions]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if migrate:
            for d in definitions:
                await db.migrate(settings.database_url, d.schema, d.all_migrations())
            await share_keyrings(settings.database_url, definitions)
        app.state.civic = {}
        for rt in runtimes:
            ctx = await rt.start()
            app.state.civic[ctx.name] = ctx
        app.state.runtimes = runtimes
        try:
            yield
        finally:
            # Together: each waits for its loops' current blocking reads, which need not add up.
            await asyncio.gather(*(rt.stop() for rt in reversed(runtimes)))

    # Swagger UI from civic's own files (shared/http/static/swagger-ui), not from a CDN; no ReDoc (a CDN too).
    app = FastAPI(title=title, lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    app.add_middleware(InputGuard, app_ref=lambda: app)  # inside the request id, so errors log with it
    app.add_middleware(RequestIdMiddleware)
    if tracing.enabled():
        app.add_middleware(tracing.TracingMiddleware)
    app.add_middleware(MetricsMiddleware)  # outermost: it times what the request id middleware does too
    problems.install(app)
    outages.install(app)
    _complete_openapi(app, {k: v for d in definitions for k, v in d.links.items()})
    _add_docs(app, "", "/openapi.json", title)

    for d in definitions:
        ids = _operation_ids(d.name)
        app.include_router(d.router, prefix=f"/api/{d.name}", generate_unique_id_function=ids)
        # Every service's dead letters for operators (role admin): the ``civic dlq`` commands over HTTP.
        app.include_router(
            dead_letters.router_for(d.name),
            prefix=f"/api/{d.name}/admin/dead-letters",
            generate_unique_id_function=ids,
        )
        if d.root_router is not None:
            app.include_router(d.root_router, generate_unique_id_function=ids)
        _add_service_documents(app, d)
        _add_docs(app, f"/api/{d.name}", f"/api/{d.name}/openapi.json", f"civic {d.name}")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> Response:
        checks: dict[str, str] = {}
        for name, ctx in getattr(request.app.state, "civic", {}).items():
            try:
                async with asyncio.timeout(2):
                    await ctx.pool.fetchval("select 1")
                    await ctx.redis.ping()
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"unavailable: {type(exc).__name__}"
        ready = bool(checks) and all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "services": checks}, status_code=200 if ready else 503
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


def _operation_ids(service: str) -> Callable[[APIRoute], str]:
    """Operation ids ``<service>.<function name>``: short, stable, and what ``openapi.links`` names."""

    def operation_id(route: APIRoute) -> str:
        return f"{service}.{route.name}"

    return operation_id


def _complete_openapi(app: FastAPI, links: openapi.Links) -> None:
    """FastAPI's document, completed once with every problem each operation can answer (shared/http/openapi.py)."""
    generate = app.openapi

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi.complete(generate(), links)
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]


SWAGGER_UI = Path(__file__).parent / "static" / "swagger-ui"


def _add_docs(app: FastAPI, base: str, document: str, title: str) -> None:
    """Swagger UI at ``<base>/docs`` for ``document``, its assets under ``<base>/docs/assets/``."""
    assets = f"{base}/docs/assets"
    app.mount(assets, StaticFiles(directory=SWAGGER_UI), name=f"swagger-ui{base.replace('/', '-')}")

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=document,
            title=f"{title} API",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon-32x32.png",
            # No validator badge: it would send the document to validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
        )

    app.add_api_route(f"{base}/docs", docs, include_in_schema=False)


def _add_service_documents(app: FastAPI, d: ServiceDefinition) -> None:
    """Each service's own OpenAPI and AsyncAPI documents under its prefix, as behind the gateway."""
    cache: dict[str, Any] = {}

    async def openapi() -> dict[str, Any]:
        if "doc" not in cache:
            # Cut from the app's document: FastAPI resolves included routers lazily, so their routes are
            # not listed in app.routes.
            full = app.openapi()
            prefix = f"/api/{d.name}/"
            own = {p: v for p, v in full.get("paths", {}).items() if p.startswith(prefix)}
            cache["doc"] = {**full, "info": {"title": f"civic {d.name}", "version": "1"}, "paths": own}
        doc: dict[str, Any] = cache["doc"]
        return doc

    async def asyncapi() -> dict[str, Any]:
        from shared.contracts.asyncapi import asyncapi_document

        # What it publishes and what it receives: its subscriptions are its consumer group's operations.
        return asyncapi_document(service=d.name, consumers={d.name: d.event_types})

    app.add_api_route(f"/api/{d.name}/openapi.json", openapi, include_in_schema=False)
    app.add_api_route(f"/api/{d.name}/asyncapi.json", asyncapi, include_in_schema=False)
