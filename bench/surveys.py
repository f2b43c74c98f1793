"""Benchmark: a flood of survey responses through HTTP, and reading results at 1,000 and 1,000,000 responses.

In one run, on the configured PostgreSQL and Redis (``DATABASE_URL``, ``REDIS_URL``; localhost defaults), in a
scratch database created for the run and dropped afterwards, with uvicorn serving the surveys service in a
subprocess (one worker, bus loops on, the rate limits switched off):

- ``flood``: ``--responses`` anonymous responses (default 4,000), each with its own Idempotency-Key, sent from a
  ``bench.loadgen`` process of its own over ``--concurrency`` keep-alive connections (default 32) to
  ``POST /api/surveys/public/.../responses``; the generator's CPU share is printed beside each figure. Beside
  it, the baseline: the same number of ``GET`` of the public questionnaire (one indexed read each) through the
  same stack. The run checks that every response was stored and counted once; ``responses_vs_indexed_get`` is
  the ratio of the two rates (target ≥ 0.5).
  Baseline and flood take ``--rounds`` turns (default 3), and each side's fastest round counts.
- ``results``: two more surveys get 1,000 and 1,000,000 responses bulk-loaded in SQL (one ``INSERT ... SELECT
  generate_series`` plus the matching result-counter rows, as the service would have left them), the tables
  are vacuumed and analysed (as autovacuum would have left them), then the staff results endpoint of each is
  read ``--reads`` times one after another, the two surveys taking ``--rounds`` turns. Results are
  precomputed counters, so the two latencies should match.

    DATABASE_URL=... REDIS_URL=... python -m bench.surveys [--responses 4000] [--concurrency 32] [--reads 200]
        [--rounds 3]

Last line: ``results_latency_1m_vs_1k: <median latency at 1,000,000 ÷ median latency at 1,000>`` (target ≤ 1.5).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis

from bench.common import ADMIN_URL, REDIS_URL, checkpoint, free_port, server, wait_ready, with_database
from bench.common import load as generate
from shared import db
from shared.http.auth import mint_token

TENANT = "kreis-bench"
SHARDS = 16


def survey_body(slug: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "title": "Digitale Angebote im Kreis (Lasttest)",
        "slug": slug,
        "introduction": "Anonymous; about ten minutes.",
        "estimated_minutes": 10,
        "opens_at": (now - timedelta(hours=1)).isoformat(),
        "closes_at": (now + timedelta(days=30)).isoformat(),
        "sections": [
            {
                "title": "Online services",
                "questions": [
                    {"id": "online", "kind": "yes_no", "text": "Do you use online services?", "required": True},
                    {
                        "id": "age",
                        "kind": "single_choice",
                        "text": "Age group",
                        "options": [{"id": "young", "label": "under 30"}, {"id": "old", "label": "30 or over"}],
                    },
                    {"id": "sat", "kind": "scale", "text": "Satisfaction", "min": 1, "max": 5},
                    {"id": "idea", "kind": "free_text", "text": "Your idea", "max_length": 500},
                ],
            }
        ],
    }


def answers(i: int) -> dict[str, Any]:
    a: dict[str, Any] = {"online": i % 3 != 0, "age": "young" if i % 2 == 0 else "old", "sat": 1 + i % 5}
    if i % 10 == 0:
        a["idea"] = f"idea {i}"
    return a


async def create_survey(client: httpx.AsyncClient, headers: dict[str, str], slug: str) -> str:
    r = await client.post("/api/surveys/surveys", json=survey_body(slug), headers=headers)
    r.raise_for_status()
    sid = str(r.json()["id"])
    (await client.post(f"/api/surveys/surveys/{sid}/publish", headers=headers)).raise_for_status()
    return sid


def share(result: dict[str, Any]) -> str:
    return f"{result['cpu_seconds'] / result['elapsed'] * 100:.0f} % of a core"


def rates(values: list[float]) -> str:
    return ", ".join(f"{v:.0f}" for v in values)


def ms(x: float) -> str:
    return f"{x * 1000:.2f} ms"


async def bulk_load(conn: asyncpg.Connection, survey_id: str, first: int, last: int) -> None:
    """Responses ``first..last`` as the service would have stored them, and their counter increments."""
    day = datetime.now(UTC).date()
    await conn.execute(
        "insert into responses (id, tenant, survey_id, day, answers) "
        "select gen_random_uuid(), $1, $2, $3, jsonb_strip_nulls(jsonb_build_object("
        "  'online', g % 3 <> 0, 'age', case when g % 2 = 0 then 'young' else 'old' end, 'sat', 1 + g % 5,"
        "  'idea', case when g % 10 = 0 then 'idea ' || g end)) "
        "from generate_series($4::int, $5::int) as g",
        TENANT,
        survey_id,
        day,
        first,
        last,
    )
    await conn.execute(
        "insert into free_texts (id, tenant, survey_id, question_id, day, body) "
        "select gen_random_uuid(), $1, $2, 'idea', $3, 'idea ' || g from generate_series($4::int, $5::int) as g "
        "where g % 10 = 0",
        TENANT,
        survey_id,
        day,
        first,
        last,
    )
    # The same increments domain.counter_increments makes, spread over the shards.
    await conn.execute(
        "insert into result_counters (tenant, survey_id, key, shard, count, total) "
        "select $1, $2::uuid, k, (g % $5)::smallint, count(*), sum(t) from generate_series($3::int, $4::int) as g, "
        "lateral (values ('n', 0), ('q:online:answered', 0), "
        "  ('q:online:o:' || case when g % 3 <> 0 then 'yes' else 'no' end, 0), ('q:age:answered', 0), "
        "  ('q:age:o:' || case when g % 2 = 0 then 'young' else 'old' end, 0), ('q:sat:answered', 0), "
        "  ('q:sat:v:' || (1 + g % 5), 0), ('q:sat:sum', 1 + g % 5)) as x(k, t) "
        "group by k, g % $5 "
        "union all select $1, $2::uuid, k, (g % $5)::smallint, count(*), 0 "
        "from generate_series($3::int, $4::int) as g, "
        "lateral (values ('q:idea:answered')) as x(k) where g % 10 = 0 group by k, g % $5 "
        "on conflict (survey_id, key, shard) do update set count = result_counters.count + excluded.count, "
        "total = result_counters.total + excluded.total",
        TENANT,
        survey_id,
        first,
        last,
        SHARDS,
    )


async def read_results(client: httpx.AsyncClient, url: str, headers: dict[str, str], reads: int) -> list[float]:
    for _ in range(10):  # warm up
        (await client.get(url, headers=headers)).raise_for_status()
    out = []
    for _ in range(reads):
        t = time.perf_counter()
        r = await client.get(url, headers=headers)
        out.append(time.perf_counter() - t)
        r.raise_for_status()
    return out


async def run(args: argparse.Namespace) -> None:
    name = f"civic_bench_surveys_{secrets.token_hex(4)}"
    prefix = f"bench{secrets.token_hex(4)}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'create database "{name}"')
    await admin.close()
    url = with_database(ADMIN_URL, name)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {mint_token(tenant=TENANT, roles=['staff'])}"}
    try:
        with server(url, prefix, port, "surveys"):
            await wait_ready(base, attempts=600)
            limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
            async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:
                flood_id = await create_survey(client, headers, "flood")
                public = f"/api/surveys/public/{TENANT}/flood"
                n = args.responses

                gets = [{"method": "GET", "path": public} for _ in range(n)]
                await generate(port, gets[: args.concurrency * 4], connections=args.concurrency)  # warm-up
                await checkpoint()
                # Baseline and flood take turns, and each side's fastest round counts: what else the machine
                # does at one moment then weighs on both alike.
                base_rates: list[float] = []
                flood_rates: list[float] = []
                base_r = flood_r = None
                for turn in range(args.rounds):
                    posts = [
                        {
                            "path": f"{public}/responses",
                            "body": {"answers": answers(i)},
                            "headers": {"Idempotency-Key": f"bench-{turn}-{i:08d}"},
                        }
                        for i in range(n)
                    ]
                    base_r = await generate(port, gets, connections=args.concurrency)
                    flood_r = await generate(port, posts, connections=args.concurrency)
                    base_st, flood_st = Counter(base_r["statuses"]), Counter(flood_r["statuses"])
                    assert base_st == {200: n}, base_st
                    assert flood_st == {201: n}, flood_st
                    base_rates.append(n / base_r["elapsed"])
                    flood_rates.append(n / flood_r["elapsed"])
                assert base_r is not None and flood_r is not None
                results = (await client.get(f"/api/surveys/surveys/{flood_id}/results", headers=headers)).json()
                assert results["responses"] == n * args.rounds, results["responses"]
                base_rate, flood_rate = max(base_rates), max(flood_rates)
                print(
                    f"flood through HTTP: uvicorn subprocess (1 worker), a bench.loadgen process with "
                    f"{args.concurrency} keep-alive connections, load average {os.getloadavg()[0]:.1f}"
                )
                print(
                    f"  baseline GET questionnaire (one indexed read): {base_rate:8.0f} req/s   "
                    f"load generator CPU {share(base_r)}   (fastest of {rates(base_rates)})"
                )
                print(
                    f"  POST response                                : {flood_rate:8.0f} resp/s  "
                    f"load generator CPU {share(flood_r)}   (fastest of {rates(flood_rates)}), "
                    f"all {n * args.rounds} stored and counted once"
                )
                responses_vs_get = flood_rate / base_rate

                # Two surveys, one with a thousand responses and one with a million, vacuumed and analysed as
                # autovacuum would have left them by then, read in turns (the same reasoning as above).
                small_id = await create_survey(client, headers, "thousand")
                big_id = await create_survey(client, headers, "million")
                conn = await db.connect(url, "surveys")
                try:
                    await bulk_load(conn, small_id, 1, 1_000)
                    t = time.perf_counter()
                    await bulk_load(conn, big_id, 1, 1_000_000)
                    load_s = time.perf_counter() - t
                    for table in ("responses", "free_texts", "result_counters"):
                        await conn.execute(f"vacuum analyze {table}")
                    await checkpoint()
                    stored = await conn.fetchval("select count(*) from responses where survey_id = $1", big_id)
                finally:
                    await conn.close()
                small_url = f"/api/surveys/surveys/{small_id}/results"
                big_url = f"/api/surveys/surveys/{big_id}/results"
                lat_1k: list[float] = []
                lat_1m: list[float] = []
                for _ in range(args.rounds):
                    lat_1k += await read_results(client, small_url, headers, args.reads // args.rounds)
                    lat_1m += await read_results(client, big_url, headers, args.reads // args.rounds)
                final = (await client.get(big_url, headers=headers)).json()
                assert final["responses"] == 1_000_000 == stored, (final["responses"], stored)
                sat = {q["id"]: q for q in final["questions"]}["sat"]
                assert sat["mean"] == 3.0 and sum(sat["distribution"].values()) == 1_000_000, sat
                m1k, m1m = statistics.median(lat_1k), statistics.median(lat_1m)
                print(
                    f"results latency, staff GET /results, {len(lat_1k)} sequential reads each, in {args.rounds} turns"
                )
                print(f"  at     1,000 responses: median {ms(m1k)}   p95 {ms(statistics.quantiles(lat_1k, n=20)[18])}")
                print(
                    f"  at 1,000,000 responses: median {ms(m1m)}   p95 {ms(statistics.quantiles(lat_1m, n=20)[18])}"
                    f"   (1,000,000 bulk-loaded in {load_s:.1f} s)"
                )
                print(f"responses_per_s_http: {flood_rate:.0f}")
                print(f"responses_vs_indexed_get: {responses_vs_get:.2f}")
                print(f"results_latency_1m_vs_1k: {m1m / m1k:.2f}")
    finally:
        admin = await asyncpg.connect(ADMIN_URL)
        await admin.execute(f'drop database if exists "{name}" with (force)')
        await admin.close()
        r = aioredis.Redis.from_url(REDIS_URL)
        keys = [k async for k in r.scan_iter(f"{prefix}:*", count=1000)]
        if keys:
            await r.delete(*keys)
        await r.aclose()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--responses", type=int, default=4_000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--reads", type=int, default=200)
    p.add_argument("--rounds", type=int, default=3, help="turns of baseline and measurement")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
