"""PostgreSQL access: one schema and one role per service, versioned SQL migrations, connection pools.

A service's pool connects with ``role`` and ``search_path`` set to its own, so every query runs with only the
privileges of that role, which owns its schema and nothing else. In development one login user (a member of
every service role) is enough; in production each service logs in as its own role.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import asyncpg
from asyncpg.pool import PoolConnectionProxy

log = logging.getLogger(__name__)

#: A connection of its own or one borrowed from a pool; handlers and repositories accept either.
Conn = asyncpg.Connection | PoolConnectionProxy

BUS_MIGRATIONS = Path(__file__).parent / "bus" / "migrations"


def role_for(schema: str) -> str:
    return f"civic_{schema}"


@dataclass(frozen=True)
class Migration:
    version: str
    sql: str


def load_migrations(*folders: Path) -> list[Migration]:
    """The bus's own tables first, then the service's, each folder's files in name order."""
    found: list[Migration] = []
    for folder in folders:
        for path in sorted(folder.glob("*.sql")):
            found.append(Migration(f"{folder.parent.name}/{path.stem}", path.read_text()))
    return found


def _login_user(url: str) -> str | None:
    return urlparse(url).username


async def ensure_schema(admin: asyncpg.Connection, schema: str) -> None:
    """Create the service's role and schema if they are missing (needs a privileged login; in production an
    init script has done this already and the call only checks)."""
    role = role_for(schema)
    has_role = await admin.fetchval("select 1 from pg_roles where rolname = $1", role)
    if not has_role:
        # Another process may create it between our check and our create; a concurrent CREATE ROLE fails with
        # a unique violation on pg_authid rather than "already exists".
        with contextlib.suppress(asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
            await admin.execute(f'create role "{role}" nologin')
    login = await admin.fetchval("select current_user")
    if login != role:
        # Membership lets the login user SET ROLE to the service role (PostgreSQL 16 needs it explicitly).
        try:
            await admin.execute(f'grant "{role}" to "{login}"')
        except asyncpg.PostgresError:
            log.debug("could not grant %s to %s", role, login)
    has_schema = await admin.fetchval("select 1 from pg_namespace where nspname = $1", schema)
    if not has_schema:
        with contextlib.suppress(asyncpg.DuplicateSchemaError, asyncpg.UniqueViolationError):
            await admin.execute(f'create schema "{schema}" authorization "{role}"')


async def migrate(url: str, schema: str, migrations: list[Migration]) -> list[str]:
    """Apply what is missing, in order, each in its own transaction; returns the versions applied."""
    conn = await asyncpg.connect(url)
    applied: list[str] = []
    try:
        await ensure_schema(conn, schema)
        role = role_for(schema)
        if await conn.fetchval("select current_user") != role:
            await conn.execute(f'set role "{role}"')
        await conn.execute(f'set search_path = "{schema}"')
        async with conn.transaction():
            # Serialise concurrent migrators of the same schema (several replicas starting at once).
            await conn.execute("select pg_advisory_xact_lock(hashtext($1))", f"migrate:{schema}")
            await conn.execute(
                "create table if not exists schema_migrations ("
                " version text primary key, applied_at timestamptz not null default now())"
            )
        done = {r["version"] for r in await conn.fetch("select version from schema_migrations")}
        for m in migrations:
            if m.version in done:
                continue
            async with conn.transaction():
                await conn.execute("select pg_advisory_xact_lock(hashtext($1))", f"migrate:{schema}")
                if await conn.fetchval("select 1 from schema_migrations where version = $1", m.version):
                    continue
                await conn.execute(m.sql)
                await conn.execute("insert into schema_migrations(version) values ($1)", m.version)
                applied.append(m.version)
                log.info("applied migration", extra={"schema": schema, "version": m.version})
    finally:
        await conn.close()
    return applied


def server_settings(url: str, schema: str) -> dict[str, str]:
    settings = {"search_path": schema, "application_name": f"civic-{schema}"}
    if _login_user(url) != role_for(schema):
        settings["role"] = role_for(schema)
    return settings


async def _no_session_state(conn: asyncpg.Connection) -> None:
    """Nothing to undo: civic keeps no session state on pooled connections (see ``create_pool``)."""


async def create_pool(
    url: str, schema: str, *, min_size: int = 1, max_size: int = 10, connect_timeout: float = 60.0
) -> asyncpg.Pool:
    # asyncpg's default reset sends "RESET ALL; UNLISTEN *; CLOSE ALL; pg_advisory_unlock_all()" on every
    # release: a round trip per request. civic's locks and settings are all transaction-scoped and LISTEN
    # runs on connections of its own, so only asyncpg's own part (rolling back an open transaction,
    # forgetting listeners) is needed, and it always runs.
    pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        server_settings=server_settings(url, schema),
        reset=_no_session_state,
        timeout=connect_timeout,
    )
    assert pool is not None
    return pool


async def connect(url: str, schema: str) -> asyncpg.Connection:
    return await asyncpg.connect(url, server_settings=server_settings(url, schema))
