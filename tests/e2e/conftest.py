"""The two deployments the story runs against: the four services as separate processes behind nginx
(tests/deploy/gateway.py), and ``make up``'s one-process mode (``python -m civic.up``). Each gets a fresh
database and stream prefix, a clock file the test moves, an SMTP sink whose mail the test reads, and permission
to deliver webhooks to one loopback port."""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from civic.devservers import free_port
from civic.mailsink import MailSink
from tests.deploy.gateway import (
    ADMIN_URL,
    FAST_SETTINGS,
    REDIS_URL,
    GatewayUnavailable,
    _with_database,
    nginx_binary,
    running_gateway,
)
from tests.e2e.story import START, Deployment
from tests.e2e.support import set_clock
from tests.mail import MailFolder
from tests.support import drop_test_state
from tests.up import civic_up, wait_ready


def listening_port() -> int:
    """A free port below the kernel's ephemeral range, for a server the story starts late (the webhook
    receiver): a port from that range may meanwhile be taken as the local end of one of the many outgoing
    connections the deployment opens (the web client's pool, nginx's upstream keep-alive)."""
    low = (
        int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
        if Path("/proc/sys/net/ipv4/ip_local_port_range").exists()
        else 32768
    )
    for _ in range(200):
        port = random.randrange(max(1024, low - 12000), low)
        with contextlib.closing(socket.socket()) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return free_port()


def story_env(clock_file: Path, webhook_port: int) -> dict[str, str]:
    """Settings both deployments share: the moved clock, short intervals, the webhook receiver's port."""
    return {
        "CIVIC_CLOCK_FILE": str(clock_file),
        "CIVIC_DEADLINE_INTERVAL_SECONDS": "0.2",
        "CIVIC_SURVEYS_TICK_SECONDS": "0.2",
        "CIVIC_NOTIFICATIONS_SENDER_POLL_SECONDS": "0.2",
        # pydantic-settings reads a list from JSON; "#<port>" narrows the allowed loopback to the receiver.
        "CIVIC_NOTIFICATIONS_ALLOW_PRIVATE_TARGETS": json.dumps([f"127.0.0.1/32#{webhook_port}"]),
    }


@pytest.fixture(scope="module")
async def gateway_deployment(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    if nginx_binary() is None:
        pytest.skip("nginx is not installed: apt-get install -y --no-install-recommends nginx-light (.ci/run does)")
    tmp_path = tmp_path_factory.mktemp("gateway")
    clock_file = tmp_path / "clock"
    set_clock(clock_file, START)
    sink = MailSink(tmp_path / "mail", port=free_port()).start()
    webhook_port = listening_port()
    env = {
        **story_env(clock_file, webhook_port),
        "CIVIC_NOTIFICATIONS_SMTP_HOST": "127.0.0.1",
        "CIVIC_NOTIFICATIONS_SMTP_PORT": str(sink.port),
    }
    try:
        async with running_gateway(tmp_path / "gateway", env=env) as gw:
            yield Deployment(
                name="gateway",
                base_url=gw.url,
                admin_database_url=gw.database_url,
                set_clock=lambda at: set_clock(clock_file, at),
                read_mail=MailFolder(tmp_path / "mail").read,
                webhook_port=webhook_port,
                logs=gw.logs,
            )
    except GatewayUnavailable as exc:
        pytest.skip(str(exc))
    finally:
        sink.stop()


@pytest.fixture(scope="module")
async def one_process_deployment(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    tmp_path = tmp_path_factory.mktemp("one-process")
    database = f"civic_e2e_{secrets.token_hex(4)}"
    prefix = f"e2e{secrets.token_hex(4)}"
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'create database "{database}"')
    finally:
        await admin.close()
    database_url = _with_database(ADMIN_URL, database)
    clock_file = tmp_path / "clock"
    set_clock(clock_file, START)
    state = tmp_path / "state"
    port, smtp_port, webhook_port = free_port(), free_port(), listening_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CIVIC_")},
        **FAST_SETTINGS,
        **story_env(clock_file, webhook_port),
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "CIVIC_STREAM_PREFIX": prefix,
        "CIVIC_STATE_DIR": str(state),
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "civic-up.log"

    def logs() -> str:
        return "\n".join(log.read_text(errors="replace").splitlines()[-60:])

    base_url = f"http://127.0.0.1:{port}"
    try:
        async with civic_up(["--no-demo", "--port", str(port), "--smtp-port", str(smtp_port)], env, log) as process:
            await wait_ready(base_url, process, logs)
            yield Deployment(
                name="one process (make up)",
                base_url=base_url,
                admin_database_url=database_url,
                set_clock=lambda at: set_clock(clock_file, at),
                read_mail=MailFolder(state / "mail").read,
                webhook_port=webhook_port,
                logs=logs,
            )
    finally:
        await drop_test_state(ADMIN_URL, database, REDIS_URL, prefix)
