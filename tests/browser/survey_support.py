"""What the survey pages' browser tests add to tests/browser/support.py: ``make up``'s one process *with its
demo* (the county's survey, open now, and the poster QR codes) on a fresh database and stream prefix."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

from civic.devservers import free_port
from tests.browser.support import ADMIN_URL, REDIS_URL
from tests.support import drop_test_state
from tests.up import civic_up

#: Where the poster of the demo leads (civic/demo.py: SURVEY_SLUG).
DEMO_SURVEY = "/umfrage/kreis-dithmarschen/dithmarschen-digital"


@dataclass
class Running:
    base_url: str
    log: Path

    def logs(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-60:])


@asynccontextmanager
async def running_with_demo(tmp_path: Path) -> AsyncIterator[Running]:
    """``python -m civic.up`` with the demo, on free ports; stopped and its state dropped after."""
    database = f"civic_websurveys_{secrets.token_hex(4)}"
    prefix = f"websv{secrets.token_hex(4)}"
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'create database "{database}"')
    finally:
        await admin.close()
    port, smtp_port = free_port(), free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CIVIC_")},
        "DATABASE_URL": ADMIN_URL.rsplit("/", 1)[0] + f"/{database}",
        "REDIS_URL": REDIS_URL,
        "CIVIC_STREAM_PREFIX": prefix,
        "CIVIC_STATE_DIR": str(tmp_path / "state"),
        "CIVIC_PUBLIC_BASE_URL": base_url,
        "CIVIC_CONSUMER_BLOCK_MS": "100",
        "CIVIC_RELAY_POLL_SECONDS": "0.2",
        "CIVIC_SURVEYS_TICK_SECONDS": "0.2",
        "CIVIC_LOG_JSON": "false",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "civic-up.log"
    running = Running(base_url, log)
    try:
        async with civic_up(["--port", str(port), "--smtp-port", str(smtp_port)], env, log) as process:
            await _wait_for_demo(base_url, process, running)
            yield running
    finally:
        await drop_test_state(ADMIN_URL, database, REDIS_URL, prefix)


async def _wait_for_demo(base_url: str, process: subprocess.Popen[bytes], running: Running) -> None:
    """Until the whole demo is loaded (civic.up prints the pages to open after the content demo, which comes
    after the survey) and the clock loop has opened the survey."""
    deadline = time.monotonic() + 180
    last = ""
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"civic.up exited with {process.returncode}:\n{running.logs()}")
            try:
                r = await client.get(DEMO_SURVEY)
                loaded = "pages to open" in running.log.read_text(errors="replace")
                if loaded and r.status_code == 200 and "Umfrage beginnen" in r.text:
                    return
                last = f"{r.status_code}, demo loaded: {loaded}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            await asyncio.sleep(0.2)
    raise AssertionError(f"the demo survey did not open ({last}):\n{running.logs()}")
