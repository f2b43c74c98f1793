from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.settings import Settings
from tests.integration.surveys.rig import Rig, surveys_rig


@pytest.fixture
async def rig(settings: Settings, prefix: str) -> AsyncIterator[Rig]:
    async with surveys_rig(settings, prefix) as r:
        yield r
