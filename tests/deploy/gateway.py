"""The gateway for real on one machine: the four services and the web client as separate processes behind nginx.

``running_gateway(...)`` migrates a fresh database, starts ``python -m civic.cli serve --services <name>`` per
service on its own port and ``python -m civic.cli web`` (calling the APIs through the gateway), renders
deploy/nginx/civic.conf for those ports (deploy/nginx/render.py) and runs
nginx in front; it yields when every service answers ``/readyz/<name>`` through the gateway and stops
everything afterwards. The ``gateway`` fixture wraps it for tests (and skips them where no nginx is installed;
``.ci/run`` installs Debian's nginx-light).

Other test packages use it with ``from tests.deploy.gateway import gateway`` in their conftest.py, or call
``running_gateway`` with ``env=`` for settings of their own (an SMTP sink's port, say).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from urllib.parse import urlparse, urlunparse

import asyncpg
import httpx
import pytest

from civic.devservers import free_port
from tests.support import drop_test_state

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("registration", "surveys", "notifications", "content")
#: What the gateway proxies to and waits for: the services and the web client.
UPSTREAMS = (*SERVICES, "web")
ADMIN_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

#: Short intervals, as tests/conftest.py's ``settings``, so tests through the gateway poll briefly.
FAST_SETTINGS = {
    "CIVIC_CONSUMER_BLOCK_MS": "100",
    "CIVIC_RELAY_POLL_SECONDS": "0.2",
    "CIVIC_RECLAIM_IDLE_MS": "500",
    "CIVIC_RECLAIM_INTERVAL_SECONDS": "0.2",
    "CIVIC_MAINTENANCE_INTERVAL_SECONDS": "0.2",
    "CIVIC_DEADLINE_INTERVAL_SECONDS": "0.1",
    "CIVIC_LOG_JSON": "false",
}


class GatewayUnavailable(RuntimeError):
    """No nginx binary on this machine."""


class GatewayFailed(RuntimeError):
    """A process of the gateway setup exited or did not become ready; the message carries its log."""


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    for candidate in ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def load_render() -> ModuleType:
    """deploy/nginx/render.py (deploy/ is not a package: it is what operators run, not what civic imports)."""
    spec = importlib.util.spec_from_file_location("civic_deploy_render", ROOT / "deploy" / "nginx" / "render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class Gateway:
    url: str
    database_url: str
    redis_url: str
    prefix: str
    run_dir: Path
    service_urls: dict[str, str]
    processes: dict[str, Process] = field(default_factory=dict)

    def logs(self) -> str:
        return "\n".join(f"--- {name} ({p.log}) ---\n{p.tail()}" for name, p in self.processes.items())


def _with_database(url: str, name: str) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


def _start(name: str, argv: list[str], env: Mapping[str, str], run_dir: Path) -> Process:
    log = run_dir / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(argv, env=dict(env), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    return Process(name, popen, log)


async def _stop(process: Process) -> None:
    if process.popen.poll() is None:
        process.popen.terminate()
        try:
            await asyncio.to_thread(process.popen.wait, 10)
        except subprocess.TimeoutExpired:
            process.popen.kill()
            await asyncio.to_thread(process.popen.wait, 5)


async def _wait_ready(gateway: Gateway, timeout: float) -> None:
    pending = set(UPSTREAMS)
    deadline = time.monotonic() + timeout
    last: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=2) as client:
        while pending:
            for name, process in gateway.processes.items():
                if process.popen.poll() is not None:
                    raise GatewayFailed(f"{name} exited with {process.popen.returncode}:\n{process.tail()}")
            for name in sorted(pending):
                try:
                    response = await client.get(f"/readyz/{name}")
                    last[name] = f"{response.status_code} {response.text[:200]}"
                    if response.status_code == 200:
                        pending.discard(name)
                except httpx.HTTPError as exc:
                    last[name] = repr(exc)
            if pending and time.monotonic() > deadline:
                raise GatewayFailed(f"not ready after {timeout}s: {last}\n{gateway.logs()}")
            if pending:
                await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def running_gateway(
    run_dir: Path,
    *,
    admin_url: str = ADMIN_URL,
    redis_url: str = REDIS_URL,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
) -> AsyncIterator[Gateway]:
    """Four service processes on a fresh database and stream prefix, nginx in front; all stopped after."""
    nginx = nginx_binary()
    if nginx is None:
        raise GatewayUnavailable("no nginx binary found (apt-get install -y --no-install-recommends nginx-light)")
    await asyncio.to_thread(run_dir.mkdir, parents=True, exist_ok=True)
    database = f"civic_gateway_{secrets.token_hex(4)}"
    prefix = f"gateway{secrets.token_hex(4)}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'create database "{database}"')
    finally:
        await admin.close()
    ports = {name: free_port() for name in UPSTREAMS}
    gateway = Gateway(
        url=f"http://127.0.0.1:{free_port()}",
        database_url=_with_database(admin_url, database),
        redis_url=redis_url,
        prefix=prefix,
        run_dir=run_dir,
        service_urls={name: f"http://127.0.0.1:{port}" for name, port in ports.items()},
    )
    base_env = {
        **os.environ,
        **FAST_SETTINGS,
        "DATABASE_URL": gateway.database_url,
        "REDIS_URL": redis_url,
        "CIVIC_STREAM_PREFIX": prefix,
        "CIVIC_PUBLIC_BASE_URL": gateway.url,
        # The links in mails (subscription confirmation, unsubscribe) lead through the gateway too.
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    try:
        migrate = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "civic.cli", "migrate"],
            env=base_env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if migrate.returncode != 0:
            raise GatewayFailed(f"civic migrate failed ({migrate.returncode}):\n{migrate.stdout}\n{migrate.stderr}")
        for name in SERVICES:
            argv = [sys.executable, "-m", "civic.cli", "serve", "--services", name, "--port", str(ports[name])]
            gateway.processes[name] = _start(name, argv, {**base_env, "CIVIC_SERVICES": name}, run_dir)
        web_argv = [sys.executable, "-m", "civic.cli", "web", "--port", str(ports["web"])]
        web_env = {**base_env, "CIVIC_WEB_API_BASE_URL": gateway.url}
        gateway.processes["web"] = _start("web", web_argv, web_env, run_dir)
        render = load_render()
        conf = render.render(
            run_dir / "nginx",
            port=int(gateway.url.rsplit(":", 1)[1]),
            upstreams={name: f"127.0.0.1:{port}" for name, port in ports.items()},
            nginx=nginx,
        )
        gateway.processes["nginx"] = _start("nginx", render.command(conf, nginx), base_env, run_dir)
        await _wait_ready(gateway, timeout)
        yield gateway
    finally:
        # The gateway first, so nothing reaches a service that is shutting down.
        for process in sorted(gateway.processes.values(), key=lambda p: p.name != "nginx"):
            await _stop(process)
        await drop_test_state(admin_url, database, redis_url, prefix)


@pytest.fixture(scope="session")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    """The gateway on this machine with the four services behind it (one set per test session)."""
    if nginx_binary() is None:
        pytest.skip("nginx is not installed: apt-get install -y --no-install-recommends nginx-light (.ci/run does)")
    async with running_gateway(tmp_path_factory.mktemp("gateway")) as gw:
        yield gw
