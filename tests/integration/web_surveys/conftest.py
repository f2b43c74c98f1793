from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.settings import Settings
from tests.integration.web_surveys.rig import Pages, pages


@pytest.fixture
async def site(settings: Settings, prefix: str) -> AsyncIterator[Pages]:
    async with pages(settings, prefix, throttle_limit=1000) as p:
        yield p
