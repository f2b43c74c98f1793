"""``civic``: the operator's command.

civic migrate [--services a,b]        schemas, roles, tables; streams and consumer groups
civic serve [--services a,b] [--port] HTTP APIs and bus loops of the services, in this process
civic web [--port]                    the citizen web client (web/), calling the APIs at CIVIC_WEB_API_BASE_URL
civic status                          per stream: length; per group: pending, lag; dead letters
civic replay SERVICE [--since ISO]    publish a service's outbox again (consumers absorb duplicates)
      [--group G]                     ... only to the outside group G's replay stream
civic subscribers add|list|remove     outside consumer groups trimming waits for, within limits
civic dlq list|show|retry|drop        dead letters
civic token --tenant T --roles r,s    a development bearer token for staff endpoints
civic contracts [--check]             write (or check) docs/events/ (JSON Schemas, AsyncAPI) and the kit's models
civic redis-acl                       Redis ACL file: a user per service, one for outside subscribers
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
from shared.bus import dead_letters
from shared.bus.acl import acl_file
from shared.bus.consumer import Consumer
from shared.bus.maintenance import group_states
from shared.bus.streams import Keys, ensure_group, entry_fields, redis_client, redis_from_settings
from shared.contracts.asyncapi import generated_files
from shared.contracts.registry import REGISTRY
from shared.http.auth import mint_token
from shared.privacy import share_keyrings
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
            for stream in sorted({REGISTRY.get(t).stream for t in d.event_types}):
                created = await ensure_group(redis, keys.stream(stream), d.name)
                print(f"  group {d.name} on {keys.stream(stream)}: {'created' if created else 'exists'}")
        # After all of them: a keyring can be shared only with roles that exist.
        await share_keyrings(s.database_url, select(names))
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


REPLAY_TTL_SECONDS = 7 * 24 * 3600


async def replay_to_group(service: str, since: str | None, group: str) -> int:
    """Write the service's published outbox (since ``since``) to a stream of the outside group's own,
    ``<prefix>:replay:<service>:<group>``, in outbox order and in the live streams' entry format. Nobody else
    sees these entries again; the stream expires a week after the last replay written to it."""
    s = get_settings()
    keys = Keys(s.stream_prefix)
    target = keys.replay(service, group)
    conn = await db.connect(s.database_url, select(service)[0].schema)
    redis = redis_client(s.redis_url)
    written, after = 0, 0
    try:
        while True:
            rows = await conn.fetch(
                "select position, envelope from outbox where stream = $1 and published_at is not null"
                " and position > $2 and ($3::timestamptz is null or created_at >= $3) order by position limit 1000",
                service,
                after,
                datetime.fromisoformat(since) if since else None,
            )
            if not rows:
                break
            pipe = redis.pipeline(transaction=False)
            for r in rows:
                pipe.xadd(target, entry_fields(r["envelope"], r["position"], s.stream_event_field))
            pipe.expire(target, REPLAY_TTL_SECONDS)
            await pipe.execute()
            written += len(rows)
            after = rows[-1]["position"]
    finally:
        await conn.close()
        await redis.aclose()
    return written


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


async def subscribers(
    action: str,
    stream: str | None,
    group: str | None,
    *,
    max_lag: int = 100_000,
    max_age_hours: float = 168,
    description: str | None = None,
) -> Any:
    """Outside consumer groups: trimming waits for them within their limits (shared/bus/maintenance.py)."""
    s = get_settings()
    keys = Keys(s.stream_prefix)
    streams = [stream] if stream else REGISTRY.streams()
    if action != "list" and (stream is None or group is None):
        raise SystemExit("subscribers add/remove need --stream and a group name")
    if action != "list" and group in ALL:
        raise SystemExit(f"{group!r} is the name of a civic service's own group")
    out: list[dict[str, Any]] = []
    redis = redis_client(s.redis_url)
    try:
        for st in streams:
            conn = await db.connect(s.database_url, select(st)[0].schema)
            try:
                if action == "add":
                    # At 0: the new subscriber sees everything still in the stream.
                    created = await ensure_group(redis, keys.stream(st), str(group))
                    await conn.execute(
                        "insert into outside_groups (stream, name, max_lag, max_age_seconds, description) "
                        "values ($1, $2, $3, $4, $5) on conflict (stream, name) do update set "
                        "max_lag = excluded.max_lag, max_age_seconds = excluded.max_age_seconds, "
                        "description = coalesce(excluded.description, outside_groups.description)",
                        st,
                        group,
                        max_lag,
                        int(max_age_hours * 3600),
                        description,
                    )
                    return {"stream": keys.stream(st), "group": group, "group_created": created}
                if action == "remove":
                    done = await conn.execute("delete from outside_groups where stream = $1 and name = $2", st, group)
                    destroyed = await redis.xgroup_destroy(keys.stream(st), str(group))
                    return {"removed": done.endswith("1"), "group_destroyed": bool(destroyed)}
                states = {g.name: g for g in await group_states(redis, keys.stream(st))}
                for r in await conn.fetch("select * from outside_groups where stream = $1 order by name", st):
                    g = states.get(r["name"])
                    out.append(
                        {
                            "stream": keys.stream(st),
                            "group": r["name"],
                            "max_lag": r["max_lag"],
                            "max_age_hours": r["max_age_seconds"] / 3600,
                            "pending": g.pending if g else None,
                            "lag": g.lag if g else None,
                            "exists": g is not None,
                            "overrun_since": r["overrun_at"],
                            "description": r["description"],
                        }
                    )
            finally:
                await conn.close()
    finally:
        await redis.aclose()
    return out


async def dlq(action: str, service: str | None, ident: int | None, status_: str) -> Any:
    """The dead letters of the services, with the functions their admin API uses (shared/bus/dead_letters.py)."""
    s = get_settings()
    services = select(service)
    if action == "list":
        rows = []
        for d in services:
            conn = await db.connect(s.database_url, d.schema)
            try:
                for r in await dead_letters.listing(conn, status_):
                    rows.append({"service": d.name, **dict(r)})
            finally:
                await conn.close()
        return rows
    if service is None or ident is None:
        raise SystemExit("dlq show/retry/drop need --service and an id")
    d = services[0]
    if action in ("show", "drop"):
        conn = await db.connect(s.database_url, d.schema)
        try:
            row = await dead_letters.one(conn, ident, raw=True)
            if row is None:
                raise SystemExit(f"no dead letter {ident} in {service}")
            if action == "show":
                return dict(row)
            return {"dropped": await dead_letters.drop(conn, ident)}
        finally:
            await conn.close()
    if action == "retry":
        from shared.bus.outbox import Outbox
        from shared.clock import SystemClock

        pool = await db.create_pool(s.database_url, d.schema, max_size=2)
        redis = redis_from_settings(s)
        keys = Keys(s.stream_prefix)
        try:
            ctx = ServiceContext(d.name, s, pool, redis, Outbox(d.name), SystemClock(), keys)
            consumer = Consumer(d.name, pool, redis, bind(ctx, d.subscriptions), keys=keys, name="cli")
            try:
                return {"retried": await dead_letters.retry(consumer, ident)}
            except (LookupError, dead_letters.NotOpen, dead_letters.Unretryable) as exc:
                raise SystemExit(str(exc)) from None
        finally:
            await redis.aclose()
            await pool.close()
    raise SystemExit(f"unknown dlq action {action}")


def contracts(check: bool) -> int:
    from civic.subscriber.codegen import EVENTS_MODULE, events_module, formatted

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
    # The subscriber kit's typed events, from the same registry.
    module = formatted(events_module())
    if check:
        if not EVENTS_MODULE.exists() or EVENTS_MODULE.read_text() != module:
            stale.append(str(EVENTS_MODULE.relative_to(ROOT)))
    else:
        EVENTS_MODULE.write_text(module)
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


def web(host: str, port: int) -> None:
    from civic.serving import serve as serve_quietly
    from web.app import app

    serve_quietly(app(), host, port)


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
    w = sub.add_parser("web", help="run the web client in this process")
    w.add_argument("--host", default="127.0.0.1")
    w.add_argument("--port", type=int, default=8000)
    sub.add_parser("status", help="streams, groups, pending, lag, dead letters")
    r = sub.add_parser("replay", help="publish a service's outbox again (to everyone, or to one outside group)")
    r.add_argument("service")
    r.add_argument("--since", help="ISO timestamp; default: everything still in the outbox")
    r.add_argument("--group", help="write to <prefix>:replay:<service>:<group> only, for that outside group")
    o = sub.add_parser("subscribers", help="outside consumer groups that trimming waits for (within limits)")
    o.add_argument("action", choices=["add", "list", "remove"])
    o.add_argument("group", nargs="?")
    o.add_argument("--stream", choices=REGISTRY.streams())
    o.add_argument("--max-lag", type=int, default=100_000, help="entries behind before trimming stops waiting")
    o.add_argument("--max-age-hours", type=float, default=168, help="age of the oldest unconfirmed entry, likewise")
    o.add_argument("--description")
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
    sub.add_parser(
        "redis-acl",
        help="print a Redis ACL file (passwords from CIVIC_REDIS_PASSWORD_<SERVICE>, _SUBSCRIBER and, for the "
        "operator's default user, _ADMIN)",
    )
    args = p.parse_args(argv)
    if args.cmd in ("migrate", "status", "replay", "dlq"):
        print(use_running_servers(), file=sys.stderr)

    if args.cmd == "migrate":
        asyncio.run(migrate(args.services))
    elif args.cmd == "serve":
        serve(args.services, args.host, args.port)
    elif args.cmd == "web":
        web(args.host, args.port)
    elif args.cmd == "status":
        _print(asyncio.run(status()))
    elif args.cmd == "replay":
        if args.group:
            n = asyncio.run(replay_to_group(args.service, args.since, args.group))
            print(f"{n} event(s) written to {Keys(get_settings().stream_prefix).replay(args.service, args.group)}")
        else:
            print(f"{asyncio.run(replay(args.service, args.since))} event(s) queued for publishing again")
    elif args.cmd == "subscribers":
        _print(
            asyncio.run(
                subscribers(
                    args.action,
                    args.stream,
                    args.group,
                    max_lag=args.max_lag,
                    max_age_hours=args.max_age_hours,
                    description=args.description,
                )
            )
        )
    elif args.cmd == "dlq":
        _print(asyncio.run(dlq(args.action, args.service, args.id, args.status)))
    elif args.cmd == "token":
        print(mint_token(tenant=args.tenant, roles=args.roles.split(","), subject=args.subject))
    elif args.cmd == "contracts":
        return contracts(args.check)
    elif args.cmd == "redis-acl":
        return redis_acl()
    return 0


def redis_acl() -> int:
    """The ACL file for this installation's prefix; each password from the environment (none is made up)."""
    names = [*ALL, "subscriber"]
    passwords = {n: os.environ.get(f"CIVIC_REDIS_PASSWORD_{n.upper()}", "") for n in names}
    missing = [f"CIVIC_REDIS_PASSWORD_{n.upper()}" for n, pw in passwords.items() if not pw]
    if missing:
        print(f"set {', '.join(missing)}", file=sys.stderr)
        return 2
    subscriber = passwords.pop("subscriber")
    admin = os.environ.get("CIVIC_REDIS_PASSWORD_ADMIN") or None
    # Not through Settings: this one-shot needs no database, JWT or privacy secret, which production mode demands.
    keys = Keys(os.environ.get("CIVIC_STREAM_PREFIX") or "civic")
    text = acl_file(passwords, subscriber, keys, consumers(), admin_password=admin)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
