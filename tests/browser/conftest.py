"""Browser fixtures: Chromium (skipped with the reason where none is installed) and civic in one process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.browser.support import CHROMIUM_ARGS, Civic, chromium_path, running_civic

#: The browser tests' tenant, with its legal links (the web client's CIVIC_WEB_TENANTS).
TENANT = "kreis-beispiel"
TENANTS = (
    '{"kreis-beispiel": {"name": "Kreis Beispiel", "colour": "#00508c", "imprint_url": "https://example.org/impressum",'
    ' "privacy_url": "https://example.org/datenschutz", "accessibility_url": "https://example.org/barrierefreiheit"}}'
)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium browser found (/usr/bin/chromium): apt-get install -y chromium (.ci/run does)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not installed (pip install playwright)")
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture(scope="module")
async def civic(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Civic]:
    async with running_civic(tmp_path_factory.mktemp("civic"), {"CIVIC_WEB_TENANTS": TENANTS}) as c:
        yield c
