"""The survey pages against the real surveys service: the service's app (real PostgreSQL and Redis, a frozen
clock) and the web app whose API client speaks HTTP to it, and a browser-like client for the pages that
keeps cookies, reads the CSRF field from each form and follows nothing by itself."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import httpx

from shared.settings import Settings
from tests.integration.surveys.rig import Rig, surveys_rig
from web.app import create_app
from web.settings import WebSettings

BASE_URL = "http://civic.test"


class _Forms(HTMLParser):
    """The forms of a page: action and the values of their hidden fields."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action") or "", "hidden": {}})
        elif tag == "input" and a.get("type") == "hidden" and self.forms:
            self.forms[-1]["hidden"][a.get("name") or ""] = a.get("value") or ""


def forms_of(html: str) -> list[dict[str, Any]]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def title_of(html: str) -> str:
    found = re.search(r"<title>(.*?)</title>", html, re.S)
    return found.group(1).strip() if found else ""


@dataclass
class Pages:
    client: httpx.AsyncClient
    service: Rig

    async def get(self, path: str) -> httpx.Response:
        return await self.client.get(path)

    async def submit(self, page: httpx.Response, fields: dict[str, Any], action: str | None = None) -> httpx.Response:
        """Send the page's form (the one whose action ends with ``action``, else the last) with its hidden
        fields (CSRF, submission key) and ``fields``, as a browser would."""
        forms = forms_of(page.text)
        chosen = next((f for f in forms if action and f["action"].endswith(action)), None) or forms[-1]
        data: dict[str, list[str]] = {k: [v] for k, v in chosen["hidden"].items()}
        for k, v in fields.items():
            data[k] = [str(item) for item in (v if isinstance(v, list) else [v])]
        return await self.client.post(chosen["action"], data=data)

    async def follow(self, response: httpx.Response) -> httpx.Response:
        assert response.status_code == 303, (response.status_code, response.text[:2000])
        return await self.client.get(response.headers["location"])


@asynccontextmanager
async def pages(settings: Settings, prefix: str, **config: Any) -> AsyncIterator[Pages]:
    async with surveys_rig(settings, prefix, **config) as service:
        transport = httpx.ASGITransport(app=service.client._transport.app)  # type: ignore[attr-defined]
        web = create_app(WebSettings(api_base_url=BASE_URL, public_base_url=BASE_URL), transport=transport)
        async with (
            web.router.lifespan_context(web),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url=BASE_URL) as client,
        ):
            yield Pages(client, service)
