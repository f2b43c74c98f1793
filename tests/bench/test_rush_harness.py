"""bench-rush's harness starts its processes, runs every phase and stops cleanly (at a tiny size; no figures)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys

import asyncpg

from bench.rush import by_thirds
from shared.settings import Settings


async def test_rush_harness_runs_every_phase_and_cleans_up(settings: Settings) -> None:
    env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url}
    args = ["--rush", "20", "--clients", "5", "--seats", "5", "--idle", "2", "--idle-rate", "20"]
    args += ["--half-seconds", "0.5", "--warm", "3", "--mail-timeout", "60"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.rush", *args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    stdout = out.decode()
    assert proc.returncode == 0, err.decode()[-3000:]
    lines = stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines[-3:]] == [
        "mail_p50_after_post_ms",
        "rush_last_mail_after_last_post_s",
        "half_load_p99_ms",
    ]
    assert "outcome {'confirmed': 5, 'waitlisted': 15} (as expected)" in stdout
    assert "mails 20 of 20" in stdout
    assert re.search(r"half load: answers p99 by third of the run \d+, \d+, \d+ ms", stdout)
    database = re.search(r"scratch database (\S+)", stdout)
    assert database is not None
    conn = await asyncpg.connect(settings.database_url)
    try:
        assert not await conn.fetchval("select exists (select 1 from pg_database where datname = $1)", database[1])
    finally:
        await conn.close()


def test_the_half_loads_slow_third_shows_where_it_came() -> None:
    # In the order the requests were wanted: a slow middle, a fast start and end.
    latencies = [0.001] * 30 + [0.050] * 30 + [0.002] * 30
    assert by_thirds(latencies) == "1, 50, 2"
    assert by_thirds([0.003]) == "3"
