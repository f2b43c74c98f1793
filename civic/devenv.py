"""Run a command with DATABASE_URL and REDIS_URL set, starting embedded servers for whichever is unset.

``python -m civic.devenv -- pytest`` is what ``make test`` and ``make up`` use: on a machine with only Python
it starts a real PostgreSQL and a real Redis-compatible server under ``.civic/`` and stops them on exit; where
the variables are already set, it starts nothing. ``CIVIC_DURABLE_POSTGRES=1`` makes the embedded PostgreSQL
flush its commits to disk (``fsync=on``), for benchmarks of writes.

While it runs, ``.civic/servers.json`` says where the embedded servers listen, so ``civic status`` and the
other operator commands run beside ``make up`` find them, and a second ``make up`` / ``make test`` says that
the folder is in use instead of failing inside PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from civic.devservers import (
    EmbeddedPostgres,
    EmbeddedRedis,
    Running,
    ServerBusy,
    read_running,
    reset_dir,
    state_dir,
    write_running,
)

#: Signals whose handling by GNU make we watch for (see ``_watch_make``): SIGHUP, SIGINT, SIGQUIT.
_MAKE_FATAL = {signal.SIGHUP: 1, signal.SIGINT: 2, signal.SIGQUIT: 3}


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print("usage: python -m civic.devenv -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    env = dict(os.environ)
    state = state_dir()
    wants_servers = not env.get("DATABASE_URL") or not env.get("REDIS_URL")
    if wants_servers:
        other = read_running(state)
        if other is not None:
            print(_busy_message(state, other), file=sys.stderr)
            return 1
    started: list[EmbeddedPostgres | EmbeddedRedis] = []
    marker: Path | None = None
    try:
        if not env.get("DATABASE_URL"):
            durable = env.get("CIVIC_DURABLE_POSTGRES", "") not in ("", "0")
            pg = EmbeddedPostgres(state / "postgres", durable=durable).start()
            started.append(pg)
            env["DATABASE_URL"] = pg.url
            print(f"civic: embedded PostgreSQL at {pg.url}{' (fsync on)' if durable else ''}", file=sys.stderr)
        if not env.get("REDIS_URL"):
            redis = EmbeddedRedis(reset_dir(state / "redis")).start()
            started.append(redis)
            env["REDIS_URL"] = redis.url
            # It keeps nothing on disk: finding it empty after a restart is expected, not an incident.
            env.setdefault("CIVIC_REDIS_EPHEMERAL", "true")
            print(f"civic: embedded Redis (Valkey) at {redis.url}, emptied on every start", file=sys.stderr)
        if started:
            marker = write_running(
                state,
                Running(
                    os.getpid(),
                    env["DATABASE_URL"] if any(isinstance(s, EmbeddedPostgres) for s in started) else None,
                    env["REDIS_URL"] if any(isinstance(s, EmbeddedRedis) for s in started) else None,
                    shlex.join(argv),
                ),
            )
        # A process group of its own, so that a Ctrl-C reaches it once, from us: straight from the terminal
        # as well, it would be a second SIGINT, which makes uvicorn skip the services' clean shutdown.
        child = subprocess.Popen(argv, env=env, process_group=0)
        forwarded: list[int] = []

        def forward(sig: int, _frame: object) -> None:
            forwarded.append(sig)
            child.send_signal(sig)

        # Forward Ctrl-C / SIGTERM so the child can shut down cleanly before the servers stop.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, forward)
        _watch_make(child, forwarded)
        return child.wait()
    except ServerBusy as exc:
        print(f"civic: {exc}", file=sys.stderr)
        return 1
    finally:
        for server in reversed(started):
            server.stop()
        if marker is not None:
            with contextlib.suppress(OSError):
                marker.unlink()


def _busy_message(state: Path, other: Running) -> str:
    urls = [f"{k}={v}" for k, v in (("DATABASE_URL", other.database_url), ("REDIS_URL", other.redis_url)) if v]
    return (
        f"civic: the embedded servers under {state} are in use by process {other.pid} ({other.command}).\n"
        f"  Stop it first (Ctrl-C where it runs), or use its servers (tests make a database and key prefix of\n"
        f"  their own):  {' '.join(urls)} make test"
    )


def _watch_make(child: subprocess.Popen[bytes], forwarded: list[int]) -> None:
    """Pass on a SIGINT (SIGHUP, SIGQUIT) sent to GNU make alone, e.g. by an IDE or a process manager.

    make forwards SIGTERM to its recipe but not SIGINT: it resets the signal to its default and waits, inside
    its handler, for the recipe to end, so ``kill -INT <make>`` alone would leave everything running. While it
    waits there the signal is blocked and no longer caught, which /proc shows; when we see that and have not
    been sent the signal ourselves, we pass it on.
    """
    parent = os.getppid()
    status = Path(f"/proc/{parent}/status")
    try:
        if Path(f"/proc/{parent}/comm").read_text().strip() != "make":
            return
    except OSError:
        return  # not Linux, or no /proc: the terminal's Ctrl-C reaches us directly anyway

    def watch() -> None:
        while child.poll() is None:
            handled = _handling(status)
            if handled is not None:
                # A Ctrl-C in the terminal reached us as well (same process group): passed on already.
                time.sleep(0.3)
                if not forwarded:
                    with contextlib.suppress(ProcessLookupError):
                        child.send_signal(handled)
                return
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(0.2)

    threading.Thread(target=watch, name="watch-make", daemon=True).start()


def _handling(status: Path) -> signal.Signals | None:
    """The fatal signal the process of ``status`` is handling right now (blocked and no longer caught)."""
    try:
        fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        blocked, caught = int(fields["SigBlk"], 16), int(fields["SigCgt"], 16)
    except (OSError, KeyError, ValueError):
        return None
    for sig, number in _MAKE_FATAL.items():
        bit = 1 << (number - 1)
        if blocked & bit and not caught & bit:
            return signal.SIGINT if sig != signal.SIGHUP else signal.SIGTERM
    return None


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
