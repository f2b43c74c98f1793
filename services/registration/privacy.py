"""Personal data: erasure on request, and anonymisation once the retention period after a meeting ran out.

Both blank the personal fields and keep the row (seat counts and attendance figures stay right), delete the
registrations' keys from the keyring (every event that sealed their data becomes unreadable wherever a copy
is: Redis, its AOF and RDB files and their backups, the outbox), and publish an event so other services erase
what they hold about these registrations.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

from pydantic_settings import BaseSettings, SettingsConfigDict

from services.registration import data_export
from shared.bus.errors import TRANSIENT
from shared.contracts.registration import PersonErasedV2, RegistrationsAnonymisedV1
from shared.db import Conn
from shared.privacy import delete_keys, person_hmac
from shared.service import Loop, ServiceContext

log = logging.getLogger(__name__)

BLANK = (
    "name = null, email = null, phone = null, age = null, answers = '{}', attestations = '[]', "
    "accessibility_needs = null, "
    "ticket_code = case when status = 'confirmed' then ticket_code end"
)


# Version 1 events (recorded before personal data was sealed) carry the contact in the clear; the outbox keeps
# published rows for days (and publishes them again after Redis lost its data), so the contact is blanked there.
# The shape stays valid: a consumer still parses an event published again. Version 2 needs no scrubbing: its
# sealed data is unreadable once the key is deleted.
SCRUB_OUTBOX = (
    "update outbox set envelope = jsonb_set(envelope::jsonb, '{data,contact}', "
    '(envelope::jsonb -> \'data\' -> \'contact\') || \'{"name": "", "email": null, "phone": null}\'::jsonb)::text '
    "where subject = any($1::text[]) and (envelope::jsonb -> 'data' ->> 'registration_id') = any($2::text[]) "
    "and jsonb_typeof(envelope::jsonb -> 'data' -> 'contact') = 'object'"
)


async def scrub_outbox(conn: Conn, rows: list[Any]) -> None:
    if not rows:
        return
    subjects = sorted({f"meeting/{r['meeting_id']}" for r in rows})
    await conn.execute(SCRUB_OUTBOX, subjects, [str(r["id"]) for r in rows])


class RetentionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CIVIC_REGISTRATION_", extra="ignore")

    #: Days after a meeting ended until its registrations are anonymised.
    retention_days: int = 30
    retention_interval_seconds: float = 3600.0
    #: Hours a data export (GDPR Art. 15) can be downloaded; then it and its key are deleted.
    export_retention_hours: int = 72


async def erase_person(ctx: ServiceContext, tenant: str, *, email: str | None, phone: str | None) -> dict[str, Any]:
    now = ctx.clock.now()
    async with ctx.pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            f"update registrations set {BLANK}, erased_at = $4 where tenant = $1 and erased_at is null "
            "and ((email is not null and email = $2) or (phone is not null and phone = $3)) returning id, meeting_id",
            tenant,
            email,
            phone,
            now,
        )
        ids: list[UUID] = [r["id"] for r in rows]
        await scrub_outbox(conn, list(rows))
        await delete_keys(conn, ids)
        await erase_exports(conn, ctx, tenant, email=email, phone=phone)
        erasure_id = uuid4()
        secret = ctx.settings.privacy_secret
        await ctx.outbox.record(
            conn,
            PersonErasedV2(
                erasure_id=erasure_id,
                registration_ids=ids,
                email_hmac=person_hmac(secret, "email", email) if email else None,
                phone_hmac=person_hmac(secret, "phone", phone) if phone else None,
            ),
            tenant=tenant,
            subject=f"erasure/{erasure_id}",
        )
    return {"erasure_id": erasure_id, "registration_ids": ids}


async def anonymise_due(ctx: ServiceContext, retention_days: int) -> list[tuple[UUID, int]]:
    """Anonymise registrations of every meeting that ended more than ``retention_days`` ago; one event per
    meeting. Several processes may run it: the row lock with SKIP LOCKED hands each meeting to one of them."""
    now = ctx.clock.now()
    done: list[tuple[UUID, int]] = []
    async with ctx.pool.acquire() as conn, conn.transaction():
        meetings = await conn.fetch(
            "select id, tenant from meetings where anonymised_at is null and ends_at < $1 "
            "order by ends_at limit 50 for update skip locked",
            now - timedelta(days=retention_days),
        )
        for m in meetings:
            rows = await conn.fetch(
                f"update registrations set {BLANK}, anonymised_at = $2 where meeting_id = $1 "
                "and anonymised_at is null returning id, meeting_id",
                m["id"],
                now,
            )
            await scrub_outbox(conn, list(rows))
            await conn.execute("update meetings set anonymised_at = $2 where id = $1", m["id"], now)
            ids = [r["id"] for r in rows]
            await delete_keys(conn, ids)
            await ctx.outbox.record(
                conn,
                RegistrationsAnonymisedV1(meeting_id=m["id"], registration_ids=ids),
                tenant=m["tenant"],
                subject=f"meeting/{m['id']}",
            )
            done.append((m["id"], len(ids)))
    return done


async def erase_exports(conn: Conn, ctx: ServiceContext, tenant: str, *, email: str | None, phone: str | None) -> None:
    """Data exports about the erased person go too (their key with them)."""
    secret = ctx.settings.privacy_secret
    rows = await conn.fetch(
        "delete from data_exports where tenant = $1 and ((email_hmac is not null and email_hmac = $2) "
        "or (phone_hmac is not null and phone_hmac = $3)) returning id",
        tenant,
        person_hmac(secret, "email", email) if email else None,
        person_hmac(secret, "phone", phone) if phone else None,
    )
    await delete_keys(conn, [r["id"] for r in rows])


def retention_loop(ctx: ServiceContext, settings: RetentionSettings | None = None) -> Loop:
    s = settings or RetentionSettings()

    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await anonymise_due(ctx, s.retention_days)
                await data_export.expire(ctx)
            except TRANSIENT as exc:
                log.warning("retention run postponed: a server is unreachable", extra={"error": repr(exc)})
            except Exception:
                log.exception("retention run failed; trying again later")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), s.retention_interval_seconds)

    return run
