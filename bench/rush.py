"""Benchmark: what a person sees, on the deployment as it runs in production.

Processes, each of its own, on the configured PostgreSQL and Redis (``DATABASE_URL``, ``REDIS_URL``) in a
scratch database and stream prefix made for the run and removed afterwards:

- the registration service and the notifications service, each under uvicorn as ``civic serve`` runs it (HTTP
  API, relay, consumer and, in notifications, the mail senders; production defaults for polling and blocking),
  rate limits off (the load comes from one address);
- an SMTP server that accepts every mail and records the moment it accepted it, per recipient: ``bench.smtpsink``,
  which answers pipelined commands with one write as Postfix does (``--sink-kind aiosmtpd`` for aiosmtpd, which
  took about a sixth of the machine's CPU in the rush);
- the load generator (``bench.loadgen``), one process per phase.

Phases, each beside a baseline measured in the same run:

1. idle: ``--idle`` registrations one after another (open loop at ``--idle-rate`` per second, one
   connection); per registration the time from the POST's answer to its mail being accepted by the SMTP server,
   p50 and p99. Baseline: the SMTP server's own accept time for a similar mail from a plain aiosmtplib client,
   and ``/healthz`` of the registration process at the same rate.
2. rush: ``--rush`` registrations (default 20,000) for ``--seats`` (300) from ``--clients`` (2,000) keep-alive
   connections, all wanted at once: registrations/s, p50/p99, the outcome (exactly ``--seats`` confirmed),
   and the time from the last answer to the last mail accepted. Baselines: ``/healthz`` rushed the same way,
   and the time the SMTP server needs to accept as many mails from a plain aiosmtplib loop.
3. half load: open loop at half the rush's rate for ``--half-seconds``: p99 of the answers (and of the mails).
   Baseline: ``/healthz`` at the same rate.

    DATABASE_URL=... REDIS_URL=... python -m bench.rush [--rush 20000] [--clients 2000] [--seats 300]
        [--idle 100] [--idle-rate 4] [--half-seconds 10] [--workers 1] [--smtp-connections 8]

Last lines: ``mail_p50_after_post_ms``, ``rush_last_mail_after_last_post_s``, ``half_load_p99_ms``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiosmtplib
import asyncpg
import httpx
from aiosmtplib.email import flatten_message

from bench.common import (
    ADMIN_URL,
    NOTIFICATIONS_NICE,
    REDIS_URL,
    CpuMeter,
    OffersPipelining,
    checkpoint,
    drop_scratch,
    free_port,
    load,
    server,
    wait_ready,
    with_database,
)
from bench.notifications import similar_message
from bench.registration import create_meeting
from services.notifications.settings import NotificationSettings
from shared.http.auth import mint_token
from shared.settings import Settings

TENANT = "kreis-bench"
SINK_NAMES = {"lean": "bench.smtpsink", "aiosmtpd": "aiosmtpd"}
#: How each SMTP server's process is started (``python -m ... PORT``).
SINK_COMMANDS = {"lean": ["bench.smtpsink"], "aiosmtpd": ["bench.rush", "--sink"]}


# -- the SMTP server ------------------------------------------------------------------------------------------
def run_aiosmtpd_sink(port: int) -> None:
    """aiosmtpd (``--sink-kind aiosmtpd``) recording what ``bench.smtpsink`` records, with its commands on stdin
    (see ``bench.smtpsink.run``)."""
    from aiosmtpd.controller import Controller

    accepted: list[tuple[str, float]] = []
    lock = threading.Lock()

    class Record(OffersPipelining):
        async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
            now = time.monotonic()
            with lock:
                accepted.extend((str(r).lower(), now) for r in envelope.rcpt_tos)
            return "250 OK"

    controller = Controller(Record(), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    while line := sys.stdin.readline():
        with lock:
            if line.strip() == "count":
                print(len(accepted), flush=True)
            elif line.strip() == "dump":
                print(json.dumps(accepted), flush=True)
    controller.stop()


class Sink:
    """The SMTP server's process, seen from the benchmark."""

    def __init__(self, port: int, kind: str = "lean") -> None:
        self.port = port
        self.kind = kind
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", *SINK_COMMANDS[self.kind], str(self.port),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 28,  # the dump is one line
        )  # fmt: skip
        assert self.proc.stdout is not None
        await self.proc.stdout.readline()

    async def _ask(self, command: str) -> Any:
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()
        return json.loads(await self.proc.stdout.readline())

    async def count(self) -> int:
        return int(await self._ask("count"))

    async def accepted(self) -> dict[str, float]:
        """Recipient -> when the first mail to it was accepted."""
        first: dict[str, float] = {}
        for rcpt, t in await self._ask("dump"):
            first.setdefault(rcpt, t)
        return first

    async def wait_for(self, total: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while await self.count() < total:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.stdin:
            self.proc.stdin.close()
        with contextlib.suppress(ProcessLookupError):
            self.proc.terminate()
        await asyncio.wait_for(self.proc.wait(), 10)


async def smtp_accept_times(port: int, count: int) -> list[float]:
    """Seconds per mail of a plain aiosmtplib client sending similar mails one after another."""
    raw = flatten_message(similar_message(0))
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
    await client.connect()
    times = []
    for i in range(count):
        t0 = time.monotonic()
        await client.sendmail("beteiligung@example.org", [f"baseline-{i}@example.org"], raw)
        times.append(time.monotonic() - t0)
    await client.quit()
    return times


async def smtp_plain_seconds(port: int, count: int, connections: int) -> float:
    """Seconds a plain aiosmtplib loop over ``connections`` needs to have ``count`` mails accepted."""
    raw = flatten_message(similar_message(0))
    todo = iter(range(count))

    async def worker() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
        await client.connect()
        for i in todo:
            await client.sendmail("beteiligung@example.org", [f"plain-{i}@example.org"], raw)
        await client.quit()

    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return time.monotonic() - t0


# -- figures ---------------------------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


def ms(values: list[float]) -> str:
    return f"p50 {statistics.median(values) * 1000:.1f} ms, p99 {pct(values, 0.99) * 1000:.1f} ms"


def by_thirds(values: list[float]) -> str:
    """p99 of the answers in each third of an open-loop run (its requests in the order they were wanted): where in
    the run the slow answers came, e.g. while the first registrations' ticket mails are being made."""
    third = max(1, len(values) // 3)
    parts = [values[:third], values[third : 2 * third], values[2 * third :]]
    return ", ".join(f"{pct(part, 0.99) * 1000:.0f}" for part in parts if part)


def registrations(meeting_id: str, run: str, n: int) -> list[dict[str, Any]]:
    return [
        {
            "path": f"/api/registration/meetings/{meeting_id}/registrations",
            "body": {
                "name": f"Person {i}",
                "email": f"{run}-{i}@example.org",
                "privacy_consent": True,
                "attestations": ["3g"],
            },
        }
        for i in range(n)
    ]


def healthz(n: int) -> list[dict[str, Any]]:
    return [{"method": "GET", "path": "/healthz"} for _ in range(n)]


def outcome(result: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status, body in zip(result["statuses"], result["bodies"], strict=True):
        key = body["status"] if status in (200, 201) and isinstance(body, dict) else str(status)
        counts[key] = counts.get(key, 0) + 1
    return counts


def mail_delays(run: str, result: dict[str, Any], accepted: dict[str, float]) -> list[float]:
    """Per registration: from the POST's answer to its mail accepted."""
    return [
        accepted[f"{run}-{i}@example.org"] - answered
        for i, answered in enumerate(result["answered_at"])
        if f"{run}-{i}@example.org" in accepted
    ]


def generator_share(result: dict[str, Any]) -> str:
    return f"load generator CPU {result['cpu_seconds'] / result['elapsed'] * 100:.0f} % of a core"


# -- where the time goes ---------------------------------------------------------------------------------------
def cpu_line(phase: str, used: dict[str, float], registrations: int, seconds: float) -> str:
    cores = os.cpu_count() or 1
    return (
        f"{phase}: CPU per registration, from its POST to its mail accepted: "
        + ", ".join(f"{name} {t / registrations * 1e6:.0f} us" for name, t in used.items())
        + f"; in all {sum(used.values()) / registrations * 1e6:.0f} us, "
        f"{sum(used.values()) / (seconds * cores) * 100:.0f} % of {cores} cores over {seconds:.1f} s"
    )


#: What a sampled stack was doing, by the first of these files found in it (outermost frame first).
ACTIVITIES = [
    ("relay", "shared/bus/relay.py"),
    ("consumer", "shared/bus/consumer.py"),
    ("sender", "services/notifications/loops.py"),
    ("request", "starlette/"),
    ("request", "uvicorn/protocols/"),
    ("request", "services/"),
]
#: Which layer it was in: the innermost frame that is in one of these files decides.
LAYERS = [
    ("PostgreSQL client (asyncpg)", ("asyncpg/",)),
    ("Redis client", ("redis/",)),
    ("SMTP and mail building", ("aiosmtplib/", "/email/", "qrcode/", "PIL/", "icalendar/", "jinja2/")),
    ("event loop (uvloop's I/O and callbacks, in C)", ("asyncio/runners.py", "uvicorn/server.py", "_compat.py")),
    ("HTTP framework (uvicorn, Starlette, FastAPI, pydantic)", ("uvicorn/", "starlette/", "fastapi/", "pydantic")),
    ("civic code (services, shared)", ("services/", "shared/")),
]


def profiler(pid: int, out: str) -> subprocess.Popen[bytes] | None:
    """py-spy sampling ``pid`` into ``out`` (collapsed stacks) until interrupted; None when not installed."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        return None
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    cmd = [exe, "record", "--format", "raw", "--rate", "50", "--nonblocking", "--subprocesses", "-o", out]
    cmd += ["-p", str(pid)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def spies(args: Any, phase: str, processes: Any) -> list[subprocess.Popen[bytes] | None]:
    """With ``--profile``: py-spy on each (process, name) for ``phase``, into ``{profile}/{phase}-{name}.txt``."""
    if not args.profile:
        return []
    return [profiler(p.pid, f"{args.profile}/{phase}-{n}.txt") for p, n in processes]


def stop(spying: list[subprocess.Popen[bytes] | None]) -> None:
    for spy in spying:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)


async def statements(db_url: str, reset: bool) -> list[str]:
    """The database's statements by PostgreSQL's time since the last ``reset`` (pg_stat_statements, where the
    server loads it), the eight dearest: calls, rows per call, mean and total time."""
    conn = await asyncpg.connect(db_url)
    try:
        if "pg_stat_statements" not in await conn.fetchval("show shared_preload_libraries"):
            return ["statements: the server does not load pg_stat_statements (shared_preload_libraries)"]
        if reset:
            # The view is the server's; the scratch database needs the extension to read it.
            await conn.execute("create extension if not exists pg_stat_statements")
            await conn.execute("select pg_stat_statements_reset()")
            return []
        rows = await conn.fetch(
            "select calls, rows, total_exec_time, query from pg_stat_statements"
            " where dbid = (select oid from pg_database where datname = current_database())"
            " order by total_exec_time desc limit 8"
        )
    finally:
        await conn.close()
    lines = ["PostgreSQL statements of the half load (pg_stat_statements, by total time):"]
    for r in rows:
        query = " ".join(r["query"].split())[:90]
        lines.append(
            f"  {r['calls']:>6} calls, {r['rows'] / max(r['calls'], 1):5.1f} rows, "
            f"{r['total_exec_time'] / max(r['calls'], 1):6.3f} ms mean, {r['total_exec_time']:7.0f} ms: {query}"
        )
    return lines


async def maintenance(db_url: str) -> dict[str, tuple[int, int]]:
    """Autovacuum and autoanalyze runs so far per table of the scratch database (``pg_stat_all_tables``)."""
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            "select schemaname || '.' || relname as name, autovacuum_count, autoanalyze_count"
            " from pg_stat_all_tables where schemaname not in ('pg_catalog', 'information_schema', 'pg_toast')"
        )
    finally:
        await conn.close()
    return {r["name"]: (r["autovacuum_count"], r["autoanalyze_count"]) for r in rows}


def maintenance_line(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> str:
    runs = [
        f"{name} ({v - before.get(name, (0, 0))[0]} vacuum, {a - before.get(name, (0, 0))[1]} analyze)"
        for name, (v, a) in sorted(after.items())
        if (v, a) != before.get(name, (0, 0))
    ]
    return f"autovacuum during the half load: {', '.join(runs) if runs else 'none'}"


def breakdown(path: str) -> dict[tuple[str, str], int]:
    """Samples per (activity, layer) from py-spy's collapsed stacks."""
    counts: dict[tuple[str, str], int] = {}
    with contextlib.suppress(FileNotFoundError):
        for line in Path(path).read_text().splitlines():
            stack, _, n = line.rpartition(" ")
            frames = stack.split(";")
            activity = next((a for a, f in ACTIVITIES if any(f in fr for fr in frames)), "other")
            layer = next(
                (name for fr in reversed(frames) for name, marks in LAYERS if any(m in fr for m in marks)), "other"
            )
            counts[activity, layer] = counts.get((activity, layer), 0) + int(n)
    return counts


def breakdown_lines(process: str, counts: dict[tuple[str, str], int]) -> list[str]:
    total = sum(counts.values())
    if not total:
        return [f"profile {process}: no samples (py-spy not installed or not permitted)"]
    lines = [f"profile {process} ({total} samples at 50/s while busy, shares of its CPU):"]
    for (activity, layer), n in sorted(counts.items(), key=lambda kv: -kv[1]):
        if n / total >= 0.02:
            lines.append(f"  {activity:<9} {layer:<55} {n / total * 100:4.0f} %")
    return lines


class Report(list[str]):
    """The figures so far; each also goes to stderr at once, so a long run shows how far it has got."""

    def append(self, line: str) -> None:
        print(line, file=sys.stderr, flush=True)
        super().append(line)


# -- the run ---------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def deployment(db_url: str, prefix: str, reg_port: int, notif_port: int, smtp_port: int, args: Any) -> Iterator[Any]:
    common = {"CIVIC_RATE_LIMITS": "false", "CIVIC_PUBLIC_BASE_URL": f"http://127.0.0.1:{reg_port}"}
    notifications = {
        **common,
        "CIVIC_NOTIFICATIONS_SMTP_HOST": "127.0.0.1",
        "CIVIC_NOTIFICATIONS_SMTP_PORT": str(smtp_port),
        "CIVIC_NOTIFICATIONS_SMTP_POOL_SIZE": str(args.smtp_connections),
    }
    with (
        server(db_url, prefix, reg_port, "registration", env=common, workers=args.workers) as reg,
        server(
            db_url, prefix, notif_port, "notifications", env=notifications, workers=args.notification_processes
        ) as notif,
    ):
        yield reg, notif


async def meeting_known(db_url: str, meeting_id: str, timeout: float = 60) -> None:
    """Wait until the notifications service has heard of the meeting (its mails cannot be rendered before)."""
    conn = await asyncpg.connect(db_url)
    try:
        deadline = time.monotonic() + timeout
        while not await conn.fetchval(
            "select exists (select 1 from notifications.meetings where meeting_id = $1::uuid)", meeting_id
        ):
            if time.monotonic() > deadline:
                raise SystemExit("the notifications service did not hear of the meeting")
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def measure(args: Any, db_url: str, prefix: str) -> list[str]:
    reg_port, notif_port, smtp_port = free_port(), free_port(), free_port()
    base = f"http://127.0.0.1:{reg_port}"
    settings = Settings(DATABASE_URL=db_url, REDIS_URL=REDIS_URL, stream_prefix=prefix)
    headers = {"Authorization": f"Bearer {mint_token(tenant=TENANT, roles=['staff'], settings=settings)}"}
    sink = Sink(smtp_port, args.sink_kind)
    await sink.start()
    lines = Report()
    try:
        with deployment(db_url, prefix, reg_port, notif_port, smtp_port, args) as (reg, notif):
            await wait_ready(base)
            await wait_ready(f"http://127.0.0.1:{notif_port}")
            async with httpx.AsyncClient(timeout=60) as client:
                warm = await create_meeting(client, base, headers, 50)
                idle_meeting = await create_meeting(client, base, headers, max(args.idle, 1))
                rush_meeting = await create_meeting(client, base, headers, args.seats)
                half_meeting = await create_meeting(client, base, headers, args.seats)
            for m in (warm, idle_meeting, rush_meeting, half_meeting):
                await meeting_known(db_url, m)
            # Warm-up: connections, prepared statements, templates, the SMTP pool.
            await load(reg_port, registrations(warm, "warm", args.warm), connections=10)
            if not await sink.wait_for(args.warm, 120):
                raise SystemExit("the warm-up's mails did not arrive")

            # 1. idle
            accept = await smtp_accept_times(smtp_port, max(args.idle, 20))
            health_idle = await load(reg_port, healthz(args.idle), connections=1, rate=args.idle_rate)
            before = await sink.count()
            idle = await load(
                reg_port, registrations(idle_meeting, "idle", args.idle), connections=1, rate=args.idle_rate
            )
            await sink.wait_for(before + args.idle, 120)
            idle_mail = mail_delays("idle", idle, await sink.accepted())
            lines.append(f"smtp_sink_accept (plain aiosmtplib, one after another): {ms(accept)}")
            lines.append(f"healthz at {args.idle_rate}/s: {ms(health_idle['latencies'])}")
            lines.append(
                f"idle: {args.idle} registrations at {args.idle_rate}/s: answers {ms(idle['latencies'])}, "
                f"mail after answer {ms(idle_mail)} ({len(idle_mail)} of {args.idle} mails)"
            )

            # 2. rush
            health_rush = await load(reg_port, healthz(args.rush), connections=args.clients)
            await checkpoint()
            meter = CpuMeter({"registration": reg.pid, "notifications": notif.pid, "SMTP server": sink.pid})
            meter.begin()
            rush_started = time.monotonic()
            before = await sink.count()
            services = ((reg, "registration"), (notif, "notifications"))
            spying = spies(args, "rush", services)
            rush = await load(reg_port, registrations(rush_meeting, "rush", args.rush), connections=args.clients)
            arrived = await sink.wait_for(before + args.rush, args.mail_timeout)
            used = meter.used() | {"load generator": rush["cpu_seconds"]}
            rush_seconds = time.monotonic() - rush_started
            stop(spying)
            accepted = await sink.accepted()
            rush_mail = mail_delays("rush", rush, accepted)
            last_post = max(rush["answered_at"])
            last_mail = max(
                (accepted[f"rush-{i}@example.org"] for i in range(args.rush) if f"rush-{i}@example.org" in accepted),
                default=float("nan"),
            )
            rate = args.rush / rush["elapsed"]
            counts = outcome(rush)
            ok = counts == {"confirmed": args.seats, "waitlisted": args.rush - args.seats}
            connections = args.smtp_connections * args.notification_processes
            plain = await smtp_plain_seconds(smtp_port, args.rush, connections)
            lines.append(
                f"healthz rushed ({args.rush} from {args.clients} connections): "
                f"{args.rush / health_rush['elapsed']:.0f} req/s, {ms(health_rush['latencies'])}, "
                f"{generator_share(health_rush)}"
            )
            lines.append(
                f"rush: {args.rush} registrations, {args.seats} seats, {args.clients} connections: {rate:.0f} "
                f"registrations/s over {rush['elapsed']:.1f} s, {ms(rush['latencies'])}, outcome {counts} "
                f"({'as expected' if ok else 'UNEXPECTED'}), {generator_share(rush)}"
            )
            lines.append(
                f"rush: mails {len(rush_mail)} of {args.rush}{'' if arrived else ' (TIMED OUT)'}, mail after answer "
                f"{ms(rush_mail)}"
            )
            lines.append(cpu_line("rush", used, args.rush, rush_seconds))
            lines.append(
                f"smtp_sink_plain ({args.rush} mails, plain aiosmtplib over {connections} connections): "
                f"{plain:.2f} s ({args.rush / plain:.0f} mails/s)"
            )

            for process in ("registration", "notifications") if args.profile else ():
                lines += breakdown_lines(f"{process} (rush)", breakdown(f"{args.profile}/rush-{process}.txt"))

            # 3. half load, open loop
            half_rate = rate / 2
            n_half = max(1, int(half_rate * args.half_seconds))
            health_half = await load(reg_port, healthz(n_half), connections=args.clients, rate=half_rate)
            before = await sink.count()
            if args.profile:
                await statements(db_url, reset=True)
                vacuumed = await maintenance(db_url)
            spying = spies(args, "half", services)
            meter.begin()
            half_started = time.monotonic()
            half = await load(
                reg_port, registrations(half_meeting, "half", n_half), connections=args.clients, rate=half_rate
            )
            await sink.wait_for(before + n_half, args.mail_timeout)
            stop(spying)
            half_used = meter.used() | {"load generator": half["cpu_seconds"]}
            half_seconds = time.monotonic() - half_started
            half_mail = mail_delays("half", half, await sink.accepted())
            lines.append(f"healthz open loop at {half_rate:.0f}/s: {ms(health_half['latencies'])}")
            lines.append(
                f"half load: {n_half} registrations open loop at {half_rate:.0f}/s: answers {ms(half['latencies'])}, "
                f"mail after answer {ms(half_mail)}, {generator_share(half)}"
            )
            lines.append(f"half load: answers p99 by third of the run {by_thirds(half['latencies'])} ms")
            lines.append(cpu_line("half load", half_used, n_half, half_seconds))
            for process in ("registration", "notifications") if args.profile else ():
                lines += breakdown_lines(f"{process} (half load)", breakdown(f"{args.profile}/half-{process}.txt"))
            if args.profile:
                lines += await statements(db_url, reset=False)
                lines.append(maintenance_line(vacuumed, await maintenance(db_url)))

            lines.append(
                f"mail_p50_after_post_ms: {statistics.median(idle_mail) * 1000:.0f} "
                f"(baseline: SMTP accept p50 {statistics.median(accept) * 1000:.1f} ms)"
            )
            lines.append(
                f"rush_last_mail_after_last_post_s: {last_mail - last_post:.2f} "
                f"(baseline: the SMTP server takes {args.rush} mails from a plain client in {plain:.2f} s)"
            )
            lines.append(
                f"half_load_p99_ms: {pct(half['latencies'], 0.99) * 1000:.0f} "
                f"(baseline: /healthz at the same rate p99 {pct(health_half['latencies'], 0.99) * 1000:.1f} ms)"
            )
    finally:
        await sink.stop()
    return lines


def arguments() -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rush", type=int, default=20_000)
    ap.add_argument("--clients", type=int, default=2000)
    ap.add_argument("--seats", type=int, default=300)
    ap.add_argument("--idle", type=int, default=100)
    ap.add_argument("--idle-rate", type=float, default=4.0)
    ap.add_argument("--half-seconds", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument(
        "--smtp-connections",
        type=int,
        default=NotificationSettings.model_fields["smtp_pool_size"].default,
        help="per notifications process (the service's default)",
    )
    ap.add_argument(
        "--notification-processes", type=int, default=2, help="notifications processes (deploy/k8s runs two replicas)"
    )
    ap.add_argument(
        "--notifications-nice",
        type=int,
        default=NOTIFICATIONS_NICE,
        help="the notifications processes' nice level: their CPU weight below the others', as deployed (0: the same)",
    )
    ap.add_argument("--warm", type=int, default=100, help="warm-up registrations (and mails)")
    ap.add_argument("--mail-timeout", type=float, default=600.0)
    ap.add_argument(
        "--profile",
        help="a folder: sample both services with py-spy during the rush and the half load, print a breakdown "
        "and the half load's dearest PostgreSQL statements and autovacuum runs",
    )
    ap.add_argument(
        "--sink-kind",
        choices=("lean", "aiosmtpd"),
        default="lean",
        help="the SMTP server: bench.smtpsink (lean, as a production server answers pipelined commands) or aiosmtpd",
    )
    ap.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    return ap.parse_args()


async def main(args: argparse.Namespace) -> None:
    name = f"civic_bench_rush_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'create database "{name}"')
    await admin.close()
    prefix = f"benchrush{secrets.token_hex(3)}"
    try:
        lines = await measure(args, with_database(ADMIN_URL, name), prefix)
    finally:
        await drop_scratch(name, prefix)
    niced = f", at nice {args.notifications_nice}" if args.notifications_nice else ""
    print(
        f"setup: registration ({args.workers} uvicorn worker{'s' if args.workers > 1 else ''}) and notifications "
        f"({args.notification_processes} processes, each with relay, consumer and {args.smtp_connections} mail "
        f"senders{niced}) as separate processes, an SMTP server ({SINK_NAMES[args.sink_kind]}) "
        f"and bench.loadgen in processes of their own, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f}; scratch database {name} (dropped)"
    )
    for line in lines:
        print(line)


if __name__ == "__main__":
    parsed = arguments()
    if parsed.sink:
        run_aiosmtpd_sink(parsed.sink)  # the SMTP server's process
    else:
        asyncio.run(main(parsed))
