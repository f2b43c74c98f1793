"""The call-back list and the staff routes the console needs, over HTTP on real PostgreSQL: people without an
e-mail address put on the list in the transaction that promoted them, changed or cancelled their meeting, staff
marking calls done (idempotently), erasure and retention taking the calls along; promotion by hand; the
attendance figures before and after the start; the name search of the listing and at the door; check-in by
registration and the names in check-in answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.registration.store import Store
from services.registration.use_cases import privacy
from tests.integration.registration.conftest import OTHER_TENANT, Rig, citizen
from tests.support import staff_headers

DOOR_OPENS = datetime(2021, 10, 28, 15, 45, tzinfo=UTC)  # 17:45 in Heide, before the 18:00 start
STARTED = datetime(2021, 10, 28, 16, 30, tzinfo=UTC)
API = "/api/registration/staff"


def by_phone(n: int, **changes: Any) -> dict[str, Any]:
    body = citizen(n, email=None, phone=f"0481 97 12{n:02d}", channel="phone", **changes)
    return body


async def staff_register(rig: Rig, meeting_id: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await rig.client.post(f"{API}/meetings/{meeting_id}/registrations", json=body, headers=rig.staff)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def calls(rig: Rig, state: str = "open", **params: str) -> list[dict[str, Any]]:
    r = await rig.client.get(f"{API}/callbacks", params={"state": state, **params}, headers=rig.staff)
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()
    return found


async def test_promotion_of_a_phone_registrant_is_a_call_to_make_until_marked_done(rig: Rig) -> None:
    m = await rig.meeting(capacity=1)
    online = (await rig.register(m["id"], citizen(1))).json()
    phoned = await staff_register(rig, m["id"], by_phone(2, name="Hans-Jürgen Öztürk"))
    mailed = (await rig.register(m["id"], citizen(3))).json()
    assert phoned["status"] == "waitlisted" and await calls(rig) == []

    await rig.client.delete(f"/api/registration/registrations/{online['secret']}")
    [call] = await calls(rig)
    assert call["registration_id"] == phoned["id"] and call["reason"] == "promoted"
    assert call["name"] == "Hans-Jürgen Öztürk" and call["phone"] == "+49481971202"
    assert call["meeting_title"] == m["title"] and call["registration_status"] == "confirmed"
    assert call["done_at"] is None and await calls(rig, meeting_id=m["id"]) == [call]
    other = await rig.meeting(capacity=5, title="Workshop")
    assert await calls(rig, meeting_id=other["id"]) == []
    foreign = staff_headers(OTHER_TENANT, "staff", settings=rig.settings)
    assert (await rig.client.get(f"{API}/callbacks", headers=foreign)).json() == []
    assert (await rig.client.post(f"{API}/callbacks/{call['id']}/done", headers=foreign)).status_code == 404
    door = staff_headers(rig.tenant, "checkin", settings=rig.settings)
    assert (await rig.client.get(f"{API}/callbacks", headers=door)).status_code == 403

    done = await rig.client.post(f"{API}/callbacks/{call['id']}/done", headers=rig.staff)
    assert done.status_code == 200 and done.json()["done_at"] is not None
    rig.clock.set(rig.clock.now() + timedelta(hours=1))
    again = await rig.client.post(f"{API}/callbacks/{call['id']}/done", headers=rig.staff)
    assert again.status_code == 200 and again.json()["done_at"] == done.json()["done_at"]  # idempotent
    assert done.json()["done_by"] == again.json()["done_by"] and done.json()["done_by"]
    assert await calls(rig) == [] and [c["id"] for c in await calls(rig, "done")] == [call["id"]]
    # The one with an address is mailed, never called.
    assert mailed["status"] == "waitlisted"
    assert (await rig.client.get(f"{API}/callbacks", params={"state": "later"}, headers=rig.staff)).status_code == 422


async def test_meeting_moved_or_cancelled_calls_everyone_without_an_address_once(rig: Rig) -> None:
    m = await rig.meeting(capacity=1)
    seated = await staff_register(rig, m["id"], by_phone(1))
    waiting = await staff_register(rig, m["id"], by_phone(2))
    await rig.register(m["id"], citizen(3))
    both = {seated["id"], waiting["id"]}

    # A new description concerns nobody's plans; a new start does, once however often it moves before the call.
    r = await rig.client.patch(f"{API}/meetings/{m['id']}", json={"description": "Mehr dazu"}, headers=rig.staff)
    assert r.status_code == 200 and await calls(rig) == []
    for hour in ("17:00", "17:30"):
        r = await rig.client.patch(
            f"{API}/meetings/{m['id']}", json={"starts_at": f"2021-10-28T{hour}:00"}, headers=rig.staff
        )
        assert r.status_code == 200, r.text
    changed = await calls(rig)
    assert {c["registration_id"] for c in changed} == both and {c["reason"] for c in changed} == {"meeting_changed"}

    r = await rig.client.post(f"{API}/meetings/{m['id']}/cancel", json={"reason": "Sturm"}, headers=rig.staff)
    assert r.status_code == 200
    cancelled = await calls(rig)
    # One call tells the cancellation: the call about the new time is dropped.
    assert {c["registration_id"] for c in cancelled} == both
    assert {c["reason"] for c in cancelled} == {"meeting_cancelled"}


async def test_erasure_and_retention_delete_the_calls(rig: Rig) -> None:
    m = await rig.meeting(capacity=1)
    online = (await rig.register(m["id"], citizen(1))).json()
    await staff_register(rig, m["id"], by_phone(2))
    await staff_register(rig, m["id"], by_phone(3))
    await rig.client.delete(f"/api/registration/registrations/{online['secret']}")
    assert len(await calls(rig)) == 1
    r = await rig.client.post(f"{API}/erasures", json={"phone": "0481 97 1202"}, headers=rig.staff)
    assert r.status_code == 200 and await calls(rig) == []

    r = await rig.client.patch(f"{API}/meetings/{m['id']}", json={"venue": {"name": "Rathaus"}}, headers=rig.staff)
    assert r.status_code == 200 and len(await calls(rig)) == 1
    rig.clock.set(datetime(2021, 12, 31, tzinfo=UTC))
    await privacy.anonymise_due(rig.ctx.uows(Store)(), 30, now=rig.clock.now())
    assert await calls(rig) == [] and await calls(rig, "done") == []


async def test_promotion_by_hand(rig: Rig) -> None:
    m = await rig.meeting(capacity=1)
    seated = (await rig.register(m["id"], citizen(1))).json()
    group = (await rig.register(m["id"], citizen(2, companions=2))).json()
    single = await staff_register(rig, m["id"], by_phone(3))
    assert (group["status"], single["status"]) == ("waitlisted", "waitlisted")
    # A seat more: the group of three at the head does not fit, and nobody overtakes it by itself.
    r = await rig.client.patch(f"{API}/meetings/{m['id']}", json={"capacity": 2}, headers=rig.staff)
    assert r.status_code == 200 and r.json()["waitlisted"] == 2 and await calls(rig) == []

    refused = await rig.client.post(f"{API}/registrations/{group['id']}/promote", headers=rig.staff)
    assert refused.status_code == 409 and refused.json()["type"].endswith("/no-seat-free")
    assert refused.json()["seats_left"] == 1
    seated_again = await rig.client.post(f"{API}/registrations/{seated['id']}/promote", headers=rig.staff)
    assert seated_again.status_code == 409 and seated_again.json()["type"].endswith("/not-waitlisted")
    foreign = staff_headers(OTHER_TENANT, "staff", settings=rig.settings)
    assert (await rig.client.post(f"{API}/registrations/{single['id']}/promote", headers=foreign)).status_code == 404

    # The single person behind the group takes the free seat: staff decided so.
    promoted = await rig.client.post(f"{API}/registrations/{single['id']}/promote", headers=rig.staff)
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["status"] == "confirmed" and promoted.json()["ticket_code"]
    meeting = (await rig.client.get(f"{API}/meetings/{m['id']}", headers=rig.staff)).json()
    assert meeting["confirmed_seats"] == 2 and meeting["waitlisted"] == 1 and meeting["seats_left"] == 0
    [call] = await calls(rig)
    assert call["registration_id"] == single["id"] and call["reason"] == "promoted"
    async with rig.ctx.pool.acquire() as conn:
        types = [
            r["type"]
            for r in await conn.fetch(
                "select type from outbox where subject = $1 order by position desc limit 2", f"meeting/{m['id']}"
            )
        ]
    assert types == ["civic.registration.meeting.seats_changed.v1", "civic.registration.registration.promoted.v2"]

    one = await rig.client.get(f"{API}/registrations/{single['id']}", headers=rig.staff)
    assert one.status_code == 200 and one.json()["status"] == "confirmed" and one.json()["checked_in_at"] is None
    assert (await rig.client.get(f"{API}/registrations/{group['id']}", headers=rig.staff)).json()["position"] == 1
    assert (await rig.client.get(f"{API}/registrations/{single['id']}", headers=foreign)).status_code == 404


async def test_stats_search_and_check_in_by_registration(rig: Rig) -> None:
    m = await rig.meeting(capacity=5)
    anna = (await rig.register(m["id"], citizen(1, name="Anna Öhlschläger", companions=1))).json()
    bert = (await rig.register(m["id"], citizen(2, name="Bert Anders"))).json()
    await rig.register(m["id"], citizen(3, name="100% Sicher_Test"))
    await rig.client.delete(f"/api/registration/registrations/{bert['secret']}")

    stats = (await rig.client.get(f"{API}/meetings/{m['id']}/stats", headers=rig.staff)).json()
    assert stats["confirmed"] == 2 and stats["no_shows"] is None and stats["attendance_rate"] is None

    async def listed(q: str) -> list[str]:
        r = await rig.client.get(f"{API}/meetings/{m['id']}/registrations", params={"q": q}, headers=rig.staff)
        assert r.status_code == 200, r.text
        return [x["name"] for x in r.json()]

    assert await listed("ÖHL") == ["Anna Öhlschläger"] and await listed("and") == ["Bert Anders"]
    assert await listed("%") == ["100% Sicher_Test"] and await listed("sic_er") == []  # typed literally
    assert len(await listed("")) == 3

    door = staff_headers(rig.tenant, "checkin", settings=rig.settings)
    search = f"/api/registration/meetings/{m['id']}/checkins/search"
    hits = (await rig.client.get(search, params={"q": "anna öhl"}, headers=door)).json()
    assert hits == [
        {"registration_id": anna["id"], "name": "Anna Öhlschläger", "status": "confirmed", "companions": 1,
         "checked_in_at": None}
    ]  # fmt: skip
    assert (await rig.client.get(search, params={"q": "anders"}, headers=door)).json()[0]["status"] == "cancelled"
    assert (await rig.client.get(search, params={"q": ""}, headers=door)).status_code == 422
    foreign = staff_headers(OTHER_TENANT, "checkin", settings=rig.settings)
    assert (await rig.client.get(search, params={"q": "anna"}, headers=foreign)).status_code == 404

    rig.clock.set(DOOR_OPENS)
    checkins = f"/api/registration/meetings/{m['id']}/checkins"
    first = await rig.client.post(checkins, json={"registration_id": anna["id"], "nonce": "door-0001"}, headers=door)
    assert first.status_code == 200 and first.json()["name"] == "Anna Öhlschläger" and not first.json()["repeat"]
    repeat = await rig.client.post(checkins, json={"ticket": anna["ticket_code"], "nonce": "door-0001"}, headers=door)
    assert repeat.status_code == 200 and repeat.json()["repeat"] is True
    assert (repeat.json()["name"], repeat.json()["companions"]) == ("Anna Öhlschläger", 1)
    twice = await rig.client.post(checkins, json={"ticket": anna["ticket_code"], "nonce": "door-0002"}, headers=door)
    assert twice.status_code == 409 and twice.json()["reason"] == "already_checked_in"
    assert (twice.json()["registration_id"], twice.json()["name"], twice.json()["companions"]) == (
        anna["id"], "Anna Öhlschläger", 1
    )  # fmt: skip
    revoked = await rig.client.post(checkins, json={"ticket": bert["ticket_code"], "nonce": "door-0003"}, headers=door)
    assert revoked.json()["reason"] == "revoked" and revoked.json()["name"] == "Bert Anders"
    by_id = await rig.client.post(checkins, json={"registration_id": bert["id"], "nonce": "door-0004"}, headers=door)
    assert by_id.status_code == 409 and by_id.json()["reason"] == "revoked"
    both = await rig.client.post(
        checkins,
        json={"ticket": anna["ticket_code"], "registration_id": anna["id"], "nonce": "door-0005"},
        headers=door,
    )
    assert both.status_code == 422
    hits = (await rig.client.get(search, params={"q": "anna"}, headers=door)).json()
    assert hits[0]["checked_in_at"] is not None

    listing = (await rig.client.get(f"{API}/meetings/{m['id']}/registrations", headers=rig.staff)).json()
    assert {r["name"]: r["checked_in_at"] is not None for r in listing}["Anna Öhlschläger"] is True
    assert stats["no_shows"] is None
    rig.clock.set(STARTED)
    stats = (await rig.client.get(f"{API}/meetings/{m['id']}/stats", headers=rig.staff)).json()
    assert stats["no_shows"] == 1 and stats["attendance_rate"] == 0.5
