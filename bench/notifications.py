"""Benchmark: reminder mails fanned out from one "deadline approaching" event to a local SMTP sink.

The sink runs in a process of its own: aiosmtpd, the one the target was set against, or with ``--sink-kind
lean`` ``bench.smtpsink``, which answers pipelined commands with one write as a production server does (then
the plain aiosmtplib client, not the sink, is the baseline's limit). The notifications service runs as ``civic
serve`` runs it (uvicorn, ``--processes`` worker processes, default two as deploy/k8s runs two replicas, each with its
consumer, relay and ``--connections`` SMTP connections); the reminder event is written to its stream as the
registration service's relay writes it, and the clock runs from then to the last mail recorded as sent. In the
same run, a plain aiosmtplib loop in one process sends as many similar messages straight to the sink over
``--connections`` connections: the baseline. The sink's own CPU share during it is printed, so a reader can
see whether the sink or the plain client was the limit; during the service's run, the CPU of each part (its
processes, the sink, PostgreSQL, Redis), so a reader can see whether the sink or the machine's cores were.
Last line: ``mail_vs_smtp_sink: <ratio>``.

    DATABASE_URL=... REDIS_URL=... python -m bench.notifications [--count 50000] [--connections 16]
        [--processes 2] [--sink-kind aiosmtpd|lean] [--notifications-nice N]

The service's processes run at the CPU weight it is deployed with, a tenth of the others'
(``bench.common.NOTIFICATIONS_NICE``, as ``bench-rush`` runs them): on this machine the sink stands for the
mail server, which in production has cores of its own. ``--notifications-nice 0`` runs them at the sink's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from uuid import uuid4

import aiosmtplib
import asyncpg
import uvloop
from aiosmtplib.email import flatten_message
from redis.asyncio import Redis

from bench.common import (
    ADMIN_URL,
    NOTIFICATIONS_NICE,
    REDIS_URL,
    CpuMeter,
    OffersPipelining,
    checkpoint,
    cpu_seconds,
    drop_scratch,
    free_port,
    server,
    wait_ready,
    with_database,
)
from services.notifications.settings import NotificationSettings
from shared.bus.outbox import Outbox
from shared.bus.streams import Keys, entry_fields
from shared.contracts.common import DeadlineKind
from shared.contracts.envelope import Envelope
from shared.contracts.registration import MeetingDeadlineApproachingV1, MeetingPublishedV1, Venue
from shared.contracts.registry import REGISTRY

TENANT = "kreis-bench"


def run_sink(port: int) -> None:
    """The SMTP sink: accepts everything, keeps nothing."""
    from aiosmtpd.controller import Controller

    class Accept(OffersPipelining):
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            return "250 OK"

    controller = Controller(Accept(), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        sys.stdin.read()  # until the parent closes our stdin
    controller.stop()


def similar_message(i: int) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = "Anmeldeschluss naht: Auftaktveranstaltung Digitalstrategie"
    msg["From"] = "civic <beteiligung@example.org>"
    msg["To"] = f"person{i}@example.org"
    msg["List-Unsubscribe"] = f"<http://localhost:8000/api/notifications/unsubscribe?token={uuid4()}.abcdefabcdef>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    text = "Guten Tag,\n\ndie Anmeldung ist nur noch bis Montag, 25. Oktober 2021, 23:59 Uhr möglich.\n" * 4
    msg.set_content(text)
    msg.add_alternative(f"<html><body><p>{text}</p></body></html>", subtype="html")
    return msg


async def sink_rate(port: int, count: int, connections: int) -> float:
    """Messages per second the sink accepts from a plain aiosmtplib loop."""
    # Flattened before the clock starts: what is timed is the SMTP exchange and the sink's work only.
    # One message flattened, then the address varied: building 50,000 EmailMessages would take minutes here.
    raw = flatten_message(similar_message(0))
    messages = [
        (f"person{i}@example.org", raw.replace(b"person0@example.org", f"person{i}@example.org".encode()))
        for i in range(count)
    ]
    queue = iter(range(count))

    async def worker() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
        await client.connect()
        for i in queue:
            to, raw = messages[i]
            await client.sendmail("beteiligung@example.org", [to], raw)
        await client.quit()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return count / (time.perf_counter() - started)


async def service_rate(
    database_url: str,
    redis_url: str,
    prefix: str,
    smtp_port: int,
    count: int,
    connections: int,
    processes: int,
    sink_pid: int,
    nice: int = 0,
) -> float:
    """Mails per second of the notifications service, run as ``civic serve`` runs it (uvicorn, ``processes``
    worker processes sharing the consumer group and the queue, ``connections`` SMTP connections each), from the
    reminder event's arrival in its stream to the last mail recorded as sent. Printed beside it: the CPU its
    processes, the sink (``sink_pid``), PostgreSQL and Redis used meanwhile."""
    http_port = free_port()
    env = {
        "CIVIC_NOTIFICATIONS_SMTP_HOST": "127.0.0.1",
        "CIVIC_NOTIFICATIONS_SMTP_PORT": str(smtp_port),
        "CIVIC_NOTIFICATIONS_SMTP_POOL_SIZE": str(connections),
        "CIVIC_NOTIFICATIONS_SIGNING_SECRET": "bench-secret",
    }
    keys = Keys(prefix)
    outbox = Outbox("registration")
    redis = Redis.from_url(redis_url)
    with server(
        database_url, prefix, http_port, "notifications", redis_url=redis_url, env=env, workers=processes, nice=nice
    ) as proc:
        await wait_ready(f"http://127.0.0.1:{http_port}")
        conn = await asyncpg.connect(database_url, server_settings={"search_path": "notifications"})
        try:
            process, meeting_id = uuid4(), uuid4()
            async with conn.transaction():
                # count subscribers of one process, confirmed, with keys and addresses as the API would store them.
                await conn.execute(
                    "insert into recipients (id, tenant, address, email_sha256, recipient_key, locale)"
                    " select gen_random_uuid(), $1, 'person' || i || '@example.org', md5(i::text), md5('k' || i),"
                    " case when i % 5 = 0 then 'en' else 'de' end from generate_series(1, $2) i",
                    TENANT,
                    count,
                )
                await conn.execute(
                    "insert into subscriptions (id, tenant, recipient_id, process_id, state, created_at,"
                    " confirmed_at) select gen_random_uuid(), tenant, id, $2, 'confirmed', now(), now()"
                    " from recipients where tenant = $1",
                    TENANT,
                    process,
                )
            starts = datetime(2021, 10, 28, 16, 0, tzinfo=UTC)
            meeting = MeetingPublishedV1(
                meeting_id=meeting_id,
                title="Auftaktveranstaltung Digitalstrategie",
                starts_at=starts,
                ends_at=starts + timedelta(hours=2),
                venue=Venue(name="Berufsbildungszentrum", city="Heide"),
                process_id=process,
                url="https://beteiligung.example.org/termine/auftakt",
            )
            reminder = MeetingDeadlineApproachingV1(
                deadline_id=uuid4(),
                kind=DeadlineKind.REGISTRATION_CLOSES,
                subject_id=str(meeting_id),
                due_at=starts - timedelta(days=3),
                offset_seconds=86400,
            )

            async def publish(position: int, env: Envelope) -> None:
                # What the registration service's relay writes, where it writes it.
                stream = keys.stream(REGISTRY.get(env.type).stream)
                await redis.xadd(stream, entry_fields(env.model_dump_json(), position))  # type: ignore[arg-type]

            await publish(1, outbox.envelope(meeting, tenant=TENANT, subject="m", sequence=1))
            known = "select exists (select 1 from meetings where meeting_id = $1)"
            for _ in range(1200):
                if await conn.fetchval(known, meeting_id):
                    break
                await asyncio.sleep(0.05)
            else:
                raise SystemExit("the notifications service did not hear of the meeting")
            await checkpoint()
            meter = CpuMeter({"service": proc.pid, "SMTP sink": sink_pid})
            meter.begin()
            started = time.perf_counter()
            await publish(2, outbox.envelope(reminder, tenant=TENANT, subject=None))
            # Watched through the send queue's partial indexes, a row's worth of work per question: counting the
            # 50,000 rows five times a second took a tenth of a core from the service being measured. A failed
            # mail's next attempt lies in the future, a queued one's does not.
            watch = (
                "select exists (select 1 from deliveries),"
                " exists (select 1 from send_queue where channel = 'email' and lease_until is null)"
                " or exists (select 1 from send_queue where channel = 'email' and lease_until is not null),"
                " exists (select 1 from send_queue where channel = 'email' and lease_until is null"
                "   and due_at > now())"
            )
            while True:
                queued, left, failed = await conn.fetchrow(watch)
                if failed:
                    raise SystemExit("a delivery failed: the benchmark is void")
                if queued and not left:
                    break
                await asyncio.sleep(0.2)
            elapsed = time.perf_counter() - started
            used = meter.used()
            sent = await conn.fetchval("select count(*) from deliveries where state = 'sent'")
            if sent != count:
                raise SystemExit(f"{sent} of {count} mails sent: the benchmark is void")
            # How many of the log's row updates stayed on their page (HOT: no index written); the statistics
            # reach the view within a second of the backends' last commit.
            await asyncio.sleep(1.2)
            updates, hot = await conn.fetchrow(
                "select n_tup_upd, n_tup_hot_upd from pg_stat_user_tables"
                " where schemaname = 'notifications' and relname = 'deliveries'"
            )
            # By part, so a reader sees what held the rate: the sink's one process, or the machine's cores.
            cores = os.cpu_count() or 1
            print(
                f"service: {count} mails in {elapsed:.1f} s; CPU by part, share of a core and per mail: "
                + ", ".join(f"{name} {t / elapsed * 100:.0f} % ({t / count * 1e6:.0f} us)" for name, t in used.items())
                + f"; in all {sum(used.values()) / (elapsed * cores) * 100:.0f} % of {cores} cores"
            )
            print(f"delivery log: {updates} row updates, {hot / max(updates, 1) * 100:.0f} % of them in place (HOT)")
            return count / elapsed
        finally:
            await conn.close()
            await redis.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument(
        "--connections",
        type=int,
        default=NotificationSettings.model_fields["smtp_pool_size"].default,
        help="SMTP connections per process (the service's default), and the baseline's",
    )
    parser.add_argument(
        "--processes", type=int, default=2, help="notifications processes (deploy/k8s runs two replicas)"
    )
    parser.add_argument(
        "--sink-kind",
        choices=("aiosmtpd", "lean"),
        default="aiosmtpd",
        help="the SMTP sink: aiosmtpd (the target's) or bench.smtpsink (answers as a production server does)",
    )
    parser.add_argument(
        "--notifications-nice",
        type=int,
        default=NOTIFICATIONS_NICE,
        help="the service's processes' nice level: their CPU weight below the sink's, as deployed (0: the same)",
    )
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--skip-baseline", action="store_true", help="for profiling the service alone")
    args = parser.parse_args()
    if args.sink:
        run_sink(args.sink)
        return
    admin_url, redis_url = ADMIN_URL, REDIS_URL
    name = f"civic_bench_notifications_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'create database "{name}"')
    await admin.close()
    port, prefix = free_port(), f"bench{secrets.token_hex(4)}"
    command = (
        ["bench.smtpsink", str(port)] if args.sink_kind == "lean" else ["bench.notifications", "--sink", str(port)]
    )
    sink = await asyncio.create_subprocess_exec(
        sys.executable, "-m", *command, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert sink.stdout is not None
        await sink.stdout.readline()
        sink_cpu0, t0 = cpu_seconds(sink.pid), time.perf_counter()
        baseline = 1.0 if args.skip_baseline else await sink_rate(port, args.count, args.connections)
        sink_share = (cpu_seconds(sink.pid) - sink_cpu0) / (time.perf_counter() - t0)
        url = with_database(admin_url, name)
        rate = await service_rate(
            url, redis_url, prefix, port, args.count, args.connections, args.processes, sink.pid,
            args.notifications_nice,
        )  # fmt: skip
        print(
            f"mails: {args.count}, notifications processes: {args.processes} with {args.connections} SMTP "
            f"connections each{f', at nice {args.notifications_nice}' if args.notifications_nice else ''}, "
            f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
        )
        print(
            f"smtp_sink_plain_aiosmtplib: {baseline:.0f} mails/s (one process, {args.connections} connections; "
            f"the sink ({args.sink_kind}) used {sink_share * 100:.0f} % of a core meanwhile)"
        )
        print(f"notifications_service: {rate:.0f} mails/s")
        print(f"mail_vs_smtp_sink: {rate / baseline:.2f}")
    finally:
        if sink.stdin:
            sink.stdin.close()
        with contextlib.suppress(ProcessLookupError):
            sink.terminate()
        await asyncio.wait_for(sink.wait(), 10)
        await drop_scratch(name, prefix)


if __name__ == "__main__":
    # The service runs on uvloop in production (uvicorn picks it); so do it and the baseline here.
    uvloop.run(main())
