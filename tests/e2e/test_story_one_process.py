"""The same story against `make up`'s one-process mode (python -m civic.up) with its own SMTP sink."""

from __future__ import annotations

from tests.e2e.story import Deployment, run_story


async def test_story_in_one_process(one_process_deployment: Deployment) -> None:
    told = await run_story(one_process_deployment)
    print(told.report())
