"""The licences page names every piece of free software the pages ship, and each licence text it links is served."""

from __future__ import annotations

import re

import httpx

from web.app import create_app
from web.settings import WebSettings


async def test_every_linked_licence_text_is_served() -> None:
    app = create_app(WebSettings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://civic.test") as client:
        page = await client.get("/lizenzen")
        assert page.status_code == 200
        for name in ("KERN UX", "Fira Sans", "barcode-detector", "zxing-wasm", "ZXing-C++"):
            assert name in page.text
        links = re.findall(r'href="(/static/[^"]+)"', page.text)
        licences = [link for link in links if "LICENSE" in link]
        assert len(licences) >= 4
        for link in licences:
            assert (await client.get(link)).status_code == 200, link
