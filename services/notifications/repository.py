"""SQL of the notifications service. Every statement names the tenant it works for, except the senders'
claims, which work through the due deliveries of all tenants (each row keeps its tenant)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from prometheus_client import Counter

from shared.db import Conn

#: NOTIFY'd in the transaction that queues deliveries: wakes the senders at its commit instead of their next poll.
DELIVERIES_CHANNEL = "civic_deliveries"


async def wake_senders(conn: Conn) -> None:
    await conn.execute("select pg_notify($1, '')", DELIVERIES_CHANNEL)


MAILS_CAPPED = Counter(
    "civic_notifications_mails_capped_total", "Mails not sent: over the hourly cap for an unconfirmed address"
)

DELIVERY_COLUMNS = (
    "id, tenant, cause_event_id, channel, template, transactional, locale, address, registration_id, "
    "subscription_id, endpoint_id, meeting_id, survey_id, personal, body, state, attempts, next_attempt_at, "
    "last_answer, created_at, sent_at"
)


@dataclass(frozen=True)
class EmailDelivery:
    tenant: str
    cause_event_id: UUID
    recipient_key: str
    address: str
    template: str
    transactional: bool
    locale: str = "de"
    registration_id: UUID | None = None
    subscription_id: UUID | None = None
    meeting_id: UUID | None = None
    survey_id: UUID | None = None
    personal: dict[str, Any] | None = None


@dataclass(frozen=True)
class Cap:
    """At most ``per_hour`` mails an hour to one inbox (``mailbox_key``) while its address is unconfirmed."""

    mailbox_key: str
    per_hour: int


CAPPED = "held back: too many mails to this unconfirmed address within an hour"


async def enqueue_email(conn: Conn, d: EmailDelivery, now: datetime, cap: Cap | None = None) -> bool:
    """Queue one mail; False if this (cause, recipient, channel) already has its row. With a ``cap``, a mail
    beyond it to an address no confirmed subscription vouches for is stored as given up instead (and
    counted), so nobody can fill an inbox through registrations or opt-in requests."""
    state, answer = "queued", None
    if cap is not None and await _over_cap(conn, d.recipient_key, cap, now):
        state, answer = "given_up", CAPPED
        MAILS_CAPPED.inc()
    inserted = await conn.fetchval(
        "insert into deliveries (tenant, cause_event_id, channel, recipient_key, template, transactional, locale,"
        " address, registration_id, subscription_id, meeting_id, survey_id, personal, next_attempt_at, created_at,"
        " mailbox_key, state, last_answer)"
        " values ($1, $2, 'email', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13, $13, $14, $15, $16)"
        " on conflict (cause_event_id, recipient_key, channel) do nothing returning true",
        d.tenant,
        d.cause_event_id,
        d.recipient_key,
        d.template,
        d.transactional,
        d.locale,
        d.address,
        d.registration_id,
        d.subscription_id,
        d.meeting_id,
        d.survey_id,
        json.dumps(d.personal or {}),
        now,
        cap.mailbox_key if cap else None,
        state,
        answer,
    )
    if inserted and state == "queued":
        await wake_senders(conn)
    return bool(inserted)


async def _over_cap(conn: Conn, recipient_key: str, cap: Cap, now: datetime) -> bool:
    confirmed = await conn.fetchval(
        "select exists (select 1 from recipients r join subscriptions s on s.recipient_id = r.id"
        " where r.recipient_key = $1 and s.state = 'confirmed')",
        recipient_key,
    )
    if confirmed:
        return False
    recent = await conn.fetchval(
        "select count(*) from deliveries where mailbox_key = $1 and created_at > $2"
        " and coalesce(last_answer, '') <> $3",
        cap.mailbox_key,
        now - timedelta(hours=1),
        CAPPED,
    )
    return int(recent) >= cap.per_hour


async def remember_process(conn: Conn, tenant: str, process_id: UUID) -> None:
    await conn.execute(
        "insert into processes (tenant, process_id) values ($1, $2) on conflict do nothing", tenant, process_id
    )


async def process_known(conn: Conn | asyncpg.Pool, tenant: str, process_id: UUID) -> bool:
    return bool(
        await conn.fetchval(
            "select exists (select 1 from processes where tenant = $1 and process_id = $2)", tenant, process_id
        )
    )


async def record_cause(conn: Conn, event_id: UUID, tenant: str, type_: str, data: dict[str, Any]) -> None:
    await conn.execute(
        "insert into causes (event_id, tenant, type, data) values ($1, $2, $3, $4::jsonb) on conflict do nothing",
        event_id,
        tenant,
        type_,
        json.dumps(data, default=str),
    )


_FAN_OUT_SUBSCRIBERS = """
insert into deliveries (tenant, cause_event_id, channel, recipient_key, template, transactional, locale, address,
                        subscription_id, meeting_id, survey_id, next_attempt_at, created_at)
select s.tenant, $2, 'email', r.recipient_key, $4, false, r.locale, r.address, s.id, $5, $6, $7, $7
from subscriptions s join recipients r on r.id = s.recipient_id
where s.tenant = $1 and s.process_id = $3 and s.state = 'confirmed' and r.address is not null
  and coalesce((r.preferences ->> $8)::boolean, true)
  {extra}
on conflict (cause_event_id, recipient_key, channel) do nothing
"""


async def fan_out_to_subscribers(
    conn: Conn,
    *,
    tenant: str,
    cause_event_id: UUID,
    process_id: UUID,
    template: str,
    preference: str,
    now: datetime,
    meeting_id: UUID | None = None,
    survey_id: UUID | None = None,
    skip_registered_for: UUID | None = None,
) -> int:
    """One statement queues a mail for every confirmed subscriber of a process (50,000 at once is fine)."""
    extra = ""
    args: list[Any] = [tenant, cause_event_id, process_id, template, meeting_id, survey_id, now, preference]
    if skip_registered_for is not None:
        extra = (
            "and not exists (select 1 from registrations g where g.tenant = s.tenant and g.meeting_id = $9"
            " and g.recipient_key = r.recipient_key and g.status <> 'cancelled')"
        )
        args.append(skip_registered_for)
    status = await conn.execute(_FAN_OUT_SUBSCRIBERS.format(extra=extra), *args)
    queued = int(status.split()[-1])
    if queued:
        await wake_senders(conn)
    return queued


async def fan_out_to_registrants(
    conn: Conn, *, tenant: str, cause_event_id: UUID, meeting_id: UUID, template: str, now: datetime
) -> int:
    status = await conn.execute(
        "insert into deliveries (tenant, cause_event_id, channel, recipient_key, template, transactional, locale,"
        " address, registration_id, meeting_id, personal, next_attempt_at, created_at)"
        " select tenant, $2, 'email', recipient_key, $4, true, locale, address, registration_id, meeting_id,"
        " jsonb_build_object('name', name), $5, $5"
        " from registrations where tenant = $1 and meeting_id = $3 and status in ('confirmed', 'checked_in')"
        " and address is not null"
        " on conflict (cause_event_id, recipient_key, channel) do nothing",
        tenant,
        cause_event_id,
        meeting_id,
        template,
        now,
    )
    queued = int(status.split()[-1])
    if queued:
        await wake_senders(conn)
    return queued


# -- projections --------------------------------------------------------------------------------------


async def upsert_meeting(conn: Conn, tenant: str, m: dict[str, Any]) -> None:
    await conn.execute(
        "insert into meetings (tenant, meeting_id, process_id, title, starts_at, ends_at, timezone, venue, url)"
        " values ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9) on conflict (meeting_id) do update set"
        " process_id = excluded.process_id, title = excluded.title, starts_at = excluded.starts_at,"
        " ends_at = excluded.ends_at, timezone = excluded.timezone, venue = excluded.venue, url = excluded.url"
        " where meetings.tenant = excluded.tenant",
        tenant,
        m["meeting_id"],
        m["process_id"],
        m["title"],
        m["starts_at"],
        m["ends_at"],
        m["timezone"],
        json.dumps(m["venue"]) if m["venue"] is not None else None,
        m["url"],
    )


async def upsert_registration(
    conn: Conn,
    *,
    tenant: str,
    registration_id: UUID,
    meeting_id: UUID,
    status: str,
    address: str | None = None,
    email_sha256: str | None = None,
    recipient_key: str | None = None,
    name: str | None = None,
    locale: str | None = None,
) -> None:
    await conn.execute(
        "insert into registrations (tenant, registration_id, meeting_id, status, address, email_sha256,"
        " recipient_key, name, locale) values ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($9, 'de'))"
        " on conflict (registration_id) do update set status = excluded.status,"
        " address = coalesce(excluded.address, registrations.address),"
        " email_sha256 = coalesce(excluded.email_sha256, registrations.email_sha256),"
        " recipient_key = coalesce(excluded.recipient_key, registrations.recipient_key),"
        " name = coalesce(excluded.name, registrations.name),"
        " locale = coalesce($9, registrations.locale)"
        " where registrations.tenant = excluded.tenant",
        tenant,
        registration_id,
        meeting_id,
        status,
        address,
        email_sha256,
        recipient_key,
        name,
        locale,
    )


async def registration(conn: Conn, tenant: str, registration_id: UUID) -> Any:
    return await conn.fetchrow(
        "select * from registrations where tenant = $1 and registration_id = $2", tenant, registration_id
    )


async def erase_registrations(conn: Conn, tenant: str, ids: list[UUID]) -> None:
    await conn.execute("delete from registrations where tenant = $1 and registration_id = any($2)", tenant, ids)
    await _blank_deliveries(conn, "registration_id = any($2)", tenant, ids)


async def erase_recipient(conn: Conn, tenant: str, email_sha256: str, *, column: str = "email_sha256") -> None:
    """Delete the recipient (its subscriptions with it) found by ``column`` (``email_sha256`` for
    person.erased.v1, ``email_hmac`` for v2) and blank its deliveries."""
    assert column in ("email_sha256", "email_hmac")
    keys = await conn.fetch(
        f"select recipient_key from recipients where tenant = $1 and {column} = $2", tenant, email_sha256
    )
    await conn.execute(f"delete from recipients where tenant = $1 and {column} = $2", tenant, email_sha256)
    if keys:
        await _blank_deliveries(conn, "recipient_key = any($2)", tenant, [k["recipient_key"] for k in keys])


async def _blank_deliveries(conn: Conn, where: str, tenant: str, values: list[Any]) -> None:
    # What was not sent yet cannot be sent without its address: it is given up, not left to fail forever.
    await conn.execute(
        "update deliveries set address = null, personal = '{}'::jsonb,"
        " state = case when state in ('queued', 'failed', 'sending') then 'given_up' else state end,"
        " last_answer = case when state in ('queued', 'failed', 'sending') then 'erased before sending'"
        " else last_answer end, lease_until = null"
        f" where tenant = $1 and channel = 'email' and {where}",
        tenant,
        values,
    )


# -- subscriptions --------------------------------------------------------------------------------------


async def subscribe(
    conn: Conn,
    *,
    tenant: str,
    address: str,
    email_sha256: str,
    recipient_key: str,
    locale: str,
    process_id: UUID,
    now: datetime,
    email_hmac: str | None = None,
) -> tuple[UUID, str, bool]:
    """Create or re-arm a subscription; (id, state, needs an opt-in mail)."""
    recipient_id = await conn.fetchval(
        "insert into recipients (id, tenant, address, email_sha256, recipient_key, locale, email_hmac) values"
        " ($1, $2, $3, $4, $5, $6, $7) on conflict (tenant, email_sha256) do update set address = excluded.address,"
        " locale = excluded.locale, email_hmac = coalesce(excluded.email_hmac, recipients.email_hmac) returning id",
        uuid4(),
        tenant,
        address,
        email_sha256,
        recipient_key,
        locale,
        email_hmac,
    )
    row = await conn.fetchrow(
        "select id, state from subscriptions where tenant = $1 and recipient_id = $2 and process_id = $3 for update",
        tenant,
        recipient_id,
        process_id,
    )
    if row is None:
        sid = uuid4()
        await conn.execute(
            "insert into subscriptions (id, tenant, recipient_id, process_id, state, created_at)"
            " values ($1, $2, $3, $4, 'pending', $5)",
            sid,
            tenant,
            recipient_id,
            process_id,
            now,
        )
        return sid, "pending", True
    if row["state"] == "unsubscribed":
        await conn.execute("update subscriptions set state = 'pending' where id = $1", row["id"])
        return row["id"], "pending", True
    # Pending already (one opt-in mail per arming, so nobody can mail-bomb an address) or confirmed.
    return row["id"], row["state"], False


async def set_subscription_state(conn: Conn, subscription_id: UUID, state: str, now: datetime) -> Any:
    return await conn.fetchrow(
        "update subscriptions set state = $2,"
        " confirmed_at = case when $2 = 'confirmed' then $3 else confirmed_at end"
        " where id = $1 returning id, tenant, process_id, state",
        subscription_id,
        state,
        now,
    )


# -- deliveries ---------------------------------------------------------------------------------------


async def deliveries_where(
    conn: Conn | asyncpg.Pool, tenant: str, where: str, value: Any, limit: int = 500
) -> list[Any]:
    return list(
        await conn.fetch(
            f"select {DELIVERY_COLUMNS} from deliveries where tenant = $1 and {where} order by created_at, id limit $3",
            tenant,
            value,
            limit,
        )
    )


async def claim(
    conn: Conn, channel: str, now: datetime, lease_until: datetime, limit: int, max_attempts: int = 1_000_000
) -> list[Any]:
    """Take due deliveries (and ones whose sender's lease ran out) for sending: 'sending' until the lease ends."""
    return list(
        await conn.fetch(
            "update deliveries d set state = 'sending', lease_until = $3, attempts = d.attempts + 1"
            " where d.id in (select id from deliveries where channel = $1 and ("
            "   (state in ('queued', 'failed') and next_attempt_at <= $2)"
            "   or (state = 'sending' and lease_until < $2 and attempts < $5))"
            " order by next_attempt_at limit $4 for update skip locked)"
            f" returning {', '.join('d.' + c.strip() for c in DELIVERY_COLUMNS.split(','))}",
            channel,
            now,
            lease_until,
            limit,
            max_attempts,
        )
    )


# -- data export (GDPR Art. 15) ---------------------------------------------------------------------------


def _plain(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in dict(row).items():
        if isinstance(v, datetime):
            v = v.isoformat()
        elif isinstance(v, UUID):
            v = str(v)
        elif isinstance(v, str) and k in ("personal", "preferences") and v[:1] == "{":
            v = json.loads(v)
        out[k] = v
    return out


async def person_records(conn: Conn, tenant: str, address: str, recipient_key: str) -> dict[str, Any]:
    """Everything this service holds about one e-mail address: recipient record, subscriptions,
    registrations it keeps for reminders, and the delivery log's mails to it."""
    recipients = await conn.fetch(
        "select id, address, locale, preferences, created_at from recipients"
        " where tenant = $1 and (lower(address) = lower($2) or recipient_key = $3) order by created_at",
        tenant,
        address,
        recipient_key,
    )
    subscriptions = await conn.fetch(
        "select s.id, s.process_id, s.state, s.created_at, s.confirmed_at from subscriptions s"
        " join recipients r on r.id = s.recipient_id"
        " where s.tenant = $1 and (lower(r.address) = lower($2) or r.recipient_key = $3) order by s.created_at",
        tenant,
        address,
        recipient_key,
    )
    registrations = await conn.fetch(
        "select registration_id, meeting_id, status, address, name, locale from registrations"
        " where tenant = $1 and (lower(address) = lower($2) or recipient_key = $3) order by registration_id",
        tenant,
        address,
        recipient_key,
    )
    deliveries = await conn.fetch(
        "select id, cause_event_id, template, transactional, locale, address, registration_id, subscription_id,"
        " meeting_id, survey_id, personal, state, attempts, created_at, sent_at from deliveries"
        " where tenant = $1 and channel = 'email' and (lower(address) = lower($2) or recipient_key = $3)"
        " order by created_at, id",
        tenant,
        address,
        recipient_key,
    )
    return {
        "recipients": [_plain(r) for r in recipients],
        "subscriptions": [_plain(r) for r in subscriptions],
        "registrations": [_plain(r) for r in registrations],
        "deliveries": [_plain(r) for r in deliveries],
    }
