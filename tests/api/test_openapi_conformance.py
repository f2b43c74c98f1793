"""Every service's OpenAPI document against the running service: schemathesis, with a staff token and without.

A real ``civic serve`` process (all four services, their lifespan and bus loops) on the configured PostgreSQL
and Redis, and schemathesis' command line against each service's own document, in the phases examples,
coverage and fuzzing, and, with a token, stateful: it follows the documents' links (create a meeting, publish
it, register, read and cancel the registration; create a survey, publish it, answer it; create a process and
its parts ...). The checks: no server errors, only documented status codes and media types, bodies as the
schemas say. Each staff run also asserts that the chains reached their end (registrations, responses, ...
exist), so a run that never got past the first step fails.

Bounds: ``EXAMPLES`` cases per operation and phase, ``phases.stateful.max-steps`` in schemathesis.toml.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from civic.devservers import free_port
from shared.http.auth import mint_token
from tests.conftest import REDIS_URL
from tests.support import eventually

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
ST = Path(sys.executable).parent / "st"
SERVICES = ("registration", "surveys", "notifications", "content")
TENANT = "kreis-schemathesis"
EXAMPLES = int(os.environ.get("CIVIC_API_TEST_EXAMPLES", "25"))
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"

#: What each service's stateful run must have reached: the end of its chains, counted in its own tables.
REACHED = {
    "registration": [
        "select count(*) from registration.meetings where tenant = $1 and status = 'published'",
        "select count(*) from registration.registrations where tenant = $1",
        "select count(*) from registration.registrations where tenant = $1 and status = 'cancelled'",
    ],
    "surveys": [
        "select count(*) from surveys.surveys where tenant = $1 and published_at is not null",
        "select count(*) from surveys.responses r join surveys.surveys s on s.id = r.survey_id where s.tenant = $1",
    ],
    "notifications": ["select count(*) from notifications.webhook_endpoints where tenant = $1"],
    "content": [
        "select count(*) from content.processes where tenant = $1",
        "select count(*) from content.phases where tenant = $1",
        "select count(*) from content.articles where tenant = $1",
        "select count(*) from content.qr_codes where tenant = $1",
    ],
}


@dataclass
class Server:
    base_url: str
    database_url: str
    log: Path


@pytest.fixture(scope="module")
async def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    port = free_port()
    prefix = f"test{secrets.token_hex(4)}"
    log = tmp_path_factory.mktemp("api") / "civic-serve.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "CIVIC_STREAM_PREFIX": prefix,
        # Nothing listens there: mails stay queued and are retried, which no test here reads.
        "CIVIC_NOTIFICATIONS_SMTP_PORT": str(free_port()),
        # The earlier phases send many answers from this one address; the throttle (which answers a documented
        # 429) would otherwise stop the stateful chains short of recording responses.
        "CIVIC_SURVEYS_THROTTLE_LIMIT": "1000000",
        "CIVIC_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    process = _start([sys.executable, "-m", "civic.cli", "serve", "--port", str(port)], env, log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=2) as client:

            async def ready() -> bool:
                assert process.poll() is None, log.read_text(errors="replace")
                try:
                    return (await client.get("/readyz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(ready, timeout=60, interval=0.2, what="civic serve ready")
        yield Server(base_url, database_url, log)
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 15)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait, 5)
        import redis.asyncio as aioredis

        r = aioredis.Redis.from_url(REDIS_URL)
        keys = [k async for k in r.scan_iter(f"{prefix}:*", count=1000)]
        if keys:
            await r.delete(*keys)
        await r.aclose()


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


async def schemathesis(
    server: Server, service: str, *, token: str | None, phases: str, only: list[str] | None = None
) -> str:
    argv = [
        str(ST),
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "run",
        f"{server.base_url}/api/{service}/openapi.json",
        "--url",
        server.base_url,
        "--checks",
        CHECKS,
        "--phases",
        phases,
        "--max-examples",
        str(EXAMPLES),
        "--workers",
        "1",
        "--no-color",
        "--generation-database",
        "none",
        # The same examples on every run: a CI result can be reproduced, and whether the chains reach the deep
        # operations does not depend on the draw.
        "--seed",
        "20261201",
    ]
    if token is not None:
        argv += ["--header", f"Authorization: Bearer {token}"]
    argv += only or []
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.api.hooks", "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    server_log = server.log.read_text(errors="replace")[-6000:]
    assert proc.returncode == 0, f"schemathesis failed for {service}:\n{text}\n--- server log ---\n{server_log}"
    return text


@pytest.mark.parametrize("service", SERVICES)
async def test_with_a_staff_token_including_stateful_chains(server: Server, service: str) -> None:
    token = mint_token(tenant=TENANT, roles=["staff"])
    out = await schemathesis(server, service, token=token, phases="examples,coverage,fuzzing,stateful")
    assert "Stateful" in out, out
    conn = await asyncpg.connect(server.database_url)
    try:
        for query in REACHED[service]:
            assert await conn.fetchval(query, TENANT) > 0, f"the stateful run never reached: {query}\n{out}"
    finally:
        await conn.close()


@pytest.mark.parametrize("service", SERVICES)
async def test_without_a_token(server: Server, service: str) -> None:
    await schemathesis(server, service, token=None, phases="examples,coverage,fuzzing")


async def test_dead_letters_with_an_admin_token(server: Server) -> None:
    """The operators' routes (shared/http/dead_letters.py, the same in every service; a staff token only meets
    their 403): with an admin token, on one service's document."""
    token = mint_token(tenant=TENANT, roles=["admin"])
    only = ["--include-path-regex", "/admin/dead-letters"]
    out = await schemathesis(server, "notifications", token=token, phases="examples,coverage,fuzzing", only=only)
    assert "dead-letters" in out, out
