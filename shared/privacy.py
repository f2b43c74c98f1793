"""Personal data on the bus: sealed under per-person keys (crypto-shredding) and keyed pseudonyms.

A producer that must send personal data to another service seals it with AES-256-GCM under a key of its own per
person (per registration, per export request). The key lives in the producer's ``person_keys`` table, never on
the bus; the one consumer that must read the data (the reader role granted in ``share_keyring``) reads the key
from there. Deleting the key makes every copy of the sealed data unreadable at once: unacknowledged stream
entries, Redis's AOF and RDB files and their backups, the outbox, dead letters. See docs/privacy.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.db import Conn, role_for

log = logging.getLogger(__name__)

KEYRING = "person_keys"
_NONCE = 12


class KeyGone(LookupError):
    """The key of sealed data was deleted (the person was erased or anonymised): the data is unreadable."""


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def seal(key: bytes, data: dict[str, Any], *, context: str) -> str:
    """``data`` as JSON, encrypted and authenticated; ``context`` (e.g. the event type and key id) is bound to
    the ciphertext, so a sealed value cannot be moved into another event and opened there."""
    nonce = os.urandom(_NONCE)
    plain = orjson.dumps(data)  # sealed in the registration rush, under the meeting's lock: the fast encoder
    sealed = AESGCM(key).encrypt(nonce, plain, context.encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def open_sealed(key: bytes, token: str, *, context: str) -> dict[str, Any]:
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    try:
        plain = AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], context.encode())
    except InvalidTag:
        raise ValueError("sealed data does not match its key or context") from None
    value = orjson.loads(plain)
    if not isinstance(value, dict):
        raise ValueError("sealed data is not an object")
    return value


def person_hmac(secret: str, kind: str, value: str) -> str:
    """A keyed pseudonym of a normalised e-mail address or phone number (``kind`` 'email' or 'phone').

    Without the installation's secret nobody can test guesses against it, unlike a plain hash (a phone
    number's SHA-256 falls to a search over one prefix in seconds)."""
    return hmac.new(secret.encode(), f"{kind}:{value.strip().lower()}".encode(), hashlib.sha256).hexdigest()


# -- the keyring: one table in the producer's schema ------------------------------------------------------


KEYRING_SQL = f"""
create table if not exists {KEYRING} (
    id         uuid primary key,
    tenant     text not null,
    key        bytea not null,
    created_at timestamptz not null default now()
);
"""


async def store_keys(conn: Conn, keys: Iterable[tuple[UUID, str, bytes]]) -> None:
    rows = list(keys)
    if rows:
        await conn.execute(
            f"insert into {KEYRING} (id, tenant, key) select * from unnest($1::uuid[], $2::text[], $3::bytea[]) "
            "on conflict (id) do nothing",
            [r[0] for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
        )


async def delete_keys(conn: Conn, ids: Iterable[UUID]) -> int:
    status = await conn.execute(f"delete from {KEYRING} where id = any($1::uuid[])", list(ids))
    return int(status.split()[-1])


async def own_key(conn: Conn | asyncpg.Pool, key_id: UUID) -> bytes | None:
    value = await conn.fetchval(f"select key from {KEYRING} where id = $1", key_id)
    return bytes(value) if value is not None else None


async def producer_key(conn: Conn, producer: str, key_id: UUID, tenant: str) -> bytes:
    """A key from another service's keyring (the reader must have been granted it); KeyGone if deleted."""
    keys = await producer_keys(conn, producer, [(key_id, tenant)])
    if key_id not in keys:
        raise KeyGone(str(key_id))
    return keys[key_id]


async def producer_keys(conn: Conn, producer: str, wanted: Sequence[tuple[UUID, str]]) -> dict[UUID, bytes]:
    """``producer_key`` for several (key id, tenant) pairs in one round trip; a key that is gone is absent.

    Through the producer's ``read_keys`` (its migration says why a function), which reads its keyring."""
    rows = await conn.fetch(
        f'select id, key from "{producer}".read_keys($1::uuid[], $2::text[])',
        [key_id for key_id, _ in wanted],
        [tenant for _, tenant in wanted],
    )
    return {r["id"]: bytes(r["key"]) for r in rows}


async def share_keyring(conn: asyncpg.Connection, producer: str, readers: Iterable[str]) -> None:
    """Let the readers' roles read (only) the producer's keyring. Runs after every migration of either
    service, by whichever login may grant it; a reader role not created yet is granted the next time."""
    for reader in readers:
        role = role_for(reader)
        if not await conn.fetchval("select 1 from pg_roles where rolname = $1", role):
            continue
        if not await conn.fetchval(
            "select 1 from pg_tables where schemaname = $1 and tablename = $2", producer, KEYRING
        ):
            continue
        try:
            await conn.execute(f'grant usage on schema "{producer}" to "{role}"')
            await conn.execute(f'grant select on "{producer}".{KEYRING} to "{role}"')
        except asyncpg.InsufficientPrivilegeError:
            log.debug("cannot grant %s's keyring to %s from this login", producer, role)


async def share_keyrings(url: str, definitions: Iterable[Any]) -> None:
    """``share_keyring`` for every service definition that names key readers (after their migrations)."""
    wanted = [d for d in definitions if getattr(d, "key_readers", ())]
    if not wanted:
        return
    conn = await asyncpg.connect(url)
    try:
        for d in wanted:
            # Processes starting at once would grant on the same catalog rows concurrently, and PostgreSQL
            # refuses the second with "tuple concurrently updated": one grantor at a time per schema.
            async with conn.transaction():
                await conn.execute("select pg_advisory_xact_lock(hashtext($1))", f"keyring:{d.schema}")
                await share_keyring(conn, d.schema, d.key_readers)
    finally:
        await conn.close()
