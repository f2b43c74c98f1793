"""Data export per person (GDPR Art. 15), requested like an erasure: through an event.

Staff ask registration for everything civic holds about one e-mail address or phone number. Registration
writes its own records at once and publishes ``person.export_requested`` (the address sealed under the
export's own key); every service holding personal data answers with its records sealed under that key
(``person.export_contributed``, on its private stream). When every expected answer is in, staff download one
ZIP with ``export.json``. The export's key is deleted when the export expires (or the person is erased), so
the parts and every copy of the request and answers on the bus become unreadable.
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from shared.contracts.notifications import PersonExportContributedV1
from shared.contracts.registration import PersonExportRequestedV1
from shared.contracts.registry import Event
from shared.db import Conn
from shared.privacy import delete_keys, new_key, open_sealed, own_key, person_hmac, seal, store_keys
from shared.service import ServiceContext

#: Services that hold personal data found by e-mail address or phone number and answer an export request.
CONTRIBUTORS = ("notifications",)

RECORDS = (
    "select r.id, r.meeting_id, m.title as meeting_title, m.starts_at as meeting_starts_at, r.slot_id, r.status, "
    "r.seats, r.companions, r.channel, r.name, r.email, r.phone, r.locale, r.age, r.guardian_consent, r.answers, "
    "r.attestations, r.privacy_consent_at, r.ticket_code, r.created_at, r.confirmed_at, r.cancelled_at, "
    "r.cancelled_by, c.checked_in_at "
    "from registrations r join meetings m on m.id = r.meeting_id left join checkins c on c.registration_id = r.id "
    "where r.tenant = $1 and ((r.email is not null and r.email = $2) or (r.phone is not null and r.phone = $3)) "
    "order by r.created_at, r.id"
)


def request_context(export_id: UUID) -> str:
    return f"export:{export_id}"


def part_context(export_id: UUID, service: str) -> str:
    return f"export:{export_id}:{service}"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


async def request_export(
    ctx: ServiceContext, tenant: str, *, email: str | None, phone: str | None, retention: timedelta
) -> dict[str, Any]:
    now = ctx.clock.now()
    export_id = uuid4()
    key = new_key()
    secret = ctx.settings.privacy_secret
    async with ctx.pool.acquire() as conn, conn.transaction():
        await store_keys(conn, [(export_id, tenant, key)])
        rows = await conn.fetch(RECORDS, tenant, email, phone)
        mine = {
            "subject": {"email": email, "phone": phone},
            "records": {"registrations": [{k: _plain(v) for k, v in dict(r).items()} for r in rows]},
        }
        await conn.execute(
            "insert into data_exports (id, tenant, email_hmac, phone_hmac, requested_at, expires_at, waiting_for) "
            "values ($1, $2, $3, $4, $5, $6, $7)",
            export_id,
            tenant,
            person_hmac(secret, "email", email) if email else None,
            person_hmac(secret, "phone", phone) if phone else None,
            now,
            now + retention,
            list(CONTRIBUTORS),
        )
        await conn.execute(
            "insert into data_export_parts (export_id, service, sealed) values ($1, 'registration', $2)",
            export_id,
            seal(key, mine, context=part_context(export_id, "registration")),
        )
        await ctx.outbox.record(
            conn,
            PersonExportRequestedV1(
                export_id=export_id,
                key_id=export_id,
                sealed=seal(key, {"email": email, "phone": phone}, context=request_context(export_id)),
            ),
            tenant=tenant,
            subject=f"export/{export_id}",
        )
    return {"export_id": export_id, "state": "pending", "waiting_for": list(CONTRIBUTORS)}


async def contributed(ctx: ServiceContext, conn: Conn, event: Event) -> None:
    """A service's answer: kept sealed until the download; the export completes with the last answer."""
    p = event.payload
    assert isinstance(p, PersonExportContributedV1)
    service = event.envelope.source.rsplit("/", 1)[-1]
    row = await conn.fetchrow(
        "select waiting_for from data_exports where id = $1 and tenant = $2 for update",
        p.export_id,
        event.envelope.tenant,
    )
    if row is None:
        return  # expired or erased meanwhile: nothing to add to
    await conn.execute(
        "insert into data_export_parts (export_id, service, sealed) values ($1, $2, $3) "
        "on conflict (export_id, service) do nothing",
        p.export_id,
        service,
        p.sealed,
    )
    waiting = [s for s in row["waiting_for"] if s != service]
    await conn.execute(
        "update data_exports set waiting_for = $2, completed_at = case when cardinality($2::text[]) = 0 "
        "then $3 else completed_at end where id = $1",
        p.export_id,
        waiting,
        ctx.clock.now(),
    )


async def status(ctx: ServiceContext, tenant: str, export_id: UUID) -> dict[str, Any] | None:
    row = await ctx.pool.fetchrow(
        "select id, requested_at, expires_at, waiting_for, completed_at from data_exports "
        "where id = $1 and tenant = $2",
        export_id,
        tenant,
    )
    if row is None:
        return None
    return {
        "export_id": row["id"],
        "state": "complete" if row["completed_at"] else "pending",
        "waiting_for": list(row["waiting_for"]),
        "requested_at": row["requested_at"],
        "completed_at": row["completed_at"],
        "expires_at": row["expires_at"],
    }


async def document(ctx: ServiceContext, tenant: str, export_id: UUID) -> dict[str, Any] | None:
    """Every part opened and put together; None if there is no such export (or it is not complete)."""
    async with ctx.pool.acquire() as conn:
        row = await conn.fetchrow(
            "select requested_at, completed_at from data_exports where id = $1 and tenant = $2", export_id, tenant
        )
        if row is None or row["completed_at"] is None:
            return None
        key = await own_key(conn, export_id)
        if key is None:
            return None
        parts = await conn.fetch(
            "select service, sealed from data_export_parts where export_id = $1 order by service", export_id
        )
    opened = {p["service"]: open_sealed(key, p["sealed"], context=part_context(export_id, p["service"])) for p in parts}
    own = opened.get("registration", {})
    return {
        "export_id": str(export_id),
        "tenant": tenant,
        "requested_at": row["requested_at"].isoformat(),
        "completed_at": row["completed_at"].isoformat(),
        "subject": own.get("subject"),
        "services": {service: part.get("records", {}) for service, part in opened.items()},
    }


def zip_bytes(doc: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("export.json", json.dumps(doc, indent=2, ensure_ascii=False, default=str))
        z.writestr(
            "LIESMICH.txt",
            "Auskunft nach Art. 15 DSGVO: alle personenbezogenen Daten, die civic zu der angefragten "
            "E-Mail-Adresse oder Telefonnummer gespeichert hat (export.json, nach Dienst gegliedert).\n",
        )
    return out.getvalue()


async def expire(ctx: ServiceContext) -> int:
    """Delete expired exports and their keys (the parts go with the export row)."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch("delete from data_exports where expires_at < $1 returning id", ctx.clock.now())
        await delete_keys(conn, [r["id"] for r in rows])
    return len(rows)
