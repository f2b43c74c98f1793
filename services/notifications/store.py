"""All SQL of the notifications service. Every statement names the tenant it works for, except the senders'
claims and outcomes, which work through the due deliveries of all tenants (each row keeps its tenant)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from prometheus_client import Counter

from services.notifications.domain import CAPPED, Cap, EmailDelivery
from shared.bus.consumer import accept_newer, accept_newer_many
from shared.db import Conn
from shared.privacy import producer_key, producer_keys

#: NOTIFY'd in the transaction that queues deliveries: wakes the senders at its commit instead of their next poll.
DELIVERIES_CHANNEL = "civic_deliveries"

MAILS_CAPPED = Counter(
    "civic_notifications_mails_capped_total", "Mails not sent: over the hourly cap for an unconfirmed address"
)

#: A delivery as staff and the senders see it, read from the ``delivery_log`` view (the log and the send queue).
DELIVERY_COLUMNS = (
    "id, tenant, cause_event_id, channel, template, transactional, locale, address, registration_id, "
    "subscription_id, endpoint_id, meeting_id, survey_id, personal, body, state, attempts, next_attempt_at, "
    "last_answer, created_at, sent_at, resends, resent_at"
)

# Every statement that inserts deliveries to send puts them in the send queue in the same statement (``QUEUE``).
QUEUE = (
    "insert into send_queue (delivery_id, channel, due_at)"
    " select id, channel, next_attempt_at from inserted where state = 'queued'"
)

_FAN_OUT_SUBSCRIBERS = f"""
with inserted as (
    insert into deliveries (tenant, cause_event_id, channel, recipient_key, template, transactional, locale,
                            address, subscription_id, meeting_id, survey_id, next_attempt_at, created_at)
    select s.tenant, $2, 'email', r.recipient_key, $4, false, r.locale, r.address, s.id, $5, $6, $7, $7
    from subscriptions s join recipients r on r.id = s.recipient_id
    where s.tenant = $1 and s.process_id = $3 and s.state = 'confirmed' and r.address is not null
      and coalesce((r.preferences ->> $8)::boolean, true)
      {{extra}}
    on conflict (cause_event_id, recipient_key, channel) do nothing
    returning id, channel, next_attempt_at, state
)
{QUEUE}
"""

# Mails queued (Store.enqueue_emails), each to an inbox of its own: a mail is given up instead when its mailbox
# is over the hourly cap (none without a mailbox key) and no confirmed subscription vouches for the recipient;
# the senders are woken (at commit) when a row was inserted to be sent. Answers how many rows were inserted and
# how many of them were given up.
_ENQUEUE_EMAILS = f"""
with wanted as (
    select * from unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::boolean[], $6::text[], $7::text[],
                         $8::uuid[], $9::uuid[], $10::text[], $11::text[], $12::bigint[], $17::uuid[], $18::uuid[])
        as w(tenant, cause, recipient_key, template, transactional, locale, address, registration_id,
             meeting_id, personal, mailbox_key, per_hour, subscription_id, survey_id)
), capped as (
    select w.*,
           w.mailbox_key is not null
           and not exists (select 1 from recipients r join subscriptions s on s.recipient_id = r.id
                           where r.recipient_key = w.recipient_key and s.state = 'confirmed')
           and (select count(*) from deliveries
                where mailbox_key = w.mailbox_key and created_at > $14 and coalesce(last_answer, '') <> $15)
               >= w.per_hour as over
    from wanted w
), inserted as (
    insert into deliveries (tenant, cause_event_id, channel, recipient_key, template, transactional, locale,
                            address, registration_id, subscription_id, meeting_id, survey_id, personal,
                            next_attempt_at, created_at, mailbox_key, state, last_answer)
    select tenant, cause, 'email', recipient_key, template, transactional, locale, address, registration_id,
           subscription_id, meeting_id, survey_id, personal::jsonb, $13, $13, mailbox_key,
           case when over then 'given_up' else 'queued' end, case when over then $15 end
    from capped
    on conflict (cause_event_id, recipient_key, channel) do nothing
    returning id, channel, next_attempt_at, state
), queued as (
    {QUEUE}
)
select count(*) as inserted, count(*) filter (where state = 'given_up') as given_up,
       (select pg_notify($16, '') where exists (select 1 from inserted where state = 'queued')) as woken
from inserted
"""

# The outcomes of a few deliveries (mails or webhooks), only of the rows still under their sender's lease (one
# whose lease ran out may have been taken over, one erased meanwhile has left the queue): sent or given up leaves
# the queue, failed is due again without a lease; the log's row takes the outcome and the count of attempts.
# ``recorded`` names the rows written.
_SETTLE = """
with u as (
    select * from unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::timestamptz[],
                         $6::timestamptz[]) as u(id, state, next_at, answer, sent_at, lease)
), settled as (
    delete from send_queue q using u
    where q.delivery_id = u.id and q.lease_until = u.lease and u.state <> 'failed'
    returning q.delivery_id, q.attempts
), retried as (
    update send_queue q set lease_until = null, due_at = u.next_at from u
    where q.delivery_id = u.id and q.lease_until = u.lease and u.state = 'failed'
    returning q.delivery_id, q.attempts
), recorded as (
    update deliveries d set state = u.state, next_attempt_at = coalesce(u.next_at, d.next_attempt_at),
           last_answer = u.answer, sent_at = u.sent_at, attempts = q.attempts
    from u, (select * from settled union all select * from retried) q
    where d.id = u.id and q.delivery_id = u.id
    returning d.id
)
"""

# The outcomes of a few mails and their events in one statement (one round trip, atomic on its own); the events
# only of the rows recorded, written through the bus's own writer, which also wakes the relay.
_RECORD_MAILS = (
    _SETTLE
    + """
select record_events(array_agg(e.id), array_agg(e.tenant), array_agg(e.stream), array_agg(e.type),
                     array_agg(null::text), array_agg(e.envelope), $13)
from unnest($7::uuid[], $8::uuid[], $9::text[], $10::text[], $11::text[], $12::text[])
     as e(delivery_id, id, tenant, stream, type, envelope)
join recorded r on r.id = e.delivery_id
"""
)


def _claimed(column: str) -> str:
    """A claimed row's column: the log's, but state, attempts and next attempt as the claim leaves them."""
    return {
        "state": "'sending' as state",
        "attempts": "t.attempts",
        "next_attempt_at": "t.due_at as next_attempt_at",
    }.get(column, f"d.{column}")


def _claim(extra_columns: str = "", extra_joins: str = "") -> str:
    """The claim's statement ($1 channel, $2 now, $3 lease until, $4 limit, $5 max attempts): the claimed rows
    as ``DELIVERY_COLUMNS``, with ``extra_columns`` from ``extra_joins``."""
    return (
        "with leased as (select delivery_id from send_queue where channel = $1 and lease_until is not null"
        "   and lease_until < $2 and attempts < $5 order by lease_until limit $4 for update skip locked),"
        " due as (select delivery_id from send_queue where channel = $1 and lease_until is null"
        "   and due_at <= $2 order by due_at limit $4 for update skip locked),"
        " taken as (update send_queue q set lease_until = $3, attempts = q.attempts + 1"
        "   where q.delivery_id in (select delivery_id from"
        "     (select delivery_id from leased union all select delivery_id from due) c limit $4)"
        "   returning q.delivery_id, q.attempts, q.due_at)"
        f" select {', '.join(_claimed(c.strip()) for c in DELIVERY_COLUMNS.split(','))}{extra_columns}"
        f" from taken t join deliveries d on d.id = t.delivery_id{extra_joins}"
    )


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


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


class Store:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    # -- bus helpers ------------------------------------------------------------------------------------

    async def accept_newer(self, subject: str, sequence: int | None) -> bool:
        """True if ``sequence`` is newer than what the projection of ``subject`` shows (and record it)."""
        return await accept_newer(self.conn, subject, sequence)

    async def producer_key(self, producer: str, key_id: UUID, tenant: str) -> bytes:
        """A key of another service's keyring; ``KeyGone`` once its person was erased."""
        return await producer_key(self.conn, producer, key_id, tenant)

    async def accept_newer_many(self, items: Sequence[tuple[str, int | None]]) -> list[bool]:
        return await accept_newer_many(self.conn, items)

    async def producer_keys(self, producer: str, wanted: Sequence[tuple[UUID, str]]) -> dict[UUID, bytes]:
        return await producer_keys(self.conn, producer, wanted)

    async def wake_senders(self) -> None:
        await self.conn.execute("select pg_notify($1, '')", DELIVERIES_CHANNEL)

    # -- queueing mails -----------------------------------------------------------------------------------

    async def enqueue_email(self, d: EmailDelivery, now: datetime, cap: Cap | None = None) -> bool:
        """Queue one mail; False if this (cause, recipient, channel) already has its row. With a ``cap``, a mail
        beyond it to an address no confirmed subscription vouches for is stored as given up instead (and
        counted), so nobody can fill an inbox through registrations or opt-in requests."""
        return await self.enqueue_emails([(d, cap)], now) == 1

    async def enqueue_emails(self, ds: Sequence[tuple[EmailDelivery, Cap | None]], now: datetime) -> int:
        """``enqueue_email`` for several mails in one statement (the cap, the rows and the senders' wake-up),
        each to an inbox of its own: one's count must not depend on another's row in the same statement.
        Answers how many were inserted."""
        inboxes = [c.mailbox_key for _, c in ds if c is not None]
        assert len(set(inboxes)) == len(inboxes), "one mail an inbox"
        row = await self.conn.fetchrow(
            _ENQUEUE_EMAILS,
            [d.tenant for d, _ in ds],
            [d.cause_event_id for d, _ in ds],
            [d.recipient_key for d, _ in ds],
            [d.template for d, _ in ds],
            [d.transactional for d, _ in ds],
            [d.locale for d, _ in ds],
            [d.address for d, _ in ds],
            [d.registration_id for d, _ in ds],
            [d.meeting_id for d, _ in ds],
            [json.dumps(d.personal or {}) for d, _ in ds],
            [c.mailbox_key if c else None for _, c in ds],
            [c.per_hour if c else None for _, c in ds],
            now,
            now - timedelta(hours=1),
            CAPPED,
            DELIVERIES_CHANNEL,
            [d.subscription_id for d, _ in ds],
            [d.survey_id for d, _ in ds],
        )
        assert row is not None  # an aggregate always answers one row
        if row["given_up"]:
            MAILS_CAPPED.inc(row["given_up"])
        return int(row["inserted"])

    async def fan_out_to_subscribers(
        self,
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
        status = await self.conn.execute(_FAN_OUT_SUBSCRIBERS.format(extra=extra), *args)
        queued = int(status.split()[-1])
        if queued:
            await self.wake_senders()
        return queued

    async def fan_out_to_registrants(
        self, *, tenant: str, cause_event_id: UUID, meeting_id: UUID, template: str, now: datetime
    ) -> int:
        status = await self.conn.execute(
            "with inserted as (insert into deliveries (tenant, cause_event_id, channel, recipient_key, template,"
            " transactional, locale, address, registration_id, meeting_id, personal, next_attempt_at, created_at)"
            " select tenant, $2, 'email', recipient_key, $4, true, locale, address, registration_id, meeting_id,"
            " jsonb_build_object('name', name), $5, $5"
            " from registrations where tenant = $1 and meeting_id = $3 and status in ('confirmed', 'checked_in')"
            " and address is not null"
            " on conflict (cause_event_id, recipient_key, channel) do nothing"
            f" returning id, channel, next_attempt_at, state) {QUEUE}",
            tenant,
            cause_event_id,
            meeting_id,
            template,
            now,
        )
        queued = int(status.split()[-1])
        if queued:
            await self.wake_senders()
        return queued

    async def record_cause(self, event_id: UUID, tenant: str, type_: str, data: dict[str, Any]) -> None:
        await self.conn.execute(
            "insert into causes (event_id, tenant, type, data) values ($1, $2, $3, $4::jsonb) on conflict do nothing",
            event_id,
            tenant,
            type_,
            json.dumps(data, default=str),
        )

    # -- projections --------------------------------------------------------------------------------------

    async def remember_process(self, tenant: str, process_id: UUID) -> None:
        await self.conn.execute(
            "insert into processes (tenant, process_id) values ($1, $2) on conflict do nothing", tenant, process_id
        )

    async def process_known(self, tenant: str, process_id: UUID) -> bool:
        return bool(
            await self.conn.fetchval(
                "select exists (select 1 from processes where tenant = $1 and process_id = $2)", tenant, process_id
            )
        )

    async def upsert_meeting(self, tenant: str, m: dict[str, Any]) -> None:
        await self.conn.execute(
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

    async def cancel_meeting(self, tenant: str, meeting_id: UUID) -> None:
        await self.conn.execute(
            "update meetings set cancelled = true where tenant = $1 and meeting_id = $2", tenant, meeting_id
        )

    async def process_of_meeting(self, tenant: str, meeting_id: UUID) -> UUID | None:
        """The process of a meeting that is not cancelled."""
        value: UUID | None = await self.conn.fetchval(
            "select process_id from meetings where tenant = $1 and meeting_id = $2 and not cancelled",
            tenant,
            meeting_id,
        )
        return value

    async def upsert_survey(
        self, tenant: str, survey_id: UUID, process_id: UUID | None, title: str, closes_at: Any, url: str | None
    ) -> None:
        await self.conn.execute(
            "insert into surveys (tenant, survey_id, process_id, title, closes_at, url)"
            " values ($1, $2, $3, $4, $5, $6) on conflict (survey_id) do update set"
            " process_id = coalesce(excluded.process_id, surveys.process_id), title = excluded.title,"
            " closes_at = excluded.closes_at, url = coalesce(excluded.url, surveys.url)"
            " where surveys.tenant = excluded.tenant",
            tenant,
            survey_id,
            process_id,
            title,
            closes_at,
            url,
        )

    async def process_of_survey(self, tenant: str, survey_id: UUID) -> UUID | None:
        value: UUID | None = await self.conn.fetchval(
            "select process_id from surveys where tenant = $1 and survey_id = $2", tenant, survey_id
        )
        return value

    async def upsert_registration(
        self,
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
    ) -> Any:
        """The projection's row after the change; None if the registration belongs to another tenant."""
        return await self.conn.fetchrow(
            "insert into registrations (tenant, registration_id, meeting_id, status, address, email_sha256,"
            " recipient_key, name, locale) values ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($9, 'de'))"
            " on conflict (registration_id) do update set status = excluded.status,"
            " address = coalesce(excluded.address, registrations.address),"
            " email_sha256 = coalesce(excluded.email_sha256, registrations.email_sha256),"
            " recipient_key = coalesce(excluded.recipient_key, registrations.recipient_key),"
            " name = coalesce(excluded.name, registrations.name),"
            " locale = coalesce($9, registrations.locale)"
            " where registrations.tenant = excluded.tenant returning *",
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

    async def upsert_registrations(self, rows: Sequence[dict[str, Any]]) -> dict[UUID, Any]:
        """``upsert_registration`` for several registrations (each once, each with its contact's locale) in one
        statement: their rows after it, by registration id (none for one of another tenant)."""
        assert all(row.get("locale") for row in rows), "a contact always has a locale"
        columns: tuple[str, ...] = ("tenant", "registration_id", "meeting_id", "status", "address", "email_sha256")
        columns += ("recipient_key",)
        columns += ("name", "locale")
        found = await self.conn.fetch(
            "insert into registrations (tenant, registration_id, meeting_id, status, address, email_sha256,"
            " recipient_key, name, locale)"
            " select t, r, m, st, a, e, k, n, l from unnest($1::text[], $2::uuid[], $3::uuid[],"
            " $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[]) as u(t, r, m, st, a, e, k, n, l)"
            " on conflict (registration_id) do update set status = excluded.status,"
            " address = coalesce(excluded.address, registrations.address),"
            " email_sha256 = coalesce(excluded.email_sha256, registrations.email_sha256),"
            " recipient_key = coalesce(excluded.recipient_key, registrations.recipient_key),"
            " name = coalesce(excluded.name, registrations.name),"
            " locale = excluded.locale"
            " where registrations.tenant = excluded.tenant returning *",
            *[[row.get(c) for row in rows] for c in columns],
        )
        return {r["registration_id"]: r for r in found}

    # -- erasure --------------------------------------------------------------------------------------------

    async def erase_registrations(self, tenant: str, ids: list[UUID]) -> None:
        await self.conn.execute(
            "delete from registrations where tenant = $1 and registration_id = any($2)", tenant, ids
        )
        await self._blank_deliveries("registration_id = any($2)", tenant, ids)

    async def erase_recipient(self, tenant: str, value: str, *, column: str = "email_sha256") -> None:
        """Delete the recipient (its subscriptions with it) found by ``column`` (``email_sha256`` for
        person.erased.v1, ``email_hmac`` for v2) and blank its deliveries."""
        assert column in ("email_sha256", "email_hmac")
        keys = await self.conn.fetch(
            f"select recipient_key from recipients where tenant = $1 and {column} = $2", tenant, value
        )
        await self.conn.execute(f"delete from recipients where tenant = $1 and {column} = $2", tenant, value)
        if keys:
            await self._blank_deliveries("recipient_key = any($2)", tenant, [k["recipient_key"] for k in keys])

    async def _blank_deliveries(self, where: str, tenant: str, values: list[Any]) -> None:
        # What was not sent yet cannot be sent without its address: it is given up (and leaves the send queue, so
        # that a sender's outcome for a mail on the wire meanwhile is not recorded), not left to fail forever.
        # The queue's rows first, then the log's: the order an outcome's statement (``_SETTLE``) locks them in, so
        # that an erasure and the outcome of the same mail wait for each other instead of deadlocking (as they did
        # when the log's rows came first).
        scope = f"tenant = $1 and channel = 'email' and {where}"
        await self.conn.execute(
            f"delete from send_queue where delivery_id in (select id from deliveries where {scope})", tenant, values
        )
        await self.conn.execute(
            "update deliveries set address = null, personal = '{}'::jsonb,"
            " state = case when state in ('queued', 'failed') then 'given_up' else state end,"
            " last_answer = case when state in ('queued', 'failed') then 'erased before sending'"
            f" else last_answer end where {scope}",
            tenant,
            values,
        )

    async def person_records(self, tenant: str, address: str, recipient_key: str) -> dict[str, Any]:
        """Everything this service holds about one e-mail address (GDPR Art. 15): recipient record,
        subscriptions, registrations it keeps for reminders, and the delivery log's mails to it."""
        recipients = await self.conn.fetch(
            "select id, address, locale, preferences, created_at from recipients"
            " where tenant = $1 and (lower(address) = lower($2) or recipient_key = $3) order by created_at",
            tenant,
            address,
            recipient_key,
        )
        subscriptions = await self.conn.fetch(
            "select s.id, s.process_id, s.state, s.created_at, s.confirmed_at from subscriptions s"
            " join recipients r on r.id = s.recipient_id"
            " where s.tenant = $1 and (lower(r.address) = lower($2) or r.recipient_key = $3) order by s.created_at",
            tenant,
            address,
            recipient_key,
        )
        registrations = await self.conn.fetch(
            "select registration_id, meeting_id, status, address, name, locale from registrations"
            " where tenant = $1 and (lower(address) = lower($2) or recipient_key = $3) order by registration_id",
            tenant,
            address,
            recipient_key,
        )
        deliveries = await self.conn.fetch(
            "select id, cause_event_id, template, transactional, locale, address, registration_id, subscription_id,"
            " meeting_id, survey_id, personal, state, attempts, created_at, sent_at from delivery_log"
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

    # -- subscriptions --------------------------------------------------------------------------------------

    async def subscribe(
        self,
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
        recipient_id = await self.conn.fetchval(
            "insert into recipients (id, tenant, address, email_sha256, recipient_key, locale, email_hmac) values"
            " ($1, $2, $3, $4, $5, $6, $7) on conflict (tenant, email_sha256) do update set"
            " address = excluded.address, locale = excluded.locale,"
            " email_hmac = coalesce(excluded.email_hmac, recipients.email_hmac) returning id",
            uuid4(),
            tenant,
            address,
            email_sha256,
            recipient_key,
            locale,
            email_hmac,
        )
        row = await self.conn.fetchrow(
            "select id, state from subscriptions where tenant = $1 and recipient_id = $2 and process_id = $3"
            " for update",
            tenant,
            recipient_id,
            process_id,
        )
        if row is None:
            sid = uuid4()
            await self.conn.execute(
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
            await self.conn.execute("update subscriptions set state = 'pending' where id = $1", row["id"])
            return row["id"], "pending", True
        # Pending already (one opt-in mail per arming, so nobody can mail-bomb an address) or confirmed.
        return row["id"], row["state"], False

    async def subscription_state(self, subscription_id: UUID) -> str | None:
        value: str | None = await self.conn.fetchval("select state from subscriptions where id = $1", subscription_id)
        return value

    async def set_subscription_state(self, subscription_id: UUID, state: str, now: datetime) -> Any:
        return await self.conn.fetchrow(
            "update subscriptions set state = $2,"
            " confirmed_at = case when $2 = 'confirmed' then $3 else confirmed_at end"
            " where id = $1 returning id, tenant, process_id, state",
            subscription_id,
            state,
            now,
        )

    # -- the delivery log ---------------------------------------------------------------------------------

    async def _deliveries_where(self, tenant: str, where: str, value: Any, limit: int = 500) -> list[Any]:
        return list(
            await self.conn.fetch(
                f"select {DELIVERY_COLUMNS} from delivery_log where tenant = $1 and {where}"
                " order by created_at, id limit $3",
                tenant,
                value,
                limit,
            )
        )

    async def deliveries_of_cause(self, tenant: str, event_id: UUID) -> list[Any]:
        return await self._deliveries_where(tenant, "cause_event_id = $2", event_id)

    async def deliveries_to(self, tenant: str, recipient_key: str) -> list[Any]:
        return await self._deliveries_where(tenant, "recipient_key = $2", recipient_key)

    async def deliveries_of_registration(self, tenant: str, registration_id: UUID) -> list[Any]:
        return await self._deliveries_where(tenant, "registration_id = $2", registration_id)

    async def deliveries_of_endpoint(self, tenant: str, endpoint_id: UUID) -> list[Any]:
        return await self._deliveries_where(tenant, "endpoint_id = $2", endpoint_id)

    async def delivery(self, tenant: str, delivery_id: UUID) -> Any:
        return await self.conn.fetchrow(
            f"select {DELIVERY_COLUMNS} from delivery_log where tenant = $1 and id = $2", tenant, delivery_id
        )

    async def requeue(self, tenant: str, delivery_id: UUID, now: datetime) -> Any:
        """Due again at once with a fresh count of attempts (the whole retry schedule again); the last answer
        stays until the new outcome. Only a delivery that is not queued or being sent already."""
        # The queue's row (where there is one) is locked before the log's, the order an outcome's statement
        # locks them in (``_SETTLE``; see ``_blank_deliveries``).
        return await self.conn.fetchrow(
            "with held as (select lease_until from send_queue where delivery_id = $2 for update),"
            " requeued as (update deliveries set state = 'queued', attempts = 0, next_attempt_at = $3,"
            " resends = resends + 1, resent_at = $3"
            " where tenant = $1 and id = $2 and state in ('sent', 'failed', 'given_up')"
            " and not exists (select 1 from held where lease_until is not null)"
            f" returning {DELIVERY_COLUMNS}),"
            # A failed delivery is still in the queue, due later: due now, its attempts counted from zero.
            " queued as (insert into send_queue (delivery_id, channel, due_at) select id, channel, next_attempt_at"
            " from requeued on conflict (delivery_id) do update set due_at = excluded.due_at, attempts = 0)"
            " select * from requeued",
            tenant,
            delivery_id,
            now,
        )

    # -- sending --------------------------------------------------------------------------------------------

    async def claim(
        self, channel: str, now: datetime, lease_until: datetime, limit: int, max_attempts: int = 1_000_000
    ) -> list[Any]:
        """Take due deliveries (and ones whose sender's lease ran out) for sending: a lease in the send queue
        until it ends, the claim counted as an attempt; the log's row is not written. Each kind is found through
        its own partial index in its order, taken-over leases first: one condition with OR made PostgreSQL sort
        every due row for each claim (8.6 ms at 10,000 queued mails)."""
        return list(await self.conn.fetch(_claim(), channel, now, lease_until, limit, max_attempts))

    async def claim_mails(
        self, now: datetime, lease_until: datetime, limit: int, max_attempts: int
    ) -> tuple[list[Any], dict[str, dict[Any, Any]]]:
        """``claim`` of mails, with the meetings, surveys and causes they refer to (``lookups``) read in the same
        statement: a sender that claims one mail at a time (a steady trickle of registrations) made two more
        round trips for them per claim."""
        rows = await self.conn.fetch(
            _claim(
                ", m as meeting, v as survey, c.data as cause",
                " left join meetings m on m.meeting_id = d.meeting_id and m.tenant = d.tenant"
                " left join surveys v on v.survey_id = d.survey_id and v.tenant = d.tenant"
                " left join causes c on c.event_id = d.cause_event_id",
            ),
            "email",
            now,
            lease_until,
            limit,
            max_attempts,
        )
        lookups: dict[str, dict[Any, Any]] = {"meetings": {}, "surveys": {}, "causes": {}}
        for r in rows:
            if r["meeting"] is not None:
                lookups["meetings"][(r["tenant"], r["meeting_id"])] = r["meeting"]
            if r["survey"] is not None:
                lookups["surveys"][(r["tenant"], r["survey_id"])] = r["survey"]
            # A fan-out's batch carries one cause a hundred times: decoded once.
            if r["cause"] is not None and r["cause_event_id"] not in lookups["causes"]:
                lookups["causes"][r["cause_event_id"]] = json.loads(r["cause"])
        return list(rows), lookups

    async def abandon_unknown(self, now: datetime, max_attempts: int) -> list[Any]:
        """Mails whose lease ran out on the last allowed attempt: given up, their outcome unknown."""
        return list(
            await self.conn.fetch(
                "with gone as (delete from send_queue where delivery_id in (select delivery_id from send_queue"
                " where channel = 'email' and lease_until is not null and lease_until < $1 and attempts >= $2"
                " for update skip locked) returning delivery_id, attempts)"
                " update deliveries d set state = 'given_up', attempts = g.attempts,"
                " last_answer = 'outcome unknown: the sender stopped during the last attempt'"
                " from gone g where d.id = g.delivery_id"
                " returning d.id, d.tenant, d.cause_event_id, d.template",
                now,
                max_attempts,
            )
        )

    async def release(self, ids: list[UUID], lease_until: datetime) -> None:
        """Rows claimed and not sent: due again at once, the claim's attempt not counted."""
        await self.conn.execute(
            "update send_queue set attempts = attempts - 1, lease_until = null"
            " where delivery_id = any($1) and lease_until = $2",
            ids,
            lease_until,
        )

    async def record_mail_outcomes(
        self, updates: list[tuple[Any, ...]], events: list[tuple[Any, ...]], channel: str
    ) -> None:
        """``updates``: (id, state, next attempt, answer, sent at, lease) per delivery; ``events``: (delivery id,
        event id, tenant, stream, type, envelope JSON), written only for rows still under that lease."""
        await self.conn.execute(
            _RECORD_MAILS,
            *[list(column) for column in zip(*updates, strict=True)],
            *[list(column) for column in zip(*events, strict=True)],
            channel,
        )

    # -- webhooks -----------------------------------------------------------------------------------------

    async def enabled_endpoints(self, tenant: str) -> list[Any]:
        return list(
            await self.conn.fetch("select id, event_types from webhook_endpoints where tenant = $1 and enabled", tenant)
        )

    async def queue_webhooks(
        self, tenant: str, cause_event_id: UUID, type_: str, body: dict[str, Any], endpoint_ids: list[UUID], now: Any
    ) -> None:
        await self.conn.executemany(
            "with inserted as (insert into deliveries (tenant, cause_event_id, channel, recipient_key, template,"
            " transactional, endpoint_id, body, next_attempt_at, created_at)"
            " values ($1, $2, 'webhook', $3, $4, true, $5, $6, $7, $7)"
            " on conflict (cause_event_id, recipient_key, channel) do nothing"
            f" returning id, channel, next_attempt_at, state) {QUEUE}",
            [(tenant, cause_event_id, f"endpoint:{eid}", type_, eid, _json(body), now) for eid in endpoint_ids],
        )

    async def endpoints(self, ids: list[UUID]) -> dict[UUID, Any]:
        rows = await self.conn.fetch("select * from webhook_endpoints where id = any($1)", ids)
        return {e["id"]: e for e in rows}

    async def record_webhook_outcomes(self, updates: list[tuple[Any, ...]], disable: list[UUID]) -> None:
        """``updates``: (id, state, next attempt, answer, sent at, lease) per delivery, as for mails; ``disable``:
        endpoints that are gone (410)."""
        await self.conn.execute(
            _SETTLE + "select count(*) from recorded", *[list(column) for column in zip(*updates, strict=True)]
        )
        if disable:
            await self.conn.execute(
                "update webhook_endpoints set enabled = false, disabled_reason = '410 Gone' where id = any($1)",
                list(set(disable)),
            )

    async def create_endpoint(
        self, tenant: str, url: str, event_types: list[str], secret: str, description: str | None, now: datetime
    ) -> Any:
        return await self.conn.fetchrow(
            "insert into webhook_endpoints (id, tenant, url, event_types, secret, description, created_at)"
            " values ($1, $2, $3, $4, $5, $6, $7) returning *",
            uuid4(),
            tenant,
            url,
            event_types,
            secret,
            description,
            now,
        )

    async def list_endpoints(self, tenant: str) -> list[Any]:
        return list(
            await self.conn.fetch("select * from webhook_endpoints where tenant = $1 order by created_at", tenant)
        )

    async def delete_endpoint(self, tenant: str, endpoint_id: UUID) -> bool:
        status = await self.conn.execute(
            "delete from webhook_endpoints where tenant = $1 and id = $2", tenant, endpoint_id
        )
        return not status.endswith(" 0")
