"""10,000 responses at once, with retries of the same submission keys mixed in: exact results."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from typing import Any

from services.surveys.schemas import ResponseIn
from shared.settings import Settings
from tests.integration.surveys.rig import Rig, surveys_rig

N = 10_000
RETRIES = 2_000
CONCURRENCY = 32


def _answers(rng: random.Random, i: int) -> dict[str, Any]:
    online = rng.random() < 0.7
    a: dict[str, Any] = {
        "online": online,
        "age": rng.choice(["young", "old"]),
        "sat": rng.randint(1, 5),
        "grid": {"speed": rng.randint(1, 3)},
    }
    if online:
        a["which"] = rng.sample(["car", "waste", "library"], rng.randint(1, 2))
    if i % 10 == 0:
        a["idea"] = f"idea {i}"
    return a


async def test_ten_thousand_concurrent_responses_give_exact_results(settings: Settings, prefix: str) -> None:
    # No background loops: the relay would publish the 10,000 events meanwhile, competing for the CPU.
    async with surveys_rig(settings, prefix, background=False) as rig:
        await _flood(rig)


async def _flood(rig: Rig) -> None:
    s = await rig.open_survey()
    rng = random.Random(20261001)
    sent = [(f"submission-{i:06d}", _answers(rng, i)) for i in range(N)]
    work = sent + rng.sample(sent, RETRIES)
    rng.shuffle(work)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(key: str, answers: dict[str, Any]) -> bool:
        async with gate:
            replayed, _ = await rig.svc.submit(rig.tenant, s["slug"], ResponseIn(answers=answers), key)
            return replayed

    started = time.monotonic()
    replays = await asyncio.gather(*(one(k, a) for k, a in work))
    elapsed = time.monotonic() - started
    assert replays.count(False) == N and replays.count(True) == RETRIES, elapsed

    pool = rig.ctx.pool
    sid = s["id"]
    assert await pool.fetchval("select count(*) from responses where survey_id = $1", sid) == N
    assert await pool.fetchval("select count(*) from submissions where survey_id = $1", sid) == N
    assert await pool.fetchval("select count(*) from free_texts where survey_id = $1", sid) == N // 10
    completed = await pool.fetchval(
        "select count(*) from outbox where tenant = $1 and type = 'civic.surveys.response.completed.v1'", rig.tenant
    )
    assert completed == N
    # Writes spread over the shards.
    assert await pool.fetchval("select count(distinct shard) from result_counters where survey_id = $1", sid) == 16

    r = await rig.client.get(f"/api/surveys/surveys/{sid}/results", headers=rig.staff)
    by = {q["id"]: q for q in r.json()["questions"]}
    answers = [a for _, a in sent]
    assert r.json()["responses"] == N
    assert by["online"]["yes"] == sum(a["online"] for a in answers)
    assert by["online"]["no"] == sum(not a["online"] for a in answers)
    which = Counter(o for a in answers for o in a.get("which", []))
    assert {o["id"]: o["count"] for o in by["which"]["options"]} == {k: which[k] for k in ("car", "waste", "library")}
    age = Counter(a["age"] for a in answers)
    assert {o["id"]: o["count"] for o in by["age"]["options"]} == {"young": age["young"], "old": age["old"]}
    sat = Counter(a["sat"] for a in answers)
    assert by["sat"]["distribution"] == {str(v): sat[v] for v in range(1, 6)}
    assert by["sat"]["mean"] == round(sum(a["sat"] for a in answers) / N, 4)
    speed = Counter(a["grid"]["speed"] for a in answers)
    assert by["grid"]["rows"][0]["distribution"] == {str(v): speed[v] for v in range(1, 4)}
    assert by["grid"]["rows"][1]["answered"] == 0 and by["idea"]["answered"] == N // 10
