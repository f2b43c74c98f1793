"""Answering through HTTP: the window, validation, idempotency, results, free texts, export, QR, throttle."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import datetime

import cv2
import numpy as np
import redis.asyncio as aioredis

from shared.http.ratelimit import Limiter, Rule
from shared.settings import Settings
from tests.integration.surveys.rig import START, Rig, full_answers, surveys_rig
from tests.qr import decode_png


async def test_responses_outside_the_window_are_refused_naming_it(rig: Rig) -> None:
    s = await rig.published()
    r = await rig.client.post(rig.public(s, "/responses"), json={"answers": full_answers()})
    assert r.status_code == 409
    p = r.json()
    assert p["type"].endswith("survey-not-yet-open") and p["opens_at"] == s["opens_at"]
    assert s["opens_at"] in p["detail"] and s["closes_at"] in p["detail"]
    rig.clock.set(datetime.fromisoformat(s["closes_at"]))
    r = await rig.client.post(rig.public(s, "/responses"), json={"answers": full_answers()})
    assert r.status_code == 409 and r.json()["type"].endswith("survey-closed")
    assert await rig.ctx.pool.fetchval("select count(*) from responses where survey_id = $1", s["id"]) == 0


async def test_a_bad_submission_gets_one_problem_listing_every_bad_answer(rig: Rig) -> None:
    s = await rig.open_survey()
    answers = full_answers(online="sure", sat=7, rank=["admin"], grid={"speed": 9}, idea="x" * 201, ghost=1)
    r = await rig.client.post(rig.public(s, "/responses"), json={"answers": answers})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    errors = {e["question"]: e["code"] for e in r.json()["errors"]}
    # "which" is hidden: "online" has no valid answer, so its condition does not hold.
    assert errors == {
        "ghost": "unknown_question",
        "online": "invalid_type",
        "which": "not_shown",
        "sat": "out_of_range",
        "rank": "incomplete_ranking",
        "grid": "out_of_range",
        "idea": "too_long",
    }
    assert await rig.ctx.pool.fetchval("select count(*) from responses where survey_id = $1", s["id"]) == 0


async def test_a_retry_with_the_same_key_returns_the_first_result_and_stores_nothing(rig: Rig) -> None:
    s = await rig.open_survey()
    url = rig.public(s, "/responses")
    first = await rig.client.post(url, json={"answers": full_answers()}, headers={"Idempotency-Key": "k-0000001"})
    assert first.status_code == 201
    again = await rig.client.post(url, json={"answers": full_answers()}, headers={"Idempotency-Key": "k-0000001"})
    assert again.status_code == 200 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    by_body = await rig.client.post(url, json={"answers": full_answers(), "submission_key": "k-0000002"})
    assert by_body.status_code == 201
    assert (
        await rig.client.post(url, json={"answers": full_answers(), "submission_key": "k-0000002"})
    ).status_code == 200
    pool = rig.ctx.pool
    assert await pool.fetchval("select count(*) from responses where survey_id = $1", s["id"]) == 2
    assert await pool.fetchval("select count(*) from free_texts where survey_id = $1", s["id"]) == 2
    types = await rig.outbox_types()
    assert types.count("civic.surveys.response.completed.v1") == 2
    results = (await rig.client.get(f"/api/surveys/surveys/{s['id']}/results", headers=rig.staff)).json()
    assert results["responses"] == 2
    # The key is stored hashed only.
    stored = await pool.fetch("select key_hash from submissions where survey_id = $1", s["id"])
    assert all(b"k-000000" not in bytes(r["key_hash"]) for r in stored) and len(stored) == 2
    # The event has the day only.
    env = json.loads(
        await pool.fetchval(
            "select envelope from outbox where type = 'civic.surveys.response.completed.v1' and tenant = $1 limit 1",
            rig.tenant,
        )
    )
    assert env["data"] == {"survey_id": s["id"], "day": rig.clock.now().date().isoformat()}
    assert env["time"].endswith("T00:00:00Z") and env["subject"] is None


async def test_results_live_for_staff_and_public_after_closing(rig: Rig) -> None:
    s = await rig.open_survey()
    url = rig.public(s, "/responses")
    sent = [
        full_answers(),
        full_answers(online=False, which=None, sat=2, rank=["health", "admin", "culture"], idea=None),
        full_answers(which=["library"], age="old", visits=30, grid={"speed": 1, "ease": 1}),
    ]
    for a in sent:
        assert (await rig.client.post(url, json={"answers": a})).status_code == 201
    staff = (await rig.client.get(f"/api/surveys/surveys/{s['id']}/results", headers=rig.staff)).json()
    by = {q["id"]: q for q in staff["questions"]}
    assert staff["responses"] == 3 and (by["online"]["yes"], by["online"]["no"]) == (2, 1)
    assert {o["id"]: o["count"] for o in by["which"]["options"]} == {"car": 1, "waste": 1, "library": 1}
    assert by["sat"]["mean"] == round(10 / 3, 4) and by["sat"]["distribution"]["4"] == 2
    assert by["visits"]["mean"] == 18.0
    assert {o["id"]: o["mean_position"] for o in by["rank"]["options"]} == {
        "health": round(5 / 3, 4),
        "culture": 3.0,
        "admin": round(4 / 3, 4),
    }
    assert by["grid"]["rows"][0]["distribution"] == {"1": 1, "2": 2, "3": 0}
    assert by["idea"]["answered"] == 2

    public_results = rig.public(s, "/results")
    early = await rig.client.get(public_results)
    assert early.status_code == 409 and early.json()["closes_at"] == s["closes_at"]
    rig.clock.set(datetime.fromisoformat(s["closes_at"]))
    await rig.svc.tick()
    public = await rig.client.get(public_results)
    assert public.status_code == 200 and public.json()["questions"] == staff["questions"]
    texts = await rig.client.get(rig.public(s, "/questions/idea/texts"))
    assert sorted(t["text"] for t in texts.json()["items"]) == ["More appointments online"] * 2

    rig.clock.set(START)
    hidden = await rig.published(results_public=False)
    rig.clock.set(datetime.fromisoformat(hidden["closes_at"]))
    await rig.svc.tick()
    assert (await rig.client.get(rig.public(hidden, "/results"))).status_code == 403


async def test_free_texts_are_paginated_by_keyset(rig: Rig) -> None:
    s = await rig.open_survey()
    sent = {f"idea number {i}" for i in range(7)}
    for text in sent:
        r = await rig.client.post(rig.public(s, "/responses"), json={"answers": full_answers(idea=text)})
        assert r.status_code == 201
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        params = {"limit": 3, **({"after": after} if after else {})}
        page = (
            await rig.client.get(
                f"/api/surveys/surveys/{s['id']}/questions/idea/texts", params=params, headers=rig.staff
            )
        ).json()
        seen += [t["text"] for t in page["items"]]
        pages += 1
        after = page["next_after"]
        if after is None:
            break
    assert sorted(seen) == sorted(sent) and pages == 3
    missing = await rig.client.get(f"/api/surveys/surveys/{s['id']}/questions/sat/texts", headers=rig.staff)
    assert missing.status_code == 404


async def test_export_streams_csv_and_xlsx(rig: Rig) -> None:
    s = await rig.open_survey()
    for a in (full_answers(), full_answers(idea="=HYPERLINK(1)", which=["library"])):
        assert (await rig.client.post(rig.public(s, "/responses"), json={"answers": a})).status_code == 201
    r = await rig.client.get(f"/api/surveys/surveys/{s['id']}/export", headers=rig.staff)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0] == ["response_id", "day", "online", "which", "age", "sat", "visits", "rank", "grid.speed",
                       "grid.ease", "idea"]  # fmt: skip
    assert len(rows) == 3
    assert sorted(row[3] for row in rows[1:]) == ["car;waste", "library"]
    assert "'=HYPERLINK(1)" in [row[10] for row in rows[1:]]
    assert {row[1] for row in rows[1:]} == {rig.clock.now().date().isoformat()}
    x = await rig.client.get(f"/api/surveys/surveys/{s['id']}/export", params={"format": "xlsx"}, headers=rig.staff)
    assert x.status_code == 200 and x.content[:2] == b"PK" and len(x.content) > 1000


async def test_qr_codes_carry_the_public_link(rig: Rig) -> None:
    s = await rig.published()
    png = await rig.client.get(rig.public(s, "/qr"), params={"format": "png", "size": 600, "ecc": "H"})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    image = cv2.imdecode(np.frombuffer(png.content, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image.shape[0] <= 600 and image.shape[0] > 500
    assert decode_png(png.content) == s["url"]
    svg = await rig.client.get(rig.public(s, "/qr"), params={"format": "svg", "size": 4000})
    assert svg.headers["content-type"] == "image/svg+xml" and b'width="4000"' in svg.content
    staff_png = await rig.client.get(f"/api/surveys/surveys/{s['id']}/qr", headers=rig.staff)
    assert staff_png.status_code == 200 and staff_png.content[:4] == b"\x89PNG"
    bad = await rig.client.get(rig.public(s, "/qr"), params={"format": "gif", "size": 5, "ecc": "X"})
    assert bad.status_code == 422 and len(bad.json()["errors"]) == 3


async def test_floods_are_throttled_per_survey_and_client_without_storing_the_address(
    settings: Settings, prefix: str
) -> None:
    limited = settings.model_copy(update={"rate_limits": True})
    async with surveys_rig(limited, prefix, throttle_burst=3, throttle_per_hour=360) as rig:
        s = await rig.open_survey()
        statuses = [
            (await rig.client.post(rig.public(s, "/responses"), json={"answers": full_answers()})).status_code
            for _ in range(5)
        ]
        assert statuses == [201, 201, 201, 429, 429]
        r = await rig.client.post(rig.public(s, "/responses"), json={"answers": full_answers()})
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["type"].endswith("rate-limited") and 0 < int(r.headers["retry-after"]) <= 10
        keys = [k.decode() async for k in rig.ctx.redis.scan_iter(f"{prefix}:ratelimit:*")]
        buckets = [k for k in keys if ":secret:" not in k]
        assert buckets and all("127.0.0.1" not in k and s["slug"] not in k for k in buckets)
        ttls = [await rig.ctx.redis.ttl(k) for k in buckets]
        assert all(0 < t <= 31 for t in ttls)  # gone once full again (3 tokens at one per 10 s)
        # Another survey, and another address behind the gateway, have buckets of their own.
        other = await rig.open_survey(slug="zweite-umfrage")
        r = await rig.client.post(rig.public(other, "/responses"), json={"answers": full_answers()})
        assert r.status_code == 201
        forwarded = {"X-Forwarded-For": "203.0.113.9"}
        r = await rig.client.post(rig.public(s, "/responses"), json={"answers": full_answers()}, headers=forwarded)
        assert r.status_code == 201


async def test_a_classroom_behind_one_address_is_not_locked_out(settings: Settings, prefix: str) -> None:
    """Forty pupils and teachers behind the school's one address answer within a minute (the old limit, 30 a
    minute per address across all surveys, locked the last ten out)."""
    limited = settings.model_copy(update={"rate_limits": True})
    async with surveys_rig(limited, prefix) as rig:
        s = await rig.open_survey()
        school = {"X-Forwarded-For": "198.51.100.20"}
        statuses = [
            (
                await rig.client.post(rig.public(s, "/responses"), json={"answers": full_answers()}, headers=school)
            ).status_code
            for _ in range(40)
        ]
        assert statuses == [201] * 40


async def test_the_throttle_fails_open_when_redis_is_down() -> None:
    dead = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    limiter = Limiter(dead, "x")
    rule = Rule("survey-responses", burst=1, per_hour=1)
    try:
        assert [await limiter.take((rule, "203.0.113.5")) for _ in range(3)] == [0.0] * 3
    finally:
        await dead.aclose()


async def test_the_same_key_sent_five_times_at_once_is_stored_once(rig: Rig) -> None:
    s = await rig.open_survey()
    url = rig.public(s, "/responses")
    replies = await asyncio.gather(
        *(
            rig.client.post(url, json={"answers": full_answers()}, headers={"Idempotency-Key": "same-key-1"})
            for _ in range(5)
        )
    )
    assert sorted(r.status_code for r in replies) == [200, 200, 200, 200, 201]
    assert len({r.text for r in replies}) == 1
    assert await rig.ctx.pool.fetchval("select count(*) from responses where survey_id = $1", s["id"]) == 1


async def test_a_malformed_body_or_idempotency_key_gets_a_422_naming_it_and_stores_nothing(rig: Rig) -> None:
    """The answer's route reads its body and header itself (a lean route): the problem is FastAPI's own."""
    s = await rig.open_survey()
    url = rig.public(s, "/responses")
    short = await rig.client.post(url, json={"answers": full_answers()}, headers={"Idempotency-Key": "short"})
    assert short.status_code == 422 and short.headers["content-type"].startswith("application/problem+json")
    assert [(e["in"], e["pointer"], e["code"]) for e in short.json()["errors"]] == [
        ("header", "/idempotency-key", "string_too_short")
    ]
    wrong = await rig.client.post(url, json={"answers": [], "submission_key": "k"})
    assert wrong.status_code == 422
    assert [(e["in"], e["pointer"]) for e in wrong.json()["errors"]] == [
        ("body", "/answers"),
        ("body", "/submission_key"),
    ]
    broken = await rig.client.post(url, content=b'{"answers": ', headers={"content-type": "application/json"})
    assert broken.status_code == 422
    assert await rig.ctx.pool.fetchval("select count(*) from responses where survey_id = $1", s["id"]) == 0
