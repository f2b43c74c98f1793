"""Servers, processes and Jepsen-style bookkeeping for the fault tests.

Every test gets its own PostgreSQL and Valkey (Redis) on free ports in a temporary folder, so killing or
restarting them never touches the machine's shared servers. Producers and consumers are real processes
(``tests/faults/procs``) whose output goes to files the test polls.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from civic.devservers import EmbeddedPostgres, EmbeddedRedis
from shared import db
from shared.bus.errors import TRANSIENT
from shared.bus.streams import Keys, ensure_group, entry_event
from tests.faults.procs.common import EFFECTS_SQL, STREAM
from tests.support import eventually

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "faults"


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    out: Path
    err: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.out.read_text(errors="replace") if self.out.exists() else ""

    def log(self) -> str:
        return self.err.read_text(errors="replace") if self.err.exists() else ""

    async def said(self, marker: str, timeout: float = 20) -> None:
        async def probe() -> bool:
            if marker in self.output():
                return True
            if self.popen.poll() is not None and marker not in self.output():
                raise AssertionError(f"{self.name} exited ({self.popen.returncode}):\n{self.log()[-3000:]}")
            return False

        await eventually(probe, timeout=timeout, what=f"{self.name} saying {marker!r}")

    async def exited(self, timeout: float = 20) -> int:
        async def probe() -> bool:
            return self.popen.poll() is not None

        await eventually(probe, timeout=timeout, what=f"{self.name} exiting")
        return int(self.popen.returncode)

    def stopped(self) -> bool:
        """True while the process is stopped by a signal (SIGSTOP)."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] == "T"

    def signal(self, sig: signal.Signals) -> None:
        self.popen.send_signal(sig)

    def terminate(self) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.popen.send_signal(signal.SIGCONT)
            self.popen.terminate()
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)


@dataclass
class Report:
    attempted: set[str]
    acknowledged: set[str]
    read: set[str]
    applications: int

    @property
    def lost(self) -> set[str]:
        return self.acknowledged - self.read

    @property
    def unexpected(self) -> set[str]:
        return self.read - self.attempted

    @property
    def duplicates(self) -> int:
        return self.applications - len(self.read)

    def assert_clean(self) -> None:
        assert self.acknowledged, "nothing was acknowledged: the test proved nothing"
        assert not self.lost, f"lost {len(self.lost)}: {sorted(self.lost)[:10]}"
        assert not self.unexpected, f"unexpected {len(self.unexpected)}: {sorted(self.unexpected)[:10]}"
        assert self.duplicates == 0, f"{self.duplicates} duplicate effects"


@dataclass
class Cluster:
    folder: Path
    pg: EmbeddedPostgres
    redis_server: EmbeddedRedis
    redis: aioredis.Redis
    keys: Keys = field(default_factory=lambda: Keys(PREFIX))
    procs: list[Proc] = field(default_factory=list)
    pools: dict[str, asyncpg.Pool] = field(default_factory=dict)

    @property
    def ledger(self) -> Path:
        return self.folder / "ledger"

    @property
    def stream_key(self) -> str:
        return self.keys.stream(STREAM)

    async def schema(self, name: str, *extra_sql: str) -> None:
        await db.migrate(self.pg.url, name, [*db.load_migrations(db.BUS_MIGRATIONS), *_extra(name, extra_sql)])

    async def consumer_schema(self, name: str) -> None:
        await self.schema(name, EFFECTS_SQL)

    def spawn(self, module: str, name: str, **env: Any) -> Proc:
        out, err = self.folder / f"{name}.out", self.folder / f"{name}.err"
        environ = {
            **os.environ,
            "DATABASE_URL": self.pg.url,
            "REDIS_URL": self.redis_server.url,
            "CIVIC_PREFIX": PREFIX,
            "CIVIC_LEDGER": str(self.ledger),
            "PYTHONPATH": str(ROOT),
            **{k: str(v) for k, v in env.items()},
        }
        with out.open("ab") as o, err.open("ab") as e:
            popen = subprocess.Popen(
                [sys.executable, "-m", f"tests.faults.procs.{module}"], env=environ, cwd=ROOT, stdout=o, stderr=e
            )
        proc = Proc(name, popen, out, err)
        self.procs.append(proc)
        return proc

    def producer(self, name: str = "producer", **env: Any) -> Proc:
        return self.spawn("producer", name, CIVIC_SCHEMA="producer", **env)

    def consumer(self, name: str, schema: str = "consumer", **env: Any) -> Proc:
        return self.spawn("consumer", name, CIVIC_SCHEMA=schema, CIVIC_NAME=name, **env)

    async def declare_groups(self, *groups: str) -> None:
        """As the migrate command does: a group that does not exist yet is protected from no trimming."""
        for group in groups:
            await ensure_group(self.redis, self.stream_key, group)

    async def pool(self, schema: str) -> asyncpg.Pool:
        if schema not in self.pools:
            self.pools[schema] = await db.create_pool(self.pg.url, schema, max_size=2)
        return self.pools[schema]

    async def fetchval(self, schema: str, sql: str, *args: Any) -> Any:
        """A query that survives a restarted PostgreSQL: a broken pool is replaced, the probe answers None."""
        try:
            return await (await self.pool(schema)).fetchval(sql, *args)
        except (*TRANSIENT, asyncpg.PostgresError):
            pool = self.pools.pop(schema, None)
            if pool is not None:
                pool.terminate()
            return None

    async def effects(self, schema: str = "consumer") -> int:
        return int(await self.fetchval(schema, "select count(*) from effects") or 0)

    async def max_seq(self, schema: str = "consumer") -> int:
        return int(await self.fetchval(schema, "select coalesce(max(seq), -1) from effects") or -1)

    async def pending(self, group: str = "consumer") -> int | None:
        try:
            return int((await self.redis.xpending(self.stream_key, group))["pending"])
        except ResponseError:
            return None

    async def pending_by_consumer(self, group: str = "consumer") -> dict[str, int]:
        summary = await self.redis.xpending(self.stream_key, group)
        return {c["name"].decode(): int(c["pending"]) for c in summary["consumers"] or []}

    def acknowledged(self) -> list[str]:
        path = self.ledger / "acknowledged"
        return path.read_text().split() if path.exists() else []

    async def drained(self, schema: str = "consumer") -> bool:
        """Every acknowledged event has its effect and the group's pending list is empty."""
        acknowledged = set(self.acknowledged())
        codes = await self.fetch_codes(schema)
        return bool(acknowledged) and acknowledged <= codes and await self.pending(schema) == 0

    async def fetch_codes(self, schema: str, *, strict: bool = False) -> set[str]:
        """The codes whose effect is committed; an empty set while PostgreSQL is away unless ``strict``."""
        try:
            rows = await (await self.pool(schema)).fetch("select code from effects")
        except (*TRANSIENT, asyncpg.PostgresError):
            if strict:
                raise
            return set()
        return {r["code"] for r in rows}

    async def report(self, schema: str = "consumer") -> Report:
        pool = await self.pool(schema)
        read = {r["code"] for r in await pool.fetch("select code from effects")}
        applications = int(await pool.fetchval("select count(*) from effects_log"))
        attempted = set((self.ledger / "attempted").read_text().split())
        return Report(attempted, set(self.acknowledged()), read, applications)

    async def stream_codes(self) -> Counter[str]:
        """How often each code stands in the stream (a relay that published twice shows a 2)."""
        import json

        found: Counter[str] = Counter()
        for _id, fields in await self.redis.xrange(self.stream_key):
            found[json.loads(entry_event(fields))["data"]["code"]] += 1
        return found

    async def close(self) -> None:
        for p in self.procs:
            p.terminate()
            # Shown by pytest only when the test failed.
            print(f"--- {p.name} (exit {p.popen.returncode}) stdout:\n{p.output()[-1500:]}\nstderr:\n{p.log()[-3000:]}")
        for pool in self.pools.values():
            pool.terminate()
        with contextlib.suppress(Exception):
            await self.redis.aclose()
        self.redis_server.stop()
        self.pg.stop("immediate")


def _extra(schema: str, sql: tuple[str, ...]) -> list[db.Migration]:
    return [db.Migration(f"faults/{schema}/{i}", s) for i, s in enumerate(sql)]


async def start_cluster(folder: Path) -> Cluster:
    started = time.monotonic()
    pg = EmbeddedPostgres(folder / "pg").start()
    try:
        redis_server = EmbeddedRedis(folder / "redis").start()
    except BaseException:
        pg.stop("immediate")
        raise
    client = aioredis.Redis.from_url(redis_server.url)
    cluster = Cluster(folder, pg, redis_server, client)
    cluster.ledger.mkdir(parents=True, exist_ok=True)
    await cluster.schema("producer")
    await cluster.consumer_schema("consumer")
    assert time.monotonic() - started < 60
    return cluster
