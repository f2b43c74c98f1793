"""The mail sender killed in the middle of a batch (issue 14): at a real SMTP server in its own process,
every mail arrives, and the copies are at most the mails that were out unrecorded
(``unrecorded_mails_per_connection`` per SMTP connection)."""

from __future__ import annotations

import signal
import socket
from collections import Counter
from pathlib import Path

import pytest

from services.notifications.service import definition
from services.notifications.settings import NotificationSettings
from shared import db
from tests.faults.harness import Cluster, Proc
from tests.support import eventually

pytestmark = pytest.mark.faults

MAILS = 300
CONNECTIONS = 4
#: The service's default: mails of a connection sent before their outcome is committed.
UNRECORDED = NotificationSettings().unrecorded_mails_per_connection


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _received(log: Path) -> Counter[str]:
    return Counter(log.read_text().split()) if log.exists() else Counter()


def _sender(cluster: Cluster, name: str, port: int) -> Proc:
    return cluster.spawn(
        "sender",
        name,
        CIVIC_NOTIFICATIONS_SMTP_HOST="127.0.0.1",
        CIVIC_NOTIFICATIONS_SMTP_PORT=port,
        CIVIC_NOTIFICATIONS_SMTP_POOL_SIZE=CONNECTIONS,
        CIVIC_NOTIFICATIONS_SMTP_TIMEOUT_SECONDS=2,
        CIVIC_NOTIFICATIONS_LEASE_SECONDS=4,
        CIVIC_NOTIFICATIONS_SENDER_POLL_SECONDS=0.05,
        CIVIC_NOTIFICATIONS_FROM_ADDRESS="beteiligung@civic.test",
        CIVIC_NOTIFICATIONS_SIGNING_SECRET="faults-secret",
    )


async def test_a_sender_killed_mid_batch_resends_at_most_the_mails_out_unrecorded(cluster: Cluster) -> None:
    await db.migrate(cluster.pg.url, "notifications", definition.all_migrations())
    pool = await cluster.pool("notifications")
    await pool.execute(
        "insert into deliveries (tenant, cause_event_id, channel, recipient_key, template, transactional, locale,"
        " address, subscription_id, next_attempt_at, created_at)"
        " select 'kreis-test', gen_random_uuid(), 'email', md5(i::text), 'subscription_confirm', true, 'de',"
        " 'person' || i || '@example.org', gen_random_uuid(), now(), now() from generate_series(1, $1) i",
        MAILS,
    )
    await pool.execute(
        "insert into send_queue (delivery_id, channel, due_at) select id, channel, now() from deliveries"
    )
    ids = {f"<{r['id']}@civic.test>" for r in await pool.fetch("select id from deliveries")}

    port, log = _free_port(), cluster.folder / "smtp.log"
    sink = cluster.spawn("smtp_sink", "smtp", CIVIC_SMTP_PORT=port, CIVIC_SMTP_LOG=log, CIVIC_SMTP_DELAY=0.02)
    await sink.said("listening")

    doomed = _sender(cluster, "doomed", port)
    await eventually(lambda: _at_least(log, MAILS // 5), timeout=30, what="a fifth of the mails accepted")
    doomed.signal(signal.SIGKILL)
    assert await doomed.exited() == -signal.SIGKILL
    before = _received(log)
    # Killed mid-batch: rows claimed and not recorded, and mails still to go.
    assert await pool.fetchval("select count(*) from delivery_log where state = 'sending'") > 0
    assert sum(before.values()) < MAILS

    _sender(cluster, "restarted", port)

    async def all_sent() -> bool:
        return await pool.fetchval("select count(*) from deliveries where state = 'sent'") == MAILS

    await eventually(all_sent, timeout=60, what="every delivery sent")
    received = _received(log)
    assert set(received) == ids  # none lost, nothing that was not queued
    duplicates = sum(received.values()) - len(received)
    assert duplicates <= CONNECTIONS * UNRECORDED, f"{duplicates} copies sent again"
    sink.terminate()


async def _at_least(log: Path, n: int) -> bool:
    return sum(_received(log).values()) >= n
