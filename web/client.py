"""The one pooled HTTP client of the web process to the services' public APIs (never their code).

Every page asks the APIs through ``Api``: one ``httpx.AsyncClient`` per process (connections kept alive), the
citizen's address appended to ``X-Forwarded-For`` as a proxy does (the services apply their rate limits to it and
trust it only from CIVIC_TRUSTED_PROXIES), and a problem document turned into ``ApiProblem`` for the page to show.

Answers with an ``ETag`` (the content service's public reads) are kept, a few thousand at most, and asked for
again with ``If-None-Match``: a 304 costs the service one small query instead of building the page. Within
their ``Cache-Control: max-age``, but never longer than CIVIC_WEB_API_FRESH_SECONDS (2 s), they are used without
asking at all, so a rush on one page asks the service about once a second or two.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from starlette.requests import Request

from web.settings import WebSettings


@dataclass
class ApiProblem(Exception):
    """A 4xx/5xx answer of an API: its problem document (RFC 9457, shared/http/problems.py)."""

    status: int
    type: str = "about:blank"
    title: str = ""
    detail: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """The last part of the type URI (``validation``, ``meeting-full`` ...), or ``about:blank``."""
        return self.type.rsplit("/", 1)[-1] if "/" in self.type else self.type

    @classmethod
    def of(cls, response: httpx.Response) -> ApiProblem:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        errors = body.get("errors") if isinstance(body.get("errors"), list) else []
        return cls(
            status=response.status_code,
            type=str(body.get("type", "about:blank")),
            title=str(body.get("title", "")),
            detail=body.get("detail"),
            errors=[e for e in errors or [] if isinstance(e, dict)],
            body=body,
        )


#: Answers with an ETag kept for revalidation (bodies are a few kilobytes each).
ETAG_MEMORY = 2048


def max_age(cache_control: str | None) -> float:
    """``max-age`` of a public answer in seconds; 0 when it may not be reused without asking."""
    if not cache_control or "public" not in cache_control or "no-" in cache_control:
        return 0.0
    for part in cache_control.split(","):
        name, _, value = part.strip().partition("=")
        if name == "max-age" and value.isdigit():
            return float(value)
    return 0.0


class ApiUnavailable(Exception):
    """The API could not be reached or timed out: the page says to try again later."""


def forwarded_for(request: Request | None) -> dict[str, str]:
    """``X-Forwarded-For`` as a proxy sends it on: what came in, plus the address this request came from."""
    if request is None or request.client is None:
        return {}
    prior = request.headers.get("x-forwarded-for")
    host = request.client.host
    return {"X-Forwarded-For": f"{prior}, {host}" if prior else host}


class Api:
    def __init__(self, settings: WebSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self._transport = transport
        self.fresh_seconds = settings.api_fresh_seconds
        self._client: httpx.AsyncClient | None = None
        self._etags: OrderedDict[tuple[str, tuple[tuple[str, str], ...]], tuple[str, Any, float]] = OrderedDict()

    @property
    def client(self) -> httpx.AsyncClient:
        # Made on first use: a web app mounted inside another one (``make up``) gets no lifespan events.
        if self._client is None or self._client.is_closed:
            limits = httpx.Limits(
                max_connections=self.settings.api_max_connections,
                max_keepalive_connections=self.settings.api_max_connections,
            )
            self._client = httpx.AsyncClient(
                base_url=self.settings.api_base_url.rstrip("/"),
                timeout=self.settings.api_timeout_seconds,
                limits=limits,
                transport=self._transport,
                headers={"Accept": "application/json", "User-Agent": "civic-web"},
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        request: Request | None = None,
        params: dict[str, Any] | None = None,
        json: Any = None,
        accept: str | None = None,
        if_none_match: str | None = None,
        token: str | None = None,
    ) -> httpx.Response:
        headers = forwarded_for(request)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if accept:
            headers["Accept"] = accept
        if if_none_match:
            headers["If-None-Match"] = if_none_match
        content = orjson.dumps(json) if json is not None else None
        if content is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = await self.client.request(method, path, params=params, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise ApiUnavailable(f"{method} {path}: {type(exc).__name__}") from exc
        if response.status_code >= 400:
            if response.status_code >= 500 and response.status_code != 503:
                raise ApiUnavailable(f"{method} {path}: {response.status_code}")
            raise ApiProblem.of(response)
        return response

    async def get(
        self,
        path: str,
        *,
        request: Request | None = None,
        params: dict[str, Any] | None = None,
        token: str | None = None,
    ) -> Any:
        if token:
            # A staff answer depends on the token (its tenant and roles), not only on the path: never kept.
            response = await self.request("GET", path, request=request, params=params, token=token)
            return orjson.loads(response.content) if response.content else None
        key = (path, tuple(sorted((k, str(v)) for k, v in (params or {}).items())))
        known = self._etags.get(key)
        if known is not None and time.monotonic() < known[2]:
            return known[1]
        response = await self.request(
            "GET", path, request=request, params=params, if_none_match=known[0] if known else None
        )
        fresh_until = time.monotonic() + min(max_age(response.headers.get("cache-control")), self.fresh_seconds)
        if response.status_code == 304 and known is not None:
            self._etags[key] = (known[0], known[1], fresh_until)
            self._etags.move_to_end(key)
            return known[1]
        body = orjson.loads(response.content)
        etag = response.headers.get("etag")
        if etag:
            self._etags[key] = (etag, body, fresh_until)
            self._etags.move_to_end(key)
            while len(self._etags) > ETAG_MEMORY:
                self._etags.popitem(last=False)
        return body

    async def post(
        self, path: str, body: Any = None, *, request: Request | None = None, token: str | None = None
    ) -> Any:
        response = await self.request("POST", path, request=request, json=body if body is not None else {}, token=token)
        return orjson.loads(response.content) if response.content else None

    async def patch(self, path: str, body: Any, *, request: Request | None = None, token: str | None = None) -> Any:
        response = await self.request("PATCH", path, request=request, json=body, token=token)
        return orjson.loads(response.content) if response.content else None

    async def put(self, path: str, body: Any, *, request: Request | None = None, token: str | None = None) -> Any:
        response = await self.request("PUT", path, request=request, json=body, token=token)
        return orjson.loads(response.content) if response.content else None

    async def delete(self, path: str, *, request: Request | None = None, token: str | None = None) -> Any:
        response = await self.request("DELETE", path, request=request, token=token)
        return orjson.loads(response.content) if response.content else None
