"""``civic``: the operator's command.

civic migrate [--services a,b]        schemas, roles, tables; streams and consumer groups
civic serve [--services a,b] [--port] HTTP APIs and bus loops of the services, in this process
civic status                          per stream: length; per group: pending, lag; dead letters
civic replay SERVICE [--since ISO]    publish a service's outbox again (consumers absorb duplicates)
civic dlq list|show|retry|drop        dead letters
civic token --tenant T --roles r,s    a development bearer token for staff endpoints
civic contracts [--check]             write (or check) docs/events/: JSON Schemas and AsyncAPI
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from civic.services import ALL, consumers, select
from shared import db
from shared.bus.consumer import Consumer
from shared.bus.maintenance import group_states
from shared.bus.streams import Keys, ensure_group, redis_from_settings
from shared.contracts.asyncapi import generated_files
from shared.contracts.registry import REGISTRY
from shared.http.auth import mint_token
from shared.service import ServiceContext, bind
from shared.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parent.parent
DOCS_EVENTS = ROOT / "docs" / "events"
SAMPLES = ROOT / "tests" / "contracts" / "samples"


async def migrate(names: str | None) -> None:
    s = get_settings()
    redis = redis_from_settings(s)
    keys = Keys(s.stream_prefix)
    try:
        for d in select(names):
            applied = await db.migrate(s.database_url, d.schema, d.all_migrations())
            print(f"{d.name}: {len(applied)} migration(s) applied" + (f" ({', '.join(applied)})" if applied else ""))
            # Groups exist before any event is published, so nothing published early is skipped.
            for stream in sorted({REGISTRY.get(t).stream for t in d.subscriptions}):
                created = await ensure_group(redis, keys.stream(stream), d.name)
                print(f"  group {d.name} on {keys.stream(stream)}: {'created' if created else 'exists'}")
    finally:
        await redis.aclose()


async def status() -> dict[str, Any]:
    s = get_settings()
    redis = redis_from_settings(s)
    keys = Keys(s.stream_prefix)
    out: dict[str, Any] = {"streams": {}, "dead_letters": {}, "outbox_unpublished": {}}
    try:
        for stream in REGISTRY.streams():
            key = keys.stream(stream)
            length = await redis.xlen(key)
            groups = [{"group": g.name, "pending": g.pending, "lag": g.lag} for g in await group_states(redis, key)]
            out["streams"][key] = {"length": length, "groups": groups}
        for d in ALL.values():
            try:
                conn = await db.connect(s.database_url, d.schema)
            except asyncpg.PostgresError as exc:
                out["dead_letters"][d.name] = f"unavailable: {exc}"
                continue
            try:
                out["dead_letters"][d.name] = await conn.fetchval(
                    "select count(*) from dead_letters where status = 'open'"
                )
                out["outbox_unpublished"][d.name] = await conn.fetchval(
                    "select count(*) from outbox where published_at is null"
                )
            except asyncpg.UndefinedTableError:
                out["dead_letters"][d.name] = "not migrated"
            finally:
                await conn.close()
    finally:
        await redis.aclose()
    return out


async def replay(service: str, since: str | None) -> int:
    s = get_settings()
    conn = await db.connect(s.database_url, select(service)[0].schema)
    try:
        if since:
            result = await conn.execute(
                "update outbox set published_at = null where published_at is not null and created_at >= $1",
                datetime.fromisoformat(since),
            )
        else:
            result = await conn.execute("update outbox set published_at = null where published_at is not null")
        await conn.execute("select pg_notify($1, '')", f"civic_outbox_{service}")
    finally:
        await conn.close()
    return int(result.split()[-1])


async def dlq(action: str, service: str | None, ident: int | None, status_: str) -> Any:
    s = get_settings()
    services = select(service)
    if action == "list":
        rows = []
        for d in services:
            conn = await db.connect(s.database_url, d.schema)
            try:
                for r in await conn.fetch(
                    "select id, stream, entry_id, type, deliveries, status, created_at, left(error, 200) as error "
                    "from dead_letters where $1 = 'all' or status = $1 order by id",
                    status_,
                ):
                    rows.append({"service": d.name, **dict(r)})
            finally:
                await conn.close()
        return rows
    if service is None or ident is None:
        raise SystemExit("dlq show/retry/drop need --service and an id")
    d = services[0]
    if action == "show":
        conn = await db.connect(s.database_url, d.schema)
        try:
            row = await conn.fetchrow("select * from dead_letters where id = $1", ident)
        finally:
            await conn.close()
        if row is None:
            raise SystemExit(f"no dead letter {ident} in {service}")
        return dict(row)
    if action == "drop":
        conn = await db.connect(s.database_url, d.schema)
        try:
            done = await conn.execute(
                "update dead_letters set status = 'dropped', resolved_at = now() where id = $1", ident
            )
        finally:
            await conn.close()
        return {"dropped": done.endswith("1")}
    if action == "retry":
        from shared.bus.outbox import Outbox
        from shared.clock import SystemClock

        pool = await db.create_pool(s.database_url, d.schema, max_size=2)
        redis = redis_from_settings(s)
        keys = Keys(s.stream_prefix)
        try:
            ctx = ServiceContext(d.name, s, pool, redis, Outbox(d.name), SystemClock(), keys)
            consumer = Consumer(d.name, pool, redis, bind(ctx, d.subscriptions), keys=keys, name="cli")
            return {"retried": await consumer.retry_dead_letter(ident)}
        finally:
            await redis.aclose()
            await pool.close()
    raise SystemExit(f"unknown dlq action {action}")


def contracts(check: bool) -> int:
    files = generated_files(consumers())
    stale = []
    for rel, text in files.items():
        path = DOCS_EVENTS / rel
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(rel))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if check:
        known = {DOCS_EVENTS / rel for rel in files}
        stale += [str(p.relative_to(DOCS_EVENTS)) for p in DOCS_EVENTS.rglob("*.json") if p not in known]
        if stale:
            print("stale event documents (run `civic contracts`):", *stale, sep="\n  ")
            return 1
        print("event documents are up to date")
    else:
        print(f"wrote {len(files)} files to {DOCS_EVENTS}")
        written = write_missing_samples()
        if written:
            print("new payload samples (commit them; they are never rewritten):", *written, sep="\n  ")
    return 0


def write_missing_samples() -> list[str]:
    """Keep one payload per event type as first published, for the compatibility test. Never overwritten:
    an incompatible change must fail against the old sample, not replace it."""
    from shared.contracts.samples import example_payload

    SAMPLES.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in REGISTRY:
        path = SAMPLES / f"{spec.type}.json"
        if not path.exists():
            path.write_text(json.dumps(example_payload(spec.payload), indent=2, ensure_ascii=False) + "\n")
            written.append(path.name)
    return written


def serve(names: str | None, host: str, port: int) -> None:
    from civic.runner import build_app
    from civic.serving import serve as serve_quietly

    serve_quietly(build_app(names), host, port)


def use_running_servers(environ: dict[str, str] | os._Environ[str] = os.environ) -> str:
    """Point this command at the servers it should read, and say which they are (on stderr).

    Beside a running ``make up`` (or ``make test``) with embedded servers, the unset DATABASE_URL / REDIS_URL
    are taken from ``.civic/servers.json``; otherwise the settings (or their defaults) are used as they are.
    """
    from civic.devservers import read_running, state_dir

    running = read_running(state_dir())
    notes = []
    for var, found in (
        ("DATABASE_URL", running.database_url if running else None),
        ("REDIS_URL", running.redis_url if running else None),
    ):
        if environ.get(var):
            notes.append(f"{var}={_without_password(environ[var])} (set)")
        elif found:
            environ[var] = found
            notes.append(f"{var}={found} (embedded server of process {running.pid if running else '?'})")
        else:
            default = Settings.model_fields["database_url" if var == "DATABASE_URL" else "redis_url"].default
            notes.append(f"{var}={default} (default; no running `make up` found)")
    get_settings.cache_clear()
    return "civic: reading " + ", ".join(notes)


def _without_password(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="civic", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("migrate", help="create schemas, roles, tables, streams and groups")
    m.add_argument("--services")
    sv = sub.add_parser("serve", help="run services in this process")
    sv.add_argument("--services", default=os.environ.get("CIVIC_SERVICES") or None)
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8000)
    sub.add_parser("status", help="streams, groups, pending, lag, dead letters")
    r = sub.add_parser("replay", help="publish a service's outbox again")
    r.add_argument("service")
    r.add_argument("--since", help="ISO timestamp; default: everything still in the outbox")
    q = sub.add_parser("dlq", help="dead letters")
    q.add_argument("action", choices=["list", "show", "retry", "drop"])
    q.add_argument("id", nargs="?", type=int)
    q.add_argument("--service")
    q.add_argument("--status", default="open", choices=["open", "retried", "dropped", "all"])
    t = sub.add_parser("token", help="mint a development bearer token")
    t.add_argument("--tenant", required=True)
    t.add_argument("--roles", default="staff")
    t.add_argument("--subject", default="dev")
    c = sub.add_parser("contracts", help="write or check docs/events")
    c.add_argument("--check", action="store_true")
    args = p.parse_args(argv)
    if args.cmd in ("migrate", "status", "replay", "dlq"):
        print(use_running_servers(), file=sys.stderr)

    if args.cmd == "migrate":
        asyncio.run(migrate(args.services))
    elif args.cmd == "serve":
        serve(args.services, args.host, args.port)
    elif args.cmd == "status":
        _print(asyncio.run(status()))
    elif args.cmd == "replay":
        print(f"{asyncio.run(replay(args.service, args.since))} event(s) queued for publishing again")
    elif args.cmd == "dlq":
        _print(asyncio.run(dlq(args.action, args.service, args.id, args.status)))
    elif args.cmd == "token":
        print(mint_token(tenant=args.tenant, roles=args.roles.split(","), subject=args.subject))
    elif args.cmd == "contracts":
        return contracts(args.check)
    return 0


if __name__ == "__main__":
    sys.exit(main())
