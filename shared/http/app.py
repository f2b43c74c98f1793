"""The FastAPI application for one or several services in a process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared import db
from shared.clock import Clock
from shared.http import problems
from shared.http.guard import InputGuard
from shared.http.requests import RequestIdMiddleware
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
        app.state.civic = {}
        for rt in runtimes:
            ctx = await rt.start()
            app.state.civic[ctx.name] = ctx
        app.state.runtimes = runtimes
        try:
            yield
        finally:
            for rt in reversed(runtimes):
                await rt.stop()

    app = FastAPI(title=title, lifespan=lifespan, docs_url="/docs", openapi_url="/openapi.json")
    app.add_middleware(InputGuard, app_ref=lambda: app)  # inside the request id, so errors log with it
    app.add_middleware(RequestIdMiddleware)
    problems.install(app)

    for d in definitions:
        app.include_router(d.router, prefix=f"/api/{d.name}")
        if d.root_router is not None:
            app.include_router(d.root_router)
        _add_service_documents(app, d)

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

        return asyncapi_document(service=d.name)

    app.add_api_route(f"/api/{d.name}/openapi.json", openapi, include_in_schema=False)
    app.add_api_route(f"/api/{d.name}/asyncapi.json", asyncapi, include_in_schema=False)
