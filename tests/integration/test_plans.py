"""Statements on tables that a rush grows from a few rows to tens of thousands keep plans that fit them.

PostgreSQL settles on a generic plan for a prepared statement after five executions and keeps it until the
next ANALYZE; made while the table was small it is a sequential scan, which later reads the whole table for a
few rows. The relay's mark (``mark_published``) and the keyring's reads (``read_keys``) run as functions
planned at each call (their migrations say why); the inline statements they replaced are the controls, so a
check that could not fail would show here. Registration's ``set_tickets`` is the same kind of function; the
check-in tests use the tickets it sets.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest

from shared.db import BUS_MIGRATIONS
from shared.privacy import KEYRING_SQL

REPO = Path(__file__).resolve().parents[2]
READ_KEYS = (REPO / "services/registration/migrations/003_read_keys.sql").read_text()

MARK_INLINE = (
    "update outbox o set published_at = now(), stream_ms = u.ms, stream_seq = u.seq "
    "from unnest($1::bigint[], $2::bigint[], $3::bigint[]) as u(position, ms, seq) where o.position = u.position"
)
MARK = "select mark_published($1::bigint[], $2::bigint[], $3::bigint[])"
READ_INLINE = (
    "select k.id, k.key from unnest($1::uuid[], $2::text[]) as w(id, tenant) join person_keys k "
    "on k.id = w.id and k.tenant = w.tenant"
)
READ = "select id, key from read_keys($1::uuid[], $2::text[])"


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    schema = f"plans_{secrets.token_hex(3)}"
    c = await asyncpg.connect(database_url)
    await c.execute(f'create schema "{schema}"; set search_path = "{schema}"')
    await c.execute((BUS_MIGRATIONS / "000_bus.sql").read_text())
    await c.execute((BUS_MIGRATIONS / "004_mark_published.sql").read_text())
    await c.execute(KEYRING_SQL)
    await c.execute(READ_KEYS)
    try:
        yield c
    finally:
        await c.execute(f'drop schema "{schema}" cascade')
        await c.close()


async def seq_scans(c: asyncpg.Connection, table: str) -> int:
    """Sequential scans of ``table`` counted in this transaction so far (with what is not flushed yet)."""
    value = await c.fetchval(
        "select seq_scan from pg_stat_xact_user_tables where relname = $1 and schemaname = current_schema()", table
    )
    return int(value or 0)


async def unpublished(c: asyncpg.Connection, n: int) -> list[int]:
    await c.execute(
        "insert into outbox (id, tenant, stream, type, envelope) "
        "select gen_random_uuid(), 'stadt-a', 'registration', 'x', repeat('e', 500) from generate_series(1, $1)",
        n,
    )
    return [r[0] for r in await c.fetch("select position from outbox where published_at is null order by position")]


async def marking_after_growth_scans(c: asyncpg.Connection, statement: str) -> int:
    for _ in range(8):  # prepared and run while the outbox is small: past the point of a generic plan
        rows = await unpublished(c, 3)
        await c.execute(statement, rows, [1] * len(rows), [0] * len(rows))
    grown = await unpublished(c, 20_000)
    await c.execute(statement, grown, [1] * len(grown), [0] * len(grown))
    rows = await unpublished(c, 3)
    async with c.transaction():
        before = await seq_scans(c, "outbox")
        await c.execute(statement, rows, [2] * len(rows), [0] * len(rows))
        scans = await seq_scans(c, "outbox") - before
    assert await c.fetchval("select count(*) from outbox where published_at is null") == 0
    assert await c.fetchval("select count(*) from outbox where stream_ms = 2") == 3
    await c.execute("truncate outbox")
    return scans


async def test_the_relays_mark_reads_only_its_rows_after_the_outbox_grew(conn: asyncpg.Connection) -> None:
    assert await marking_after_growth_scans(conn, MARK_INLINE) >= 1  # the control: the plan from when it was small
    assert await marking_after_growth_scans(conn, MARK) == 0


async def reading_after_growth_scans(c: asyncpg.Connection, statement: str) -> int:
    async def keys(n: int) -> list[tuple[object, str]]:
        wanted = [(uuid4(), "stadt-a") for _ in range(n)]
        await c.execute(
            "insert into person_keys (id, tenant, key) select * from unnest($1::uuid[], $2::text[], $3::bytea[])",
            [k for k, _ in wanted],
            [t for _, t in wanted],
            [secrets.token_bytes(32) for _ in wanted],
        )
        return wanted

    for _ in range(8):
        wanted = await keys(2)
        assert len(await c.fetch(statement, [k for k, _ in wanted], [t for _, t in wanted])) == 2
    await keys(20_000)
    wanted = await keys(3) + [(uuid4(), "stadt-a")]  # and one that is gone
    async with c.transaction():
        before = await seq_scans(c, "person_keys")
        found = await c.fetch(statement, [k for k, _ in wanted], ["stadt-a", "stadt-a", "stadt-b", "stadt-a"])
        scans = await seq_scans(c, "person_keys") - before
    assert {r["id"] for r in found} == {wanted[0][0], wanted[1][0]}  # another tenant's key is not given out
    await c.execute("truncate person_keys")
    return scans


async def test_the_keyrings_reads_look_up_their_keys_after_the_keyring_grew(conn: asyncpg.Connection) -> None:
    assert await reading_after_growth_scans(conn, READ_INLINE) >= 1  # the control
    assert await reading_after_growth_scans(conn, READ) == 0
