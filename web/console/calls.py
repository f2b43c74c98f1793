"""One request of a signed-in person in the console: their session, and one service's staff API called with the
short-lived token minted for them (web/console/session.py). Each console part subclasses it with its API's base
path and its own page rendering."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from fastapi import Request

from web.console.session import StaffSession
from web.pages.common import api


@dataclass
class StaffCalls:
    request: Request
    tenant: str
    session: StaffSession
    token: str

    #: Where the part's API is, e.g. ``/api/content/staff``; paths given to the calls are relative to it.
    api_base: ClassVar[str] = ""

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return await api(self.request).get(
            self.api_base + path, request=self.request, params=dict(params or {}), token=self.token
        )

    async def post(self, path: str, body: Any = None) -> Any:
        return await api(self.request).post(self.api_base + path, body, request=self.request, token=self.token)

    async def patch(self, path: str, body: Any) -> Any:
        return await api(self.request).patch(self.api_base + path, body, request=self.request, token=self.token)

    async def put(self, path: str, body: Any) -> Any:
        return await api(self.request).put(self.api_base + path, body, request=self.request, token=self.token)

    async def delete(self, path: str) -> Any:
        return await api(self.request).delete(self.api_base + path, request=self.request, token=self.token)

    async def raw(self, path: str, params: Mapping[str, Any] | None = None) -> bytes:
        """The answer's bytes as they are (files: XLSX, images)."""
        r = await api(self.request).request(
            "GET", self.api_base + path, request=self.request, params=dict(params or {}), token=self.token
        )
        return r.content
