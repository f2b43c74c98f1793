"""The story through the gateway: four service processes behind nginx, a real SMTP sink, a moved clock."""

from __future__ import annotations

from tests.e2e.story import Deployment, run_story


async def test_story_through_the_gateway(gateway_deployment: Deployment) -> None:
    told = await run_story(gateway_deployment)
    print(told.report())
