"""Mail amplification through registration (issue 14): per client and per target inbox, with X-Forwarded-For
believed only from trusted proxies."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

from services.registration.api import REGISTER_PER_CLIENT, REGISTER_PER_MAILBOX
from services.registration.service import definition
from shared.clock import FrozenClock
from shared.http.app import create_app
from shared.settings import Settings
from tests.integration.registration.conftest import START, Rig, citizen
from tests.support import serve


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[Rig]:
    # The peer (httpx's in-process transport) is 127.0.0.1; here it is no trusted proxy.
    s = settings.model_copy(update={"rate_limits": True, "trusted_proxies": ["192.0.2.1/32"]})
    app = create_app([definition], s, clock=FrozenClock(START), background=False)
    async with serve(app) as client:
        yield Rig(client, app, FrozenClock(START), s)


def _refused(rule: str) -> float:
    return REGISTRY.get_sample_value("civic_rate_limited_total", {"rule": rule}) or 0.0


async def test_one_inbox_gets_no_more_than_its_burst_whatever_the_plus_tags(limited: Rig) -> None:
    m = await limited.meeting(capacity=1000)
    before = (_refused(REGISTER_PER_MAILBOX.name), _refused(REGISTER_PER_CLIENT.name))
    statuses = []
    for n in range(REGISTER_PER_MAILBOX.burst + 3):
        r = await limited.register(m["id"], citizen(n, email=f"Opfer+{n}@example.org"))
        statuses.append(r.status_code)
    assert statuses == [201] * REGISTER_PER_MAILBOX.burst + [429] * 3
    # Counted under the bucket that refused (the client's still had tokens).
    assert (_refused(REGISTER_PER_MAILBOX.name) - before[0], _refused(REGISTER_PER_CLIENT.name) - before[1]) == (3, 0)
    r = await limited.register(m["id"], citizen(99, email="opfer+x@example.org"))
    assert r.status_code == 429 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("/rate-limited") and int(r.headers["retry-after"]) > 0
    # Somebody else is not affected.
    assert (await limited.register(m["id"], citizen(100, email="nachbarin@example.org"))).status_code == 201


async def test_one_client_is_stopped_and_a_forged_forwarded_for_does_not_help(limited: Rig) -> None:
    m = await limited.meeting(capacity=1000)
    statuses = []
    for n in range(REGISTER_PER_CLIENT.burst + 2):
        # Rotating X-Forwarded-For from a peer that is no trusted proxy changes nothing.
        headers = {"X-Forwarded-For": f"203.0.113.{n % 250}"}
        body = citizen(n, email=f"person{n}@example.org")
        r = await limited.client.post(f"/api/registration/meetings/{m['id']}/registrations", json=body, headers=headers)
        statuses.append(r.status_code)
    assert statuses[: REGISTER_PER_CLIENT.burst] == [201] * REGISTER_PER_CLIENT.burst
    assert statuses[REGISTER_PER_CLIENT.burst :] == [429, 429]
