"""The console against the real services (PostgreSQL, Redis, the bus) and a real OpenID provider on loopback.

The web app and the services run in this process behind ``httpx.ASGITransport``; the provider
(oidc-provider-mock) is a real HTTP server on a thread. One ``httpx.AsyncClient`` reaches both, as a browser
does: the web app at ``http://civic.test`` and the provider at its own ``http://localhost:<port>``, following
redirects between them, with a cookie jar of its own.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from civic.services import select
from shared.http.app import create_app
from shared.settings import Settings
from tests.console_support import Provider, running_provider
from web.app import create_app as create_web
from web.settings import WebSettings

BASE = "http://civic.test"
REDIRECT = BASE + "/verwaltung/anmelden/antwort"


@pytest.fixture(scope="session")
def provider() -> Iterator[Provider]:
    with running_provider() as p:
        yield p


@dataclass
class Console:
    web: FastAPI
    api: httpx.AsyncClient  # the services, directly (set-up with staff tokens)
    tenant: str
    other: str  # a second tenant, whose data nobody of ``tenant`` may see

    def browser(self, provider: Provider | None = None, **kwargs: Any) -> httpx.AsyncClient:
        """A fresh "browser": own cookies, reaching the web app and (when given) the provider."""
        mounts: dict[str, httpx.AsyncBaseTransport] = {BASE: httpx.ASGITransport(app=self.web)}
        if provider is not None:
            mounts[provider.issuer] = httpx.AsyncHTTPTransport()
        return httpx.AsyncClient(mounts=mounts, base_url=BASE, timeout=20, **kwargs)


@pytest.fixture
async def make_console(settings: Settings) -> AsyncIterator[Callable[..., Any]]:
    """``async with make_console(**web_settings) as console``: the services and a web app with those settings."""
    settings = settings.model_copy(update={"public_base_url": BASE})
    services = create_app(select(None), settings)
    tenant, other = f"kreis-{secrets.token_hex(3)}", f"stadt-{secrets.token_hex(3)}"

    @asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[Console]:
        web_settings = WebSettings(
            **{
                "api_base_url": BASE,
                "public_base_url": BASE,
                "tenants": {tenant: {"name": "Kreis Prüfland"}, other: {"name": "Stadt Anderswo"}},
                **overrides,
            }
        )
        web = create_web(web_settings, transport=httpx.ASGITransport(app=services))
        api = httpx.AsyncClient(transport=httpx.ASGITransport(app=services), base_url=BASE)
        try:
            yield Console(web, api, tenant, other)
        finally:
            await api.aclose()
            await web.state.api.close()

    async with services.router.lifespan_context(services):
        yield make


def oidc_settings(provider: Provider, **overrides: Any) -> dict[str, Any]:
    client_id, secret = provider.register_client(REDIRECT)
    return {
        "oidc_issuer": provider.issuer,
        "oidc_client_id": client_id,
        "oidc_client_secret": secret,
        **overrides,
    }
