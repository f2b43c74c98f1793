"""Each service's role reaches only its own schema; migrations are idempotent and safe to run concurrently."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter

import asyncpg
import pytest

from shared import db

EXTRA = [
    db.Migration("test/001_things", "create table things (id int primary key, tenant text not null)"),
    db.Migration("test/002_more", "alter table things add column note text"),
]


def _migrations() -> list[db.Migration]:
    return [*db.load_migrations(db.BUS_MIGRATIONS), *EXTRA]


async def test_a_service_pool_cannot_touch_another_services_schema(database_url: str) -> None:
    tag = secrets.token_hex(3)
    mine, theirs = f"roles_a_{tag}", f"roles_b_{tag}"
    await db.migrate(database_url, mine, _migrations())
    await db.migrate(database_url, theirs, _migrations())
    pool = await db.create_pool(database_url, mine, max_size=2)
    try:
        async with pool.acquire() as conn:
            assert await conn.fetchval("select current_user") == db.role_for(mine)
            await conn.execute("insert into things (id, tenant) values (1, 'stadt-a')")  # its own schema: fine
            assert await conn.fetchval("select count(*) from outbox") == 0
            attempts = [
                f'select count(*) from "{theirs}".outbox',
                f'select * from "{theirs}".things',
                f"insert into \"{theirs}\".things (id, tenant) values (1, 'stadt-b')",
                f'create table "{theirs}".intruder (id int)',
            ]
            for sql in attempts:
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(sql)
            # Pointing the search path at the other schema does not help either: without USAGE on it, its
            # tables are not even visible.
            await conn.execute(f'set search_path = "{theirs}"')
            with pytest.raises((asyncpg.InsufficientPrivilegeError, asyncpg.UndefinedTableError)):
                await conn.fetchval("select count(*) from outbox")
            await conn.execute("reset search_path")
    finally:
        await pool.close()


async def test_migrations_are_idempotent_and_safe_when_run_concurrently(database_url: str) -> None:
    for _ in range(3):  # several fresh schemas: the race on role and schema creation is narrow
        schema = f"roles_m_{secrets.token_hex(3)}"
        results = await asyncio.gather(*(db.migrate(database_url, schema, _migrations()) for _ in range(3)))
        applied = Counter(v for result in results for v in result)
        assert applied == Counter({m.version: 1 for m in _migrations()})  # each applied once, by one of them
        assert await db.migrate(database_url, schema, _migrations()) == []  # and again: nothing to do
        conn = await db.connect(database_url, schema)
        try:
            versions = [r["version"] for r in await conn.fetch("select version from schema_migrations")]
            assert Counter(versions) == Counter(m.version for m in _migrations())
            assert await conn.fetchval("select count(*) from things") == 0
        finally:
            await conn.close()
