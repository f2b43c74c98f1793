"""Start services in this process: the HTTP API of each, under /api/<name>/, plus their bus loops."""

from __future__ import annotations

from fastapi import FastAPI

from civic.services import select
from shared.clock import clock_from_settings
from shared.http.app import create_app
from shared.logs import configure_logging
from shared.settings import get_settings


def build_app(services: str | list[str] | None = None) -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    clock = clock_from_settings(settings.clock_file, settings.production)
    return create_app(select(services), settings, clock=clock)


def app() -> FastAPI:
    """Factory for ``uvicorn --factory civic.runner:app``; CIVIC_SERVICES picks the services."""
    import os

    return build_app(os.environ.get("CIVIC_SERVICES") or None)
