"""Meetings and registrations over HTTP against real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from uuid import UUID

import pytest

from services.registration import store
from tests.integration.registration.conftest import OTHER_TENANT, Rig, citizen
from tests.support import staff_headers


async def outbox_types(rig: Rig, meeting_id: str) -> list[str]:
    """Events about one meeting (the database is shared by the session's tests)."""
    rows = await rig.ctx.pool.fetch(
        "select type from outbox where subject = $1 order by position", f"meeting/{meeting_id}"
    )
    return [r["type"] for r in rows]


async def test_create_publish_and_read_a_meeting(rig: Rig) -> None:
    m = await rig.meeting()
    assert m["status"] == "published"
    assert m["starts_at"] == "2021-10-28T16:00:00Z"
    assert m["seats_left"] == 80
    public = (await rig.client.get(f"/api/registration/meetings/{m['id']}")).json()
    assert "public_key" not in public and public["venue"]["street"] == "Rungholtstraße 2 c"
    listed = (await rig.client.get("/api/registration/meetings", params={"tenant": rig.tenant})).json()
    assert [x["id"] for x in listed] == [m["id"]]
    deadlines = await rig.ctx.pool.fetch("select kind, due_at, offsets from deadlines where subject_id = $1", m["id"])
    kinds = {d["kind"]: d for d in deadlines}
    assert set(kinds) == {"registration_closes", "meeting_starts"}
    assert kinds["registration_closes"]["due_at"].isoformat() == "2021-10-25T22:00:00+00:00"
    assert sorted(kinds["meeting_starts"]["offsets"]) == [86400, 259200]
    envelope = json.loads(
        await rig.ctx.pool.fetchval(
            "select envelope from outbox where subject = $1 order by position limit 1", f"meeting/{m['id']}"
        )
    )
    assert envelope["type"] == "civic.registration.meeting.published.v1"
    assert envelope["data"]["seats_left"] == 80 and envelope["tenant"] == rig.tenant


async def test_drafts_are_invisible_to_the_public_and_to_other_tenants(rig: Rig) -> None:
    m = await rig.meeting(publish=False)
    assert (await rig.client.get(f"/api/registration/meetings/{m['id']}")).status_code == 404
    other = staff_headers(OTHER_TENANT, "staff", settings=rig.settings)
    assert (await rig.client.get(f"/api/registration/staff/meetings/{m['id']}", headers=other)).status_code == 404
    assert (await rig.client.get("/api/registration/staff/meetings", headers=other)).json() == []
    r = await rig.register(m["id"], citizen())
    assert r.status_code == 404


async def test_bad_meeting_lists_every_bad_field(rig: Rig) -> None:
    body: dict[str, Any] = {
        "title": "",
        "starts_at": "2021-10-28T18:00:00",
        "ends_at": "2021-10-28T17:00:00",
        "capacity": -1,
        "questions": [{"id": "q", "label": "Q", "kind": "single", "options": ["a"]}],
    }
    r = await rig.client.post("/api/registration/staff/meetings", json=body, headers=rig.staff)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    pointers = {e["pointer"] for e in r.json()["errors"]}
    assert {"/title", "/capacity"} <= pointers
    body.update(title="ok", capacity=10)
    r = await rig.client.post("/api/registration/staff/meetings", json=body, headers=rig.staff)
    assert r.status_code == 422
    assert {e["pointer"] for e in r.json()["errors"]} == {"/ends_at", "/questions/0/options"}


async def test_staff_endpoints_need_a_token(rig: Rig) -> None:
    r = await rig.client.post("/api/registration/staff/meetings", json={})
    assert r.status_code == 401
    checkin_only = staff_headers(rig.tenant, "checkin", settings=rig.settings)
    r = await rig.client.get("/api/registration/staff/meetings", headers=checkin_only)
    assert r.status_code == 403


async def test_register_confirm_idempotent_view_and_cancel(rig: Rig) -> None:
    m = await rig.meeting(capacity=2)
    r = await rig.register(m["id"], citizen(1, phone="0481/97-3501", companions=1))
    assert r.status_code == 201, r.text
    reg = r.json()
    assert reg["status"] == "confirmed" and reg["phone"] == "+49481973501"
    assert reg["phone"].startswith("+49481") and reg["seats"] == 2 and reg["ticket_code"]
    again = await rig.register(m["id"], citizen(1, email="PERSON1@example.org"))
    assert again.status_code == 200 and again.json()["id"] == reg["id"]
    by_phone = await rig.register(m["id"], citizen(9, email=None, phone="+49 481 97-3501"))
    assert by_phone.status_code == 200 and by_phone.json()["id"] == reg["id"]
    second = (await rig.register(m["id"], citizen(2))).json()
    assert second["status"] == "waitlisted" and second["position"] == 1
    own = await rig.client.get(f"/api/registration/registrations/{reg['secret']}")
    assert own.status_code == 200 and own.json()["meeting"]["title"].startswith("Auftakt")
    assert (await rig.client.get("/api/registration/registrations/not-a-secret")).status_code == 404
    assert (await rig.client.get(f"/api/registration/registrations/{reg['id']}")).status_code == 404
    gone = await rig.client.delete(f"/api/registration/registrations/{reg['secret']}")
    assert gone.status_code == 200 and gone.json()["status"] == "cancelled"
    promoted = (await rig.client.get(f"/api/registration/registrations/{second['secret']}")).json()
    assert promoted["status"] == "confirmed" and promoted["ticket_code"]
    types = await outbox_types(rig, m["id"])
    assert types.count("civic.registration.registration.promoted.v2") == 1
    assert types.count("civic.registration.registration.cancelled.v2") == 1
    assert types.count("civic.registration.registration.confirmed.v2") == 1
    assert types.count("civic.registration.registration.waitlisted.v2") == 1


async def test_bad_registration_lists_every_bad_field(rig: Rig) -> None:
    m = await rig.meeting()
    body = {
        "name": "",
        "email": "not-an-address",
        "privacy_consent": True,
        "companions": -1,
    }
    r = await rig.register(m["id"], body)
    assert r.status_code == 422
    assert {e["pointer"] for e in r.json()["errors"]} == {"/name", "/email", "/companions"}
    body = {
        "name": "Jemand",
        "phone": "12",
        "privacy_consent": False,
        "answers": {"topics": ["Kochen"], "unknown": 1},
        "companions": 5,
    }
    r = await rig.register(m["id"], body)
    assert r.status_code == 422
    assert {e["pointer"] for e in r.json()["errors"]} == {"/phone", "/privacy_consent"}
    body.update(phone="0481 973501", privacy_consent=True)
    r = await rig.register(m["id"], body)
    pointers = {e["pointer"] for e in r.json()["errors"]}
    assert pointers == {"/companions", "/attestations", "/answers/topics", "/answers/unknown", "/answers/accessible"}


async def test_a_bad_body_or_id_is_a_problem_and_the_route_is_documented(rig: Rig) -> None:
    m = await rig.meeting()
    path = f"/api/registration/meetings/{m['id']}/registrations"
    r = await rig.client.post(path, content=b'{"name": "Jemand",', headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert [(e["in"], e["code"]) for e in r.json()["errors"]] == [("body", "json_invalid")]
    doc = (await rig.client.get("/api/registration/openapi.json")).json()
    body = doc["paths"]["/api/registration/meetings/{meeting_id}/registrations"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert {"name", "email", "phone", "privacy_consent", "answers"} <= set(schema["properties"])
    assert schema["required"] == ["name", "privacy_consent"]
    assert doc["paths"]["/api/registration/meetings/{meeting_id}/registrations"]["post"]["parameters"][0]["schema"] == {
        "type": "string", "format": "uuid", "title": "Meeting Id"
    }  # fmt: skip
    r = await rig.register("not-a-meeting-id", citizen())
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


async def test_window_is_named_when_registration_is_refused(rig: Rig) -> None:
    m = await rig.meeting(registration_opens_at="2021-10-05T09:00:00")
    r = await rig.register(m["id"], citizen())
    assert r.status_code == 409
    problem = r.json()
    assert problem["state"] == "not_yet_open"
    assert problem["window"] == {"opens_at": "2021-10-05T09:00:00+02:00", "closes_at": "2021-10-26T00:00:00+02:00"}
    rig.clock.set(rig.clock.now().replace(month=10, day=26))
    r = await rig.register(m["id"], citizen())
    assert r.status_code == 409 and r.json()["state"] == "closed" and "2021-10-26" in r.json()["detail"]
    staff = {**citizen(3), "channel": "phone", "ignore_window": True}
    r = await rig.client.post(
        f"/api/registration/staff/meetings/{m['id']}/registrations", json=staff, headers=rig.staff
    )
    assert r.status_code == 201 and r.json()["channel"] == "phone"


async def test_full_without_waitlist_is_a_problem(rig: Rig) -> None:
    m = await rig.meeting(capacity=1, waitlist=False)
    assert (await rig.register(m["id"], citizen(1))).status_code == 201
    r = await rig.register(m["id"], citizen(2))
    assert r.status_code == 409 and r.json()["title"] == "Meeting full"


async def test_raising_capacity_promotes_in_order_and_lowering_below_confirmed_is_refused(rig: Rig) -> None:
    m = await rig.meeting(capacity=1)
    regs = [(await rig.register(m["id"], citizen(i))).json() for i in range(4)]
    assert [r["status"] for r in regs] == ["confirmed", "waitlisted", "waitlisted", "waitlisted"]
    url = f"/api/registration/staff/meetings/{m['id']}"
    r = await rig.client.patch(url, json={"capacity": 3}, headers=rig.staff)
    assert r.status_code == 200, r.text
    statuses = [(await rig.client.get(f"/api/registration/registrations/{x['secret']}")).json() for x in regs]
    assert [s["status"] for s in statuses] == ["confirmed", "confirmed", "confirmed", "waitlisted"]
    assert statuses[3]["position"] == 1
    r = await rig.client.patch(url, json={"capacity": 1}, headers=rig.staff)
    assert r.status_code == 409
    r = await rig.client.patch(url, json={"capacity": "many", "title": ""}, headers=rig.staff)
    assert r.status_code == 422 and {e["pointer"] for e in r.json()["errors"]} == {"/capacity", "/title"}
    assert "civic.registration.meeting.changed.v1" in await outbox_types(rig, m["id"])


async def test_cancelling_the_meeting_cancels_every_registration(rig: Rig) -> None:
    m = await rig.meeting(capacity=1)
    regs = [(await rig.register(m["id"], citizen(i))).json() for i in range(3)]
    r = await rig.client.post(
        f"/api/registration/staff/meetings/{m['id']}/cancel", json={"reason": "Sturmwarnung"}, headers=rig.staff
    )
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    for x in regs:
        own = (await rig.client.get(f"/api/registration/registrations/{x['secret']}")).json()
        assert own["status"] == "cancelled" and own["cancelled_by"] == "meeting_cancelled"
    types = await outbox_types(rig, m["id"])
    assert types.count("civic.registration.registration.cancelled.v2") == 3
    assert "civic.registration.meeting.cancelled.v1" in types
    cancelled = await rig.ctx.pool.fetchval("select bool_and(cancelled) from deadlines where subject_id = $1", m["id"])
    assert cancelled is True


async def test_time_slots_have_their_own_capacity(rig: Rig) -> None:
    m = await rig.meeting(
        title="Pop-up-Makerspace",
        capacity=None,
        starts_at="2021-10-04T10:00:00",
        ends_at="2021-10-29T18:00:00",
        registration_closes_at=None,
        slots=[
            {"starts_at": "2021-10-04T10:00:00", "ends_at": "2021-10-04T12:00:00", "capacity": 1},
            {"starts_at": "2021-10-05T10:00:00", "ends_at": "2021-10-05T12:00:00", "capacity": 2},
        ],
        min_age=10,
        max_age=17,
        guardian_consent=True,
    )
    first, second = m["slots"]
    assert m["capacity"] == 3
    kid = citizen(1, slot_id=first["id"], age=12, guardian_consent=True)
    assert (await rig.register(m["id"], kid)).json()["status"] == "confirmed"
    assert (await rig.register(m["id"], citizen(2, slot_id=first["id"], age=13, guardian_consent=True))).json()[
        "status"
    ] == "waitlisted"
    assert (await rig.register(m["id"], citizen(3, slot_id=second["id"], age=13, guardian_consent=True))).json()[
        "status"
    ] == "confirmed"
    r = await rig.register(m["id"], citizen(4, age=30))
    assert {e["pointer"] for e in r.json()["errors"]} == {"/slot_id", "/age"}
    r = await rig.register(m["id"], citizen(5, age=12, slot_id="00000000-0000-4000-8000-000000000000"))
    assert {e["pointer"] for e in r.json()["errors"]} == {"/slot_id", "/guardian_consent"}


async def test_the_meeting_cache_reads_once_for_many_at_once_and_forgets_an_edit(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = await rig.meeting()
    mid = UUID(m["id"])
    reads: list[UUID] = []
    real_read = store.Store.meeting

    async def counted(self: store.Store, meeting_id: UUID, **kw: Any) -> Any:
        reads.append(meeting_id)
        return await real_read(self, meeting_id, **kw)

    monkeypatch.setattr(store.Store, "meeting", counted)
    cache = store.MeetingCache()
    uows = rig.ctx.uows(store.Store)
    found = await asyncio.gather(*(cache.get(uows, mid) for _ in range(50)))
    assert reads == [mid] and {f.id for f in found if f} == {mid}
    await cache.get(uows, mid)
    assert len(reads) == 1  # still fresh

    # Forgotten while being read (an edit committed meanwhile): that read's copy is not kept.
    cache.forget(mid)
    reading = asyncio.ensure_future(cache.get(uows, mid))
    await asyncio.sleep(0)
    cache.forget(mid)
    assert (await reading) is not None
    await cache.get(uows, mid)
    assert len(reads) == 3
