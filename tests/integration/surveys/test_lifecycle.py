"""Drafts, publishing, freezing, and opening and closing on time (with a moved clock)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from tests.integration.surveys.rig import Rig, sample_survey
from tests.support import eventually

PUBLISHED = "civic.surveys.survey.published.v1"
OPENED = "civic.surveys.survey.opened.v1"
CLOSED = "civic.surveys.survey.closed.v1"
APPROACHING = "civic.surveys.deadline.approaching.v1"


async def test_a_draft_is_editable_and_frozen_once_published(rig: Rig) -> None:
    s = await rig.create()
    assert s["state"] == "draft"
    assert [q["id"] for q in s["sections"][0]["questions"]][:2] == ["online", "which"]
    changed = sample_survey(slug=s["slug"], title="Digitale Angebote 2026")
    r = await rig.client.put(f"/api/surveys/surveys/{s['id']}", json=changed, headers=rig.staff)
    assert r.status_code == 200 and r.json()["title"] == "Digitale Angebote 2026"
    # Drafts are not public.
    assert (await rig.client.get(rig.public(s))).status_code == 404

    r = await rig.client.post(f"/api/surveys/surveys/{s['id']}/publish", headers=rig.staff)
    assert r.status_code == 200 and r.json()["state"] == "published"
    r = await rig.client.put(f"/api/surveys/surveys/{s['id']}", json=changed, headers=rig.staff)
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("survey-frozen") and r.json()["state"] == "published"
    assert (await rig.client.post(f"/api/surveys/surveys/{s['id']}/publish", headers=rig.staff)).status_code == 409

    assert await rig.outbox_types() == [PUBLISHED]
    row = await rig.ctx.pool.fetchrow(
        "select envelope from outbox where type = $1 and tenant = $2", PUBLISHED, rig.tenant
    )
    data = json.loads(row["envelope"])["data"]
    assert data["survey_id"] == s["id"] and data["url"].endswith(f"/umfrage/{rig.tenant}/{s['slug']}")
    deadline = await rig.ctx.pool.fetchrow("select * from deadlines where subject_id = $1", s["id"])
    assert deadline["kind"] == "survey_closes" and deadline["offsets"] == [86400, 259200]
    assert deadline["due_at"] == datetime.fromisoformat(s["closes_at"])

    public = await rig.client.get(rig.public(s))
    assert public.status_code == 200 and public.json()["sections"][1]["questions"][1]["kind"] == "matrix"
    assert (await rig.client.get(f"/api/surveys/public/{rig.tenant}/{s['id']}")).status_code == 200
    assert (await rig.client.get(f"/api/surveys/public/other-tenant/{s['slug']}")).status_code == 404


async def test_a_bad_survey_gets_one_problem_listing_every_fault(rig: Rig) -> None:
    body = sample_survey(closes_at=sample_survey()["opens_at"])
    qs = body["sections"][0]["questions"]
    # The condition refers to a later question; a scale without range; a choice with one option.
    qs[0]["condition"] = {"question": "age", "any_of": ["young"]}
    qs[3].pop("max")
    qs[2]["options"] = qs[2]["options"][:1]
    r = await rig.client.post("/api/surveys/surveys", json=body, headers=rig.staff)
    assert r.status_code == 422
    problem = r.json()
    pointers = {e["pointer"] for e in problem["errors"]}
    assert "/closes_at" in pointers
    assert "/sections/0/questions/0/condition/question" in pointers
    assert "/sections/0/questions/3/min" in pointers
    assert "/sections/0/questions/2/options" in pointers


async def test_staff_endpoints_need_a_staff_token_of_the_tenant(rig: Rig) -> None:
    s = await rig.create()
    assert (await rig.client.get("/api/surveys/surveys")).status_code == 401
    from tests.support import staff_headers

    other = staff_headers("another-county", "staff")
    assert (await rig.client.get(f"/api/surveys/surveys/{s['id']}", headers=other)).status_code == 404
    assert [x["id"] for x in (await rig.client.get("/api/surveys/surveys", headers=rig.staff)).json()] == [s["id"]]


async def test_surveys_open_and_close_on_time_with_events_once(rig: Rig) -> None:
    s = await rig.published()
    opens, closes = datetime.fromisoformat(s["opens_at"]), datetime.fromisoformat(s["closes_at"])
    pool = rig.ctx.pool

    async def state() -> str:
        return str(await pool.fetchval("select state from surveys where id = $1", s["id"]))

    rig.clock.set(opens - timedelta(seconds=1))
    await rig.svc.tick()
    assert await state() == "published"
    rig.clock.set(opens)
    await eventually(lambda: _is(state, "open"), what="opened by the loop")
    # Repeated ticks (and the loop running alongside) do not open it twice.
    for _ in range(3):
        await rig.svc.tick()

    rig.clock.set(closes - timedelta(hours=72))
    await eventually(lambda: _count(rig, APPROACHING, 1), what="72h reminder")
    rig.clock.set(closes - timedelta(hours=24))
    await eventually(lambda: _count(rig, APPROACHING, 2), what="24h reminder")
    rig.clock.set(closes)
    await eventually(lambda: _is(state, "closed"), what="closed by the loop")
    for _ in range(3):
        await rig.svc.tick()

    types = await rig.outbox_types()
    assert types.count(OPENED) == 1 and types.count(CLOSED) == 1 and types.count(APPROACHING) == 2
    assert types.index(PUBLISHED) < types.index(OPENED) < types.index(CLOSED)
    closed = json.loads(
        await pool.fetchval("select envelope from outbox where type = $1 and tenant = $2", CLOSED, rig.tenant)
    )
    assert closed["data"]["responses"] == 0 and closed["subject"] == f"survey/{s['id']}"
    reminder = json.loads(
        await pool.fetchval(
            "select envelope from outbox where type = $1 and tenant = $2 limit 1", APPROACHING, rig.tenant
        )
    )
    assert reminder["data"]["kind"] == "survey_closes" and reminder["data"]["subject_id"] == s["id"]

    # The relay carried them to the service's stream.
    async def streamed() -> list[str]:
        entries = await rig.ctx.redis.xrange(rig.ctx.keys.stream("surveys"))
        events = [json.loads(f[b"event"]) for _, f in entries]
        return [e["type"] for e in events if e["tenant"] == rig.tenant]

    await eventually(lambda: _has_all(streamed, [PUBLISHED, OPENED, CLOSED, APPROACHING]), what="events streamed")


async def test_closing_on_time_counts_the_responses(rig: Rig) -> None:
    s = await rig.open_survey()
    for i in range(3):
        r = await rig.client.post(
            rig.public(s, "/responses"), json={"answers": {"online": False}, "submission_key": f"key-{i:08d}"}
        )
        assert r.status_code == 201, r.text
    rig.clock.set(datetime.fromisoformat(s["closes_at"]))
    await rig.svc.tick()
    closed = json.loads(
        await rig.ctx.pool.fetchval("select envelope from outbox where type = $1 and tenant = $2", CLOSED, rig.tenant)
    )
    assert closed["data"]["responses"] == 3


async def _is(probe, value: str) -> bool:  # type: ignore[no-untyped-def]
    return bool(await probe() == value)


async def _count(rig: Rig, type_: str, n: int) -> bool:
    return (await rig.outbox_types()).count(type_) == n


async def _has_all(probe, wanted: list[str]) -> bool:  # type: ignore[no-untyped-def]
    got = await probe()
    return all(w in got for w in wanted)


async def test_the_api_is_described_by_openapi(rig: Rig) -> None:
    doc = (await rig.client.get("/api/surveys/openapi.json")).json()
    paths = set(doc["paths"])
    assert {
        "/api/surveys/surveys",
        "/api/surveys/surveys/{survey_id}/publish",
        "/api/surveys/surveys/{survey_id}/tokens",
        "/api/surveys/surveys/{survey_id}/results",
        "/api/surveys/surveys/{survey_id}/export",
        "/api/surveys/public/{tenant}/{ref}/responses",
        "/api/surveys/public/{tenant}/{ref}/qr",
    } <= paths


async def test_a_token_survey_is_mixed_by_the_loop_when_it_closes(rig: Rig) -> None:
    s = await rig.create(access="token")
    codes = (
        await rig.client.post(f"/api/surveys/surveys/{s['id']}/tokens", json={"count": 2}, headers=rig.staff)
    ).json()["codes"]
    await rig.client.post(f"/api/surveys/surveys/{s['id']}/publish", headers=rig.staff)
    await rig.open_survey_at(s)
    body = {"answers": {"online": False}, "token": codes[0]}
    assert (await rig.client.post(rig.public(s, "/responses"), json=body)).status_code == 201
    pool = rig.ctx.pool
    assert await pool.fetchval("select mixed from surveys where id = $1", s["id"]) is False
    rig.clock.set(datetime.fromisoformat(s["closes_at"]))

    async def mixed() -> bool:
        return bool(await pool.fetchval("select mixed from surveys where id = $1", s["id"]))

    await eventually(mixed, what="mixed after closing")
    xmins = await pool.fetch(
        "select xmin::text from access_tokens where survey_id = $1 union select xmin::text from responses "
        "where survey_id = $1",
        s["id"],
    )
    assert len(xmins) == 1


async def test_concurrent_ticks_open_and_close_each_survey_once(rig: Rig) -> None:
    import asyncio

    surveys = [await rig.published() for _ in range(3)]
    rig.clock.set(datetime.fromisoformat(surveys[0]["opens_at"]))
    await asyncio.gather(*(rig.svc.tick() for _ in range(6)))
    rig.clock.set(datetime.fromisoformat(surveys[0]["closes_at"]))
    await asyncio.gather(*(rig.svc.tick() for _ in range(6)))
    types = await rig.outbox_types()
    assert types.count(OPENED) == 3 and types.count(CLOSED) == 3


async def test_a_slug_is_unique_per_tenant(rig: Rig) -> None:
    first = await rig.create()
    second = await rig.create()
    again = await rig.client.post("/api/surveys/surveys", json=sample_survey(slug=first["slug"]), headers=rig.staff)
    assert again.status_code == 409 and again.json()["type"].endswith("slug-taken")
    moved = await rig.client.put(
        f"/api/surveys/surveys/{second['id']}", json=sample_survey(slug=first["slug"]), headers=rig.staff
    )
    assert moved.status_code == 409 and moved.json()["type"].endswith("slug-taken")
