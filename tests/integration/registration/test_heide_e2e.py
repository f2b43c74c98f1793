"""The Heide kick-off (seed 001) end to end over HTTP, from creation to check-in, with the bus running:
every step's event is observed on the registration stream in Redis."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import redis.asyncio as aioredis

from shared.bus.streams import entry_event
from shared.contracts.registration import registrant_context
from shared.privacy import open_sealed, own_key
from tests.integration.registration.conftest import Rig, citizen
from tests.support import eventually, staff_headers


async def stream_events(redis: aioredis.Redis, key: str) -> list[dict[str, Any]]:
    entries = await redis.xrange(key)
    return [json.loads(entry_event(fields)) for _, fields in entries]


async def test_heide_kickoff_from_creation_to_check_in(live_rig: Rig, redis: aioredis.Redis) -> None:
    rig = live_rig
    key = rig.ctx.keys.stream("registration")
    assert key == f"{rig.settings.stream_prefix}:stream:registration"
    private = rig.ctx.keys.stream("private.registration")
    assert private == f"{rig.settings.stream_prefix}:private:registration"

    # Staff create and publish the meeting: 28 Oct 2021, 18-20 h, registration until 25 Oct, 3G rule.
    m = await rig.meeting(capacity=2)
    assert (m["starts_at"], m["ends_at"]) == ("2021-10-28T16:00:00Z", "2021-10-28T18:00:00Z")
    assert m["registration_closes_at"] == "2021-10-25T22:00:00Z"
    assert "3G-Regel" in m["attestations"][0]["text"]

    # A citizen registers online; someone calls the county and staff take the registration by phone.
    online = await rig.register(m["id"], citizen(1, answers={"accessible": True, "topics": ["Mobilität"]}))
    assert online.status_code == 201 and online.json()["status"] == "confirmed"
    by_phone = {
        "name": "Anrufende Person",
        "phone": "0481 123456",
        "privacy_consent": True,
        "attestations": ["3g"],
        "answers": {"accessible": False},
        "channel": "phone",
    }
    r = await rig.client.post(
        f"/api/registration/staff/meetings/{m['id']}/registrations", json=by_phone, headers=rig.staff
    )
    assert r.status_code == 201 and r.json()["phone"] == "+49481123456" and r.json()["channel"] == "phone"
    caller = r.json()
    late_comer = (await rig.register(m["id"], citizen(3))).json()
    assert late_comer["status"] == "waitlisted" and late_comer["position"] == 1

    # The caller cancels by their own link; the waiting person moves up.
    await rig.client.delete(f"/api/registration/registrations/{caller['secret']}")
    promoted = (await rig.client.get(f"/api/registration/registrations/{late_comer['secret']}")).json()
    assert promoted["status"] == "confirmed"

    # 72 hours before registration closes, the deadline scheduler announces it (once).
    rig.clock.set(datetime(2021, 10, 23, 0, 0, tzinfo=UTC))

    async def deadline_seen() -> bool:
        return any(
            e["type"] == "civic.registration.deadline.approaching.v1" and e["data"]["subject_id"] == m["id"]
            for e in await stream_events(redis, key)
        )

    await eventually(deadline_seen, what="deadline approaching on the stream")

    # After 25 October registration is refused, naming the window.
    rig.clock.set(datetime(2021, 10, 26, 8, 0, tzinfo=UTC))
    refused = await rig.register(m["id"], citizen(4))
    assert refused.status_code == 409 and refused.json()["window"]["closes_at"] == "2021-10-26T00:00:00+02:00"

    # At the door on 28 October.
    rig.clock.set(datetime(2021, 10, 28, 15, 50, tzinfo=UTC))
    door = staff_headers(rig.tenant, "checkin", settings=rig.settings)
    r = await rig.client.post(
        f"/api/registration/meetings/{m['id']}/checkins",
        json={"ticket": online.json()["ticket_code"], "nonce": "door-1-0001"},
        headers=door,
    )
    assert r.status_code == 200, r.text
    r = await rig.client.post(
        f"/api/registration/meetings/{m['id']}/checkins",
        json={"ticket": caller["ticket_code"], "nonce": "door-1-0002"},
        headers=door,
    )
    assert r.json()["reason"] == "revoked"

    wanted = {
        "civic.registration.meeting.published.v1",
        "civic.registration.registration.received.v1",
        "civic.registration.meeting.seats_changed.v1",
        "civic.registration.deadline.approaching.v1",
        "civic.registration.registration.checked_in.v1",
    }
    wanted_private = {
        "civic.registration.registration.confirmed.v2",
        "civic.registration.registration.waitlisted.v2",
        "civic.registration.registration.cancelled.v2",
        "civic.registration.registration.promoted.v2",
    }

    async def all_seen() -> set[str]:
        seen = {e["type"] for e in await stream_events(redis, key)}
        seen_private = {e["type"] for e in await stream_events(redis, private)}
        return seen | seen_private if wanted <= seen and wanted_private <= seen_private else set()

    await eventually(all_seen, what="every event of the scenario on the streams")
    events = [
        e
        for e in [*await stream_events(redis, key), *await stream_events(redis, private)]
        if e.get("subject") == f"meeting/{m['id']}"
    ]
    assert {e["tenant"] for e in events} == {rig.tenant}
    sequences = [e["aggregatesequence"] for e in events]
    assert sorted(sequences) == list(range(1, len(sequences) + 1))  # one sequence across both streams
    confirmed = next(e for e in events if e["type"] == "civic.registration.registration.confirmed.v2")
    assert "person1@example.org" not in json.dumps(confirmed)
    key_id = UUID(confirmed["data"]["key_id"])
    data = open_sealed(
        await own_key(rig.ctx.pool, key_id) or b"", confirmed["data"]["sealed"], context=registrant_context(key_id)
    )
    assert data["contact"]["email"] == "person1@example.org"
    assert data["manage_url"].endswith(online.json()["secret"])

    async def reminders_of_start() -> list[tuple[str, int]]:
        found = [
            (e["data"]["kind"], e["data"]["offset_seconds"])
            for e in await stream_events(redis, key)
            if e["type"].endswith("deadline.approaching.v1") and e["data"]["subject_id"] == m["id"]
        ]
        return found if any(kind == "meeting_starts" for kind, _ in found) else []

    reminders = await eventually(reminders_of_start, what="a reminder of the start")
    assert reminders[0] == ("registration_closes", 259200)
    # Exactly once per deadline and offset; which start reminders went out depends on when the scheduler ticked
    # between the jumps of the clock (a passed reminder goes out late, or is skipped for a nearer one).
    assert len(reminders) == len(set(reminders))
    stats = (await rig.client.get(f"/api/registration/staff/meetings/{m['id']}/stats", headers=rig.staff)).json()
    assert (stats["confirmed"], stats["checked_in"], stats["cancelled"]) == (2, 1, 1)
