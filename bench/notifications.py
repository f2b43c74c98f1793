"""Benchmark: reminder mails fanned out from one "deadline approaching" event to a local SMTP sink.

The sink (aiosmtpd) runs in a subprocess so it does not share our event loop. In the same run, a plain
aiosmtplib loop sends the same number of similar messages straight to the sink over as many connections: that
is the sink's own acceptance rate, the ceiling for the service. Last line: ``mail_vs_smtp_sink: <ratio>``.

    DATABASE_URL=... REDIS_URL=... python -m bench.notifications [--count 50000] [--connections 8]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
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

from bench.common import ADMIN_URL, REDIS_URL, free_port, with_database
from services.notifications.service import definition as notifications
from services.notifications.settings import NotificationSettings
from shared import db
from shared.bus.outbox import Outbox
from shared.contracts.common import DeadlineKind
from shared.contracts.registration import MeetingDeadlineApproachingV1, MeetingPublishedV1, Venue
from shared.service import ServiceRuntime
from shared.settings import Settings

TENANT = "kreis-bench"


def run_sink(port: int) -> None:
    """The SMTP sink: accepts everything, keeps nothing."""
    from aiosmtpd.controller import Controller

    class Accept:
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


async def start_runtime(database_url: str, redis_url: str, prefix: str, port: int, pool_size: int) -> ServiceRuntime:
    """The notifications service as ``civic serve`` runs it (consumer, senders, relay), in this process."""
    settings = Settings(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        stream_prefix=prefix,
        log_json=False,
        consumer_block_ms=100,
        relay_poll_seconds=0.2,
    )
    nsettings = NotificationSettings(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_pool_size=pool_size,
        sender_poll_seconds=0.05,
        signing_secret="bench-secret",
    )
    definition = dataclasses.replace(notifications, settings=lambda: nsettings)
    await db.migrate(database_url, definition.schema, definition.all_migrations())
    runtime = ServiceRuntime(definition, settings)
    await runtime.start()
    return runtime


async def service_rate(database_url: str, redis_url: str, port: int, count: int, connections: int) -> float:
    runtime = await start_runtime(database_url, redis_url, f"bench{secrets.token_hex(4)}", port, connections)
    ctx = runtime.ctx
    assert ctx is not None
    try:
        process, meeting_id = uuid4(), uuid4()
        async with ctx.pool.acquire() as conn, conn.transaction():
            # count subscribers of one process, confirmed, with keys and addresses as the API would store them.
            await conn.execute(
                "insert into recipients (id, tenant, address, email_sha256, recipient_key, locale)"
                " select gen_random_uuid(), $1, 'person' || i || '@example.org', md5(i::text), md5('k' || i),"
                " case when i % 5 = 0 then 'en' else 'de' end from generate_series(1, $2) i",
                TENANT,
                count,
            )
            await conn.execute(
                "insert into subscriptions (id, tenant, recipient_id, process_id, state, created_at, confirmed_at)"
                " select gen_random_uuid(), tenant, id, $2, 'confirmed', now(), now() from recipients"
                " where tenant = $1",
                TENANT,
                process,
            )
        outbox = Outbox("registration")
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
        consumer = runtime.consumer
        assert consumer is not None
        key = ctx.keys.stream("registration")
        await consumer.handle_entries(
            key,
            [
                (
                    b"0-1",
                    {
                        b"__data__": outbox.envelope(meeting, tenant=TENANT, subject="m", sequence=1)
                        .model_dump_json()
                        .encode()
                    },
                )
            ],
        )
        started = time.perf_counter()
        env = outbox.envelope(reminder, tenant=TENANT, subject=None)
        await consumer.handle_entries(key, [(b"0-2", {b"__data__": env.model_dump_json().encode()})])
        fanned = time.perf_counter() - started
        while True:
            # Asked through the partial indexes of the rows still to send, so that watching costs next to
            # nothing (counting all 50,000 rows five times a second took CPU from the service being measured).
            left = await ctx.pool.fetchval(
                "select (select count(*) from deliveries where state in ('queued', 'failed'))"
                " + (select count(*) from deliveries where state = 'sending')"
            )
            if left == 0:
                break
            if await ctx.pool.fetchval("select exists (select 1 from deliveries where state = 'failed')"):
                raise SystemExit("a delivery failed: the benchmark is void")
            await asyncio.sleep(0.2)
        elapsed = time.perf_counter() - started
        sent = await ctx.pool.fetchval("select count(*) from deliveries where state = 'sent'")
        if sent != count:
            raise SystemExit(f"{sent} of {count} mails sent: the benchmark is void")
        print(f"fan-out of {count} deliveries in the consumer's transaction: {fanned:.2f} s")
        print(f"service: {count} mails in {elapsed:.1f} s")
        return count / elapsed
    finally:
        await runtime.stop()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--connections", type=int, default=8)
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
    port = free_port()
    sink = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.notifications",
        "--sink",
        str(port),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert sink.stdout is not None
        await sink.stdout.readline()
        baseline = 1.0 if args.skip_baseline else await sink_rate(port, args.count, args.connections)
        url = with_database(admin_url, name)
        rate = await service_rate(url, redis_url, port, args.count, args.connections)
        print(f"mails: {args.count}, SMTP connections: {args.connections}, {os.cpu_count()} cores, uvloop")
        print(f"smtp_sink_plain_aiosmtplib: {baseline:.0f} mails/s")
        print(f"notifications_service: {rate:.0f} mails/s")
        print(f"mail_vs_smtp_sink: {rate / baseline:.2f}")
    finally:
        if sink.stdin:
            sink.stdin.close()
        with contextlib.suppress(ProcessLookupError):
            sink.terminate()
        await asyncio.wait_for(sink.wait(), 10)
        admin = await asyncpg.connect(admin_url)
        await admin.execute(f'drop database if exists "{name}" with (force)')
        await admin.close()


if __name__ == "__main__":
    # The service runs on uvloop in production (uvicorn picks it); so do it and the baseline here.
    uvloop.run(main())
