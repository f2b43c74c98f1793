"""Starting and stopping ``python -m civic.up`` (``make up``'s one process) for tests: the browser tests
(tests/browser/support.py, tests/browser/survey_support.py) and the one-process story (tests/e2e/conftest.py)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


@asynccontextmanager
async def civic_up(args: list[str], env: dict[str, str], log: Path) -> AsyncIterator[subprocess.Popen[bytes]]:
    """``python -m civic.up *args`` with exactly ``env``, its output in ``log``; on leaving it is terminated
    (killed if it has not stopped after 15 s)."""
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "civic.up", *args], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, 15)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait, 5)


async def wait_ready(
    base_url: str, process: subprocess.Popen[bytes], logs: Callable[[], str], timeout: float = 60
) -> None:
    """Until ``/readyz`` answers 200; fails with the last lines of the log if civic.up exits or ``timeout``
    seconds pass first."""
    deadline = time.monotonic() + timeout
    last = ""
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as client:
        while True:
            if process.poll() is not None:
                raise AssertionError(f"civic.up exited with {process.returncode}:\n{logs()}")
            try:
                response = await client.get("/readyz")
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:300]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                raise AssertionError(f"civic.up not ready after {timeout}s ({last}):\n{logs()}")
            await asyncio.sleep(0.1)
