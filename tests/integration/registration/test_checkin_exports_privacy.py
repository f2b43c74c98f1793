"""Check-in at the door, attendance figures, exports, erasure on request and anonymisation after retention."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from services.registration import domain
from services.registration.store import Store
from services.registration.use_cases import privacy
from shared.contracts.registration import registrant_context
from shared.privacy import open_sealed, own_key, person_hmac
from tests.integration.registration.conftest import OTHER_TENANT, Rig, citizen
from tests.support import staff_headers

DOOR_OPENS = datetime(2021, 10, 28, 15, 45, tzinfo=UTC)  # 17:45 in Heide


async def scan(rig: Rig, meeting_id: str, ticket: str, nonce: str, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return await rig.client.post(
        f"/api/registration/meetings/{meeting_id}/checkins",
        json={"ticket": ticket, "nonce": nonce},
        headers=headers or staff_headers(rig.tenant, "checkin", settings=rig.settings),
    )


async def test_check_in_accepts_once_and_refuses_with_reasons(rig: Rig) -> None:
    m = await rig.meeting(capacity=10)
    other = await rig.meeting(capacity=10, title="Workshop")
    a = (await rig.register(m["id"], citizen(1, companions=1))).json()
    b = (await rig.register(m["id"], citizen(2))).json()
    elsewhere = (await rig.register(other["id"], citizen(3))).json()
    await rig.client.delete(f"/api/registration/registrations/{b['secret']}")

    assert (await scan(rig, m["id"], a["ticket_code"], "nonce-0001")).json()["reason"] == "invalid_time"
    rig.clock.set(DOOR_OPENS)
    first = await scan(rig, m["id"], a["ticket_code"], "nonce-0001")
    assert first.status_code == 200 and first.json()["repeat"] is False
    again = await scan(rig, m["id"], a["ticket_code"], "nonce-0001")
    assert again.status_code == 200 and again.json()["repeat"] is True
    twice = await scan(rig, m["id"], a["ticket_code"], "nonce-0002")
    assert twice.status_code == 409 and twice.json()["reason"] == "already_checked_in"
    assert (await scan(rig, m["id"], b["ticket_code"], "nonce-0003")).json()["reason"] == "revoked"
    assert (await scan(rig, m["id"], elsewhere["ticket_code"], "nonce-0004")).json()["reason"] == "wrong_meeting"
    assert (await scan(rig, m["id"], "NOTATICKET", "nonce-0005")).json()["reason"] == "invalid_signature"
    forged = a["ticket_code"][:-6] + ("AAAAAA" if not a["ticket_code"].endswith("AAAAAA") else "BBBBBB")
    assert (await scan(rig, m["id"], forged, "nonce-0006")).json()["reason"] == "invalid_signature"
    rig.clock.set(DOOR_OPENS + timedelta(days=1))
    late = await scan(rig, m["id"], a["ticket_code"], "nonce-0007")
    assert late.json()["reason"] == "invalid_time"

    foreign = staff_headers(OTHER_TENANT, "checkin", settings=rig.settings)
    assert (await scan(rig, m["id"], a["ticket_code"], "nonce-0008", foreign)).status_code == 404
    anonymous = await rig.client.post(
        f"/api/registration/meetings/{m['id']}/checkins", json={"ticket": "x", "nonce": "nonce-0009"}
    )
    assert anonymous.status_code == 401

    stats = (await rig.client.get(f"/api/registration/staff/meetings/{m['id']}/stats", headers=rig.staff)).json()
    assert stats["confirmed"] == 1 and stats["checked_in"] == 1 and stats["checked_in_seats"] == 2
    assert stats["cancelled"] == 1 and stats["attendance_rate"] == 1.0
    revoked = await rig.client.get(f"/api/registration/meetings/{m['id']}/revoked", headers=rig.staff)
    assert revoked.json()["revoked"] == [b["id"]]
    types = await rig.ctx.pool.fetch(
        "select type from outbox where subject = $1 and type like '%checked_in%'", f"meeting/{m['id']}"
    )
    assert len(types) == 1


async def test_exports_stream_csv_and_build_xlsx(rig: Rig) -> None:
    m = await rig.meeting(capacity=2)
    regs = [
        (await rig.register(m["id"], citizen(i, name=f"=HYPERLINK({i})" if i == 0 else f"P {i}"))).json()
        for i in range(3)
    ]
    rig.clock.set(DOOR_OPENS)
    await scan(rig, m["id"], regs[1]["ticket_code"], "nonce-exp1")
    base = f"/api/registration/staff/meetings/{m['id']}"
    r = await rig.client.get(f"{base}/registrations.csv", headers=rig.staff)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["id"] for row in rows] == [x["id"] for x in regs]
    assert rows[0]["name"] == "'=HYPERLINK(0)"  # no formula injection
    assert [row["status"] for row in rows] == ["confirmed", "confirmed", "waitlisted"]
    r = await rig.client.get(f"{base}/attendance.csv", headers=rig.staff)
    assert [row["id"] for row in csv.DictReader(io.StringIO(r.text))] == [regs[1]["id"]]
    r = await rig.client.get(f"{base}/registrations.xlsx", headers=rig.staff)
    assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.content)) as book:
        strings = book.read("xl/sharedStrings.xml").decode()
    assert "P 2" in strings
    other = staff_headers(OTHER_TENANT, "staff", settings=rig.settings)
    assert (await rig.client.get(f"{base}/registrations.csv", headers=other)).status_code == 404


async def test_erasure_on_request_blanks_every_registration_of_the_person(rig: Rig) -> None:
    m1 = await rig.meeting()
    m2 = await rig.meeting(title="Zweiter Termin")
    a = (await rig.register(m1["id"], citizen(1, phone="0481 973501"))).json()
    b = (await rig.register(m2["id"], citizen(2, email=None, phone="+49481973501"))).json()
    keep = (await rig.register(m2["id"], citizen(3))).json()
    r = await rig.client.post("/api/registration/staff/erasures", json={"phone": "0481/97-3501"}, headers=rig.staff)
    assert r.status_code == 200
    assert sorted(r.json()["registration_ids"]) == sorted([a["id"], b["id"]])
    for x in (a, b):
        own = (await rig.client.get(f"/api/registration/registrations/{x['secret']}")).json()
        assert own["name"] is None and own["email"] is None and own["phone"] is None
    assert (await rig.client.get(f"/api/registration/registrations/{keep['secret']}")).json()[
        "name"
    ] == "Teilnehmende Person 3"
    envelope = json.loads(
        await rig.ctx.pool.fetchval(
            "select envelope from outbox where type = 'civic.registration.person.erased.v2' and tenant = $1",
            rig.tenant,
        )
    )
    # A keyed HMAC, not a plain hash anyone could test guesses against.
    assert envelope["data"]["phone_hmac"] == person_hmac(rig.settings.privacy_secret, "phone", "+49481973501")
    assert domain.contact_hash("+49481973501") not in json.dumps(envelope)
    # Nothing of the person is readable in the events recorded before the erasure (the outbox keeps them for
    # days): they were sealed, and their keys are gone.
    subjects = [f"meeting/{m1['id']}", f"meeting/{m2['id']}"]
    rows = await rig.ctx.pool.fetch(
        "select envelope from outbox where subject = any($1::text[]) and type like '%registration.%.v2'", subjects
    )
    opened: dict[str, str] = {}
    for row in rows:
        data = json.loads(row["envelope"])["data"]
        assert "person1@example.org" not in row["envelope"] and "Teilnehmende Person" not in row["envelope"]
        key = await own_key(rig.ctx.pool, UUID(data["key_id"]))
        if key is not None:
            opened[data["registration_id"]] = open_sealed(
                key, data["sealed"], context=registrant_context(UUID(data["key_id"]))
            )["contact"]["name"]
    assert opened == {keep["id"]: "Teilnehmende Person 3"}  # only the one not erased can still be opened
    assert "0481" not in json.dumps(envelope)
    bad = await rig.client.post("/api/registration/staff/erasures", json={"phone": "xx"}, headers=rig.staff)
    assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "/phone"


async def anonymise_due(rig: Rig, days: int) -> Any:
    return await privacy.anonymise_due(rig.ctx.uows(Store)(), days, now=rig.ctx.clock.now())


async def test_retention_anonymises_after_the_configured_days(rig: Rig) -> None:
    m = await rig.meeting()
    reg = (await rig.register(m["id"], citizen(1))).json()
    rig.clock.set(datetime(2021, 11, 20, tzinfo=UTC))  # 23 days after the meeting
    done = await anonymise_due(rig, 30)
    assert UUID(m["id"]) not in [mid for mid, _ in done]
    rig.clock.set(datetime(2021, 11, 28, 19, tzinfo=UTC))  # 31 days after
    done = await anonymise_due(rig, 30)
    assert (UUID(m["id"]), 1) in done
    own = (await rig.client.get(f"/api/registration/registrations/{reg['secret']}")).json()
    assert own["name"] is None and own["email"] is None and own["status"] == "confirmed"
    left = await rig.ctx.pool.fetchval(
        "select count(*) from outbox where subject = $1 and envelope like '%person1@example.org%'", f"meeting/{m['id']}"
    )
    assert left == 0
    assert await own_key(rig.ctx.pool, UUID(reg["id"])) is None  # its sealed events are unreadable now
    assert (await anonymise_due(rig, 30)) == []
    n = await rig.ctx.pool.fetchval(
        "select count(*) from outbox where type = 'civic.registration.registrations.anonymised.v1' and subject = $1",
        f"meeting/{m['id']}",
    )
    assert n == 1
