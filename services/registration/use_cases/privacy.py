"""Personal data: erasure on request, anonymisation once the retention period after a meeting ran out, and data
exports per person (GDPR Art. 15).

Erasure and anonymisation blank the personal fields and keep the row (seat counts and attendance figures stay
right), delete the registrations' keys from the keyring (every event that sealed their data becomes unreadable
wherever a copy is: Redis, its AOF and RDB files and their backups, the outbox), and publish an event so other
services erase what they hold about these registrations.

A data export is requested like an erasure: through an event. Staff ask registration for everything civic holds
about one e-mail address or phone number. Registration writes its own records at once and publishes
``person.export_requested`` (the address sealed under the export's own key); every service holding personal
data answers with its records sealed under that key (``person.export_contributed``, on its private stream).
When every expected answer is in, staff download one ZIP with ``export.json``. The export's key is deleted when
the export expires (or the person is erased), so the parts and every copy of the request and answers on the bus
become unreadable.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from services.registration.store import Store
from services.registration.use_cases.common import NOT_FOUND, Units
from shared.contracts.registration import PersonErasedV2, PersonExportRequestedV1, RegistrationsAnonymisedV1
from shared.errors import Conflict, NotFound
from shared.privacy import new_key, open_sealed, person_hmac, seal
from shared.unit_of_work import UnitOfWork

#: Services that hold personal data found by e-mail address or phone number and answer an export request.
CONTRIBUTORS = ("notifications",)


def _hmacs(secret: str, email: str | None, phone: str | None) -> tuple[str | None, str | None]:
    return (
        person_hmac(secret, "email", email) if email else None,
        person_hmac(secret, "phone", phone) if phone else None,
    )


# --- erasure and retention ---------------------------------------------------------------------------------------


async def erase_person(
    uow: UnitOfWork[Store], tenant: str, *, email: str | None, phone: str | None, now: datetime, secret: str
) -> dict[str, Any]:
    """Erase a person's data across all registrations of the tenant (``email``/``phone`` normalised)."""
    async with uow:
        store = uow.store
        rows = await store.erase_person(tenant, email, phone, now)
        ids: list[UUID] = [r["id"] for r in rows]
        await store.delete_callbacks_of(ids)
        await store.scrub_outbox(rows)
        await store.delete_keys(ids)
        # Data exports about the erased person go too (their key with them).
        email_hmac, phone_hmac = _hmacs(secret, email, phone)
        await store.delete_keys(await store.delete_exports_of(tenant, email_hmac, phone_hmac))
        erasure_id = uuid4()
        await uow.record(
            PersonErasedV2(erasure_id=erasure_id, registration_ids=ids, email_hmac=email_hmac, phone_hmac=phone_hmac),
            tenant=tenant,
            subject=f"erasure/{erasure_id}",
        )
    return {"erasure_id": erasure_id, "registration_ids": ids}


async def anonymise_due(uow: UnitOfWork[Store], retention_days: int, *, now: datetime) -> list[tuple[UUID, int]]:
    """Anonymise registrations of every meeting that ended more than ``retention_days`` ago; one event per
    meeting. Several processes may run it: each meeting is handed to one of them."""
    done: list[tuple[UUID, int]] = []
    async with uow:
        store = uow.store
        for m in await store.meetings_due_for_anonymising(now - timedelta(days=retention_days)):
            rows = await store.anonymise_meeting(m["id"], now)
            await store.scrub_outbox(rows)
            ids = [r["id"] for r in rows]
            await store.delete_callbacks_of(ids)
            await store.delete_keys(ids)
            await uow.record(
                RegistrationsAnonymisedV1(meeting_id=m["id"], registration_ids=ids),
                tenant=m["tenant"],
                subject=f"meeting/{m['id']}",
            )
            done.append((m["id"], len(ids)))
    return done


# --- data exports ------------------------------------------------------------------------------------------------


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
    uow: UnitOfWork[Store],
    tenant: str,
    *,
    email: str | None,
    phone: str | None,
    retention: timedelta,
    now: datetime,
    secret: str,
) -> dict[str, Any]:
    export_id = uuid4()
    key = new_key()
    async with uow:
        store = uow.store
        await store.store_key(export_id, tenant, key)
        rows = await store.person_records(tenant, email, phone)
        mine = {
            "subject": {"email": email, "phone": phone},
            "records": {"registrations": [{k: _plain(v) for k, v in r.items()} for r in rows]},
        }
        email_hmac, phone_hmac = _hmacs(secret, email, phone)
        await store.insert_export(export_id, tenant, email_hmac, phone_hmac, now, now + retention, list(CONTRIBUTORS))
        await store.add_export_part(
            export_id, "registration", seal(key, mine, context=part_context(export_id, "registration"))
        )
        await uow.record(
            PersonExportRequestedV1(
                export_id=export_id,
                key_id=export_id,
                sealed=seal(key, {"email": email, "phone": phone}, context=request_context(export_id)),
            ),
            tenant=tenant,
            subject=f"export/{export_id}",
        )
    return {"export_id": export_id, "state": "pending", "waiting_for": list(CONTRIBUTORS)}


async def export_contributed(
    uow: UnitOfWork[Store], tenant: str, export_id: UUID, service: str, sealed: str, *, now: datetime
) -> None:
    """A service's answer: kept sealed until the download; the export completes with the last answer."""
    async with uow:
        waiting_for = await uow.store.export_waiting_for(export_id, tenant)
        if waiting_for is None:
            return  # expired or erased meanwhile: nothing to add to
        await uow.store.add_export_part(export_id, service, sealed)
        await uow.store.set_export_waiting(export_id, [s for s in waiting_for if s != service], now)


async def export_status(uows: Units, tenant: str, export_id: UUID) -> dict[str, Any]:
    async with uows.reading() as store:
        row = await store.export(export_id, tenant)
    if row is None:
        raise NotFound(NOT_FOUND, detail="no such data export (or it expired)")
    return {
        "export_id": row["id"],
        "state": "complete" if row["completed_at"] else "pending",
        "waiting_for": list(row["waiting_for"]),
        "requested_at": row["requested_at"],
        "completed_at": row["completed_at"],
        "expires_at": row["expires_at"],
    }


async def export_document(uows: Units, tenant: str, export_id: UUID) -> dict[str, Any]:
    """Every part opened and put together; refused while the export is pending (or gone)."""
    async with uows.reading() as store:
        row = await store.export(export_id, tenant)
        key = await store.own_key(export_id) if row is not None and row["completed_at"] is not None else None
        parts = await store.export_parts(export_id) if key is not None else []
    if row is None:
        raise NotFound(NOT_FOUND, detail="no such data export (or it expired)")
    if key is None:
        raise Conflict("export-pending", "Not complete", detail="waiting for: " + ", ".join(row["waiting_for"]))
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


async def expire_exports(uow: UnitOfWork[Store], *, now: datetime) -> int:
    """Delete expired exports and their keys (the parts go with the export row)."""
    async with uow:
        ids = await uow.store.delete_expired_exports(now)
        await uow.store.delete_keys(ids)
    return len(ids)
