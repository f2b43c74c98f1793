"""What the benchmarks share: the servers they run against, scratch database URLs, a uvicorn subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import httpx

from civic.devservers import free_port

__all__ = [
    "ADMIN_URL", "NOTIFICATIONS_NICE", "REDIS_URL", "CpuMeter", "OffersPipelining", "checkpoint", "cpu_by_command",
    "cpu_seconds", "free_port", "load", "server", "stopping", "wait_ready", "with_database",
]  # fmt: skip

ADMIN_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

#: The notifications processes' CPU weight as deployed: a tenth of the other processes' (docker-compose.yml's
#: ``cpu_shares``, deploy/k8s's CPU requests), so that answering a person comes before sending a mail. On one
#: machine's processes that is ``nice 10`` (a weight of 110 against 1,024).
NOTIFICATIONS_NICE = 10


class OffersPipelining:
    """Base of the benchmarks' aiosmtpd handlers: the server offers PIPELINING (RFC 2920), as Postfix, Exim and
    the large mail providers do. aiosmtpd reads commands from a buffered stream a line at a time, so commands
    that arrive together are answered in order, which is what the extension asks of a server."""

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]


async def drop_scratch(database: str, prefix: str) -> None:
    """Remove what a benchmark made: its scratch database and its Redis keys (best effort for the keys)."""
    import asyncpg

    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'drop database if exists "{database}" with (force)')
    await admin.close()
    with contextlib.suppress(Exception):
        import redis

        r = redis.Redis.from_url(REDIS_URL)
        keys = list(r.scan_iter(f"{prefix}:*", count=1000))
        if keys:
            r.delete(*keys)


async def checkpoint() -> None:
    """``CHECKPOINT`` before a measurement, as pgbench does before its runs: what earlier work wrote (another
    benchmark's bulk load, this one's set-up) is flushed now, not in the middle of the measurement. Skipped
    where the role may not."""
    import asyncpg

    admin = await asyncpg.connect(ADMIN_URL)
    try:
        with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
            await admin.execute("checkpoint")
    finally:
        await admin.close()


def with_database(url: str, name: str) -> str:
    """``url`` pointing at the database ``name`` instead."""
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


@contextlib.contextmanager
def stopping(proc: subprocess.Popen[bytes], timeout: float = 15) -> Iterator[subprocess.Popen[bytes]]:
    """Terminate ``proc`` on leaving, killing it if it has not exited after ``timeout`` seconds."""
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def server(
    db_url: str,
    prefix: str,
    port: int,
    services: str,
    *,
    redis_url: str = REDIS_URL,
    env: Mapping[str, str] | None = None,
    workers: int = 1,
    nice: int = 0,
) -> Iterator[subprocess.Popen[bytes]]:
    """``services`` under ``uvicorn --factory civic.runner:app`` in a subprocess (bus loops on in each worker).

    ``env`` adds to (or overrides) the variables every benchmark sets, e.g. a service's own settings. ``nice``:
    the processes' CPU weight below the others' (what ``cpu_shares`` or a CPU request sets for a container).
    """
    full_env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "CIVIC_SERVICES": services,
        "CIVIC_STREAM_PREFIX": prefix,
        "CIVIC_LOG_LEVEL": "WARNING",
        # A benchmark's rush comes from one address on purpose: the rate limits would stop it.
        "CIVIC_RATE_LIMITS": "false",
        **(env or {}),
    }
    cmd = [
        sys.executable, "-m", "uvicorn", "--factory", "civic.runner:app", "--host", "127.0.0.1", "--port",
        str(port), "--log-level", "warning", "--no-access-log", "--backlog", "4096", "--workers", str(workers),
    ]  # fmt: skip
    if nice:
        cmd = ["nice", "-n", str(nice), *cmd]  # nice execs the command: the pid stays the server's
    with stopping(subprocess.Popen(cmd, env=full_env)) as proc:
        yield proc


async def wait_ready(base: str, *, path: str = "/readyz", attempts: int = 300, interval: float = 0.1) -> None:
    """Poll ``base + path`` until it answers 200; exit if it has not after ``attempts`` tries."""
    async with httpx.AsyncClient() as client:
        for _ in range(attempts):
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{base}{path}")).status_code == 200:
                    return
            await asyncio.sleep(interval)
    raise SystemExit("server did not become ready")


async def load(
    port: int, requests: list[dict[str, Any]], *, connections: int, rate: float | None = None
) -> dict[str, Any]:
    """Send ``requests`` to 127.0.0.1:``port`` from a ``bench.loadgen`` process, all wanted at once, or with
    ``rate`` one every ``1 / rate`` seconds (open loop)."""
    spec = json.dumps(
        {"host": "127.0.0.1", "port": port, "connections": connections, "rate": rate, "requests": requests}
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.loadgen", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate(spec.encode())
    if proc.returncode != 0:
        raise SystemExit(f"the load generator failed (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(out)
    return result


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) used so far by process ``pid`` and its descendants that are still running."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    with contextlib.suppress(FileNotFoundError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            with contextlib.suppress(FileNotFoundError):
                total += cpu_seconds(int(child))
    return total


def _own_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_by_command(command: str) -> dict[int, float]:
    """CPU seconds so far of every process of this machine named ``command`` (``postgres``: the server's
    backends and its background processes), by pid."""
    out: dict[int, float] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError):
                if (d / "comm").read_text().strip() == command:
                    out[int(d.name)] = _own_cpu(int(d.name))
    return out


class CpuMeter:
    """CPU used over a phase by each part of the deployment: the service processes (with their workers), the
    SMTP server, and the machine's PostgreSQL and Redis servers (every process of theirs; a backend that ends
    within the phase takes its time with it, the services' pools keep theirs)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start: dict[str, float] = {}
        self.servers: dict[str, dict[int, float]] = {}

    def begin(self) -> None:
        self.start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.servers = {"PostgreSQL": cpu_by_command("postgres"), "Redis": cpu_by_command("redis-server")}

    def used(self) -> dict[str, float]:
        out = {name: cpu_seconds(pid) - self.start[name] for name, pid in self.pids.items()}
        for name, before in self.servers.items():
            now = cpu_by_command("postgres" if name == "PostgreSQL" else "redis-server")
            out[name] = sum(t - before.get(pid, 0.0) for pid, t in now.items())
        return out
