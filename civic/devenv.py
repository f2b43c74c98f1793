"""Run a command with DATABASE_URL and REDIS_URL set, starting embedded servers for whichever is unset.

``python -m civic.devenv -- pytest`` is what ``make test`` and ``make up`` use: on a machine with only Python
it starts a real PostgreSQL and a real Redis-compatible server under ``.civic/`` and stops them on exit; where
the variables are already set, it starts nothing. ``CIVIC_DURABLE_POSTGRES=1`` makes the embedded PostgreSQL
flush its commits to disk (``fsync=on``), for benchmarks of writes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from civic.devservers import EmbeddedPostgres, EmbeddedRedis, reset_dir

STATE_DIR = Path(os.environ.get("CIVIC_STATE_DIR", Path(__file__).resolve().parent.parent / ".civic"))


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print("usage: python -m civic.devenv -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    env = dict(os.environ)
    started: list[EmbeddedPostgres | EmbeddedRedis] = []
    try:
        if not env.get("DATABASE_URL"):
            durable = env.get("CIVIC_DURABLE_POSTGRES", "") not in ("", "0")
            pg = EmbeddedPostgres(STATE_DIR / "postgres", durable=durable).start()
            started.append(pg)
            env["DATABASE_URL"] = pg.url
            print(f"civic: embedded PostgreSQL at {pg.url}{' (fsync on)' if durable else ''}", file=sys.stderr)
        if not env.get("REDIS_URL"):
            redis = EmbeddedRedis(reset_dir(STATE_DIR / "redis")).start()
            started.append(redis)
            env["REDIS_URL"] = redis.url
            print(f"civic: embedded Redis (Valkey) at {redis.url}", file=sys.stderr)
        child = subprocess.Popen(argv, env=env)
        # Forward Ctrl-C / SIGTERM so the child can shut down cleanly before the servers stop.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda s, _f: child.send_signal(s))
        return child.wait()
    finally:
        for server in reversed(started):
            server.stop()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
