"""Start services in this process: the HTTP API of each, under /api/<name>/, plus their bus loops."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from civic.services import select
from shared.clock import clock_from_settings
from shared.http.app import create_app
from shared.logs import configure_logging
from shared.settings import get_settings
from shared.tracing import configure_tracing


def build_app(services: str | list[str] | None = None) -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    definitions = select(services)
    configure_tracing([d.name for d in definitions])
    clock = clock_from_settings(settings.clock_file, settings.production)
    app = create_app(definitions, settings, clock=clock)
    settle_collector()
    return app


#: Young collections this far apart: a request's objects are nearly all freed by reference counting anyway.
GC_YOUNG_THRESHOLD = 20_000


def settle_collector() -> None:
    """Tune Python's cyclic garbage collector for a long-running server, once its app is built.

    What start-up made (modules, routes, schemas) lives as long as the process: frozen, the collector no
    longer walks it on every full collection. With the default thresholds the collector took about a fifth of
    the registration service's CPU in a rush (timed with ``gc.callbacks``), most of it in full collections
    walking start-up objects; after this, almost none.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def app() -> FastAPI:
    """Factory for ``uvicorn --factory civic.runner:app``; CIVIC_SERVICES picks the services."""
    import os

    return build_app(os.environ.get("CIVIC_SERVICES") or None)
