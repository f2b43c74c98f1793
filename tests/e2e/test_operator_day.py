"""The operator's day with ``make up``: start, use, Ctrl-C, start again, stop by a signal to make alone.

Runs the real ``make up`` (devenv with embedded PostgreSQL and Valkey in a state folder of its own, on free
ports) twice. The second start finds Redis empty and PostgreSQL full, as every restart does. Neither run may
log anything at WARNING or above, nor a traceback; beside the running system, ``civic status`` reads its
servers and a second devenv (what ``make test`` starts) refuses with a message instead of a traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from civic.devservers import free_port
from tests.support import eventually

ROOT = Path(__file__).resolve().parents[2]
BAD = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback|CancelledError|mail\.log")

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")


@pytest.fixture
def state() -> Iterator[Path]:
    # A short path of our own: PostgreSQL's socket path must stay under 108 bytes.
    folder = Path(tempfile.mkdtemp(prefix="civic-up-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _env(state: Path, port: int, smtp_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith("CIVIC_")}
    return {
        **env,
        "CIVIC_STATE_DIR": str(state),
        "CIVIC_PORT": str(port),
        "CIVIC_SMTP_SINK_PORT": str(smtp_port),
        "PYTHONUNBUFFERED": "1",
    }


async def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(subprocess.run, argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


class Up:
    """One ``make up`` in a session of its own (as a terminal's foreground job is)."""

    def __init__(self, state: Path, log: Path) -> None:
        self.port, self.smtp_port = free_port(), free_port()
        self.env = _env(state, self.port, self.smtp_port)
        self.log_path = log
        with log.open("wb") as out:
            # -o: never reinstall the virtual environment from inside a test.
            self.make = subprocess.Popen(
                ["make", "--no-print-directory", "-o", ".venv/.installed", "up"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def ready(self) -> None:
        async def printed() -> bool:
            if self.make.poll() is not None:
                raise AssertionError(f"make up exited with {self.make.returncode}:\n{self.log()[-3000:]}")
            return "Stop with Ctrl-C" in self.log()

        await eventually(printed, timeout=120, interval=0.2, what="make up ready")

    def meeting(self) -> str:
        # The banner names the kick-off meeting's page: /<tenant>/termine/<id>.
        found = re.search(r"kick-off meeting\s+\S+/termine/([0-9a-f-]{36})", self.log())
        assert found, self.log()[-2000:]
        return found.group(1)

    async def stopped(self, sig: signal.Signals, *, group: bool) -> None:
        if group:
            os.killpg(self.make.pid, sig)  # what Ctrl-C in a terminal does
        else:
            self.make.send_signal(sig)  # an IDE or process manager that signals make alone

        async def gone() -> bool:
            return self.make.poll() is not None

        try:
            # Not a timing target: "stops" against "hangs until someone kills it".
            await eventually(gone, timeout=30, interval=0.1, what="make up stopping")
        finally:
            if self.make.poll() is None:
                os.killpg(self.make.pid, signal.SIGKILL)
                self.make.wait(10)

    def complaints(self) -> list[str]:
        return [line for line in self.log().splitlines() if BAD.search(line)]


async def test_restart_and_ctrl_c_log_nothing_alarming(state: Path, tmp_path: Path) -> None:
    first = Up(state, tmp_path / "first.log")
    try:
        await first.ready()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{first.port}", timeout=10) as client:
            answer = await client.post(
                f"/api/registration/meetings/{first.meeting()}/registrations",
                json={
                    "name": "Alex Beispiel",
                    "email": "alex@example.org",
                    "privacy_consent": True,
                    "attestations": ["3g"],
                },
            )
            assert answer.status_code == 201, answer.text

            async def mailed() -> bool:
                return any((state / "mail").glob("*.eml"))

            await eventually(mailed, timeout=60, interval=0.2, what="the confirmation mail in the sink")

        # Beside the running system the operator's command reads its embedded servers, and says so.
        status = await _run([str(ROOT / ".venv/bin/civic"), "status"], first.env)
        assert status.returncode == 0, status.stderr
        assert "embedded server of process" in status.stderr, status.stderr
        assert json.loads(status.stdout)["dead_letters"]["registration"] == 0, status.stdout

        # What `make test` starts while `make up` runs: a message naming the cause, no traceback.
        second_env = await _run([str(ROOT / ".venv/bin/python"), "-m", "civic.devenv", "--", "true"], first.env)
        assert second_env.returncode == 1
        assert "in use by process" in second_env.stderr and "Traceback" not in second_env.stderr, second_env.stderr
    finally:
        await first.stopped(signal.SIGINT, group=True)
    assert not (state / "servers.json").exists(), "the embedded servers' address outlived them"

    second = Up(state, tmp_path / "second.log")
    try:
        await second.ready()

        async def republished() -> bool:
            return "redis started empty" in second.log()

        # The fault under test happened: PostgreSQL kept the outbox, Redis came up empty.
        await eventually(republished, timeout=30, interval=0.2, what="the relay noticing the empty Redis")
    finally:
        await second.stopped(signal.SIGINT, group=False)

    assert "Application shutdown complete" in first.log() and "Application shutdown complete" in second.log()
    complaints = first.complaints() + second.complaints()
    assert not complaints, "\n".join(complaints[:20])
