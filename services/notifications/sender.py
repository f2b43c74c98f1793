"""The mail sender: workers that claim a few due deliveries at a time, send them one by one and record each
outcome with its event as soon as the SMTP server has answered.

Delivery guarantee (the trade-off chosen): a claimed row is marked ``sending`` with a lease *before* SMTP and
committed; right after the server's answer to that one mail, its outcome and the NotificationSent/Failed
event are committed (outcomes of workers that finish at the same moment share one transaction), and only then
does the worker put its next mail on the wire. If the process dies, the only rows whose mail may have been
accepted without the outcome being recorded are the ones on the wire at that moment, at most one per SMTP
connection; their lease runs out and they are sent again (**at least once**), with the same ``Message-ID`` so
mail clients can fold the copy, bounded by ``email_max_attempts`` (each claim counts as an attempt). Rows
claimed but not yet sent wait for the lease and then go out once. We prefer this to at-most-once because the
messages that matter most (a ticket, a cancelled meeting) must not be lost silently.

A failure of one delivery (a refused or undeliverable address, a template error, an unexpected exception) is
that delivery's outcome and nobody else's: the worker records it and carries on with the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from datetime import datetime, timedelta
from email.message import Message
from typing import Any
from uuid import UUID

from prometheus_client import Counter, Histogram

from services.notifications import domain, repository
from services.notifications.domain import Answer
from services.notifications.rendering import (
    RECIPIENT_SLOT,
    UNSUBSCRIBE_SLOT,
    Attachments,
    Prototype,
    Templates,
    build_email,
    meeting_ics,
    qr_png,
    to_bytes,
)
from services.notifications.settings import NotificationSettings
from services.notifications.smtp import SmtpPool
from shared.bus.backoff import Backoff
from shared.bus.errors import TRANSIENT
from shared.bus.outbox import Pending, notify_channel
from shared.bus.wakeup import Wakeup
from shared.contracts.envelope import Payload
from shared.contracts.notifications import NotificationFailedV1, NotificationSentV1
from shared.contracts.registry import REGISTRY
from shared.links import link
from shared.service import ServiceContext

log = logging.getLogger(__name__)

# Metrics (Prometheus): attempts by how they ended, and the time a batch spends with the SMTP server.
MAILS = Counter("civic_mail_attempts_total", "Mail sending attempts, by outcome (sent, retry, failed)", ["outcome"])
MAIL_BATCH_SECONDS = Histogram("civic_mail_batch_seconds", "Time to send one claimed batch of mails over SMTP")

NEEDS_MEETING = {
    "confirmed",
    "promoted",
    "waitlisted",
    "cancelled_citizen",
    "cancelled_staff",
    "cancelled_meeting",
    "checked_in",
    "reminder_registration_closes",
    "reminder_meeting_starts",
}
WITH_TICKET = {"confirmed", "promoted"}


def _personal(row: Any) -> dict[str, Any]:
    return json.loads(row["personal"]) if isinstance(row["personal"], str) else dict(row["personal"] or {})


def _fanout_key(row: Any, personal: dict[str, Any]) -> tuple[Any, ...] | None:
    """Mails alike but for recipient and unsubscribe link (one cause, locale and template, nothing personal)
    share a key; ``None`` for any other mail."""
    if personal or row["transactional"] or not row["subscription_id"]:
        return None
    return (row["tenant"], row["locale"], row["template"], row["cause_event_id"], row["meeting_id"], row["survey_id"])


class NotReady(Exception):
    """The delivery cannot be rendered yet (its meeting has not arrived): a temporary failure."""


def unsubscribe_url(settings: NotificationSettings, subscription_id: UUID) -> str:
    token = domain.sign_token(settings.signing_secret, "unsubscribe", str(subscription_id))
    return link(settings.links, settings.public_base_url, "unsubscribe", token=token)


def confirm_url(settings: NotificationSettings, subscription_id: UUID) -> str:
    token = domain.sign_token(settings.signing_secret, "confirm", str(subscription_id))
    return link(settings.links, settings.public_base_url, "subscription_confirm", token=token)


def venue_text(venue: Any) -> str | None:
    if not venue:
        return None
    v = json.loads(venue) if isinstance(venue, str) else venue
    place = " ".join(x for x in (v.get("postal_code"), v.get("city")) if x)
    return ", ".join(x for x in (v.get("name"), v.get("street"), place) if x)


class Recorder:
    """Records outcomes for the mail workers of a process: each worker waits until its own outcome is
    committed, and outcomes that arrive while a commit is in flight go together in the next (a group commit)."""

    def __init__(self, ctx: ServiceContext, settings: NotificationSettings) -> None:
        self.ctx = ctx
        self.settings = settings
        self._waiting: list[tuple[tuple[Any, datetime, Answer], asyncio.Future[None]]] = []
        self._lock = asyncio.Lock()

    async def record(self, row: Any, lease_until: datetime, answer: Answer) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(((row, lease_until, answer), done))
        async with self._lock:
            if not done.done():
                batch, self._waiting = self._waiting, []
                try:
                    await self._commit([item for item, _ in batch])
                except BaseException as exc:
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    raise
                for _, fut in batch:
                    if not fut.done():
                        fut.set_result(None)
        await done

    async def _commit(self, items: list[tuple[Any, datetime, Answer]]) -> None:
        """One statement (one round trip, atomic on its own): the outcomes, the events of the rows still under
        their worker's lease (one whose lease ran out may have been taken over), and the relay's wake-up."""
        s, now, outbox = self.settings, self.ctx.clock.now(), self.ctx.outbox
        updates: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        for row, lease_until, a in items:
            common = {
                "delivery_id": row["id"],
                "cause_event_id": row["cause_event_id"],
                "channel": "email",
                "template": row["template"],
            }
            payload: Payload
            if a.ok:
                updates.append((row["id"], "sent", None, a.text, now, lease_until))
                payload = NotificationSentV1(**common)
            else:
                give_up = a.permanent or row["attempts"] >= s.email_max_attempts
                delay = domain.email_retry_delay(
                    row["attempts"], s.email_retry_initial_seconds, s.email_retry_max_seconds
                )
                state = "given_up" if give_up else "failed"
                updates.append((row["id"], state, now + timedelta(seconds=delay), a.text, None, lease_until))
                payload = NotificationFailedV1(**common, permanent=give_up, reason=a.text)
            env = outbox.envelope(payload, tenant=row["tenant"], subject=None)
            events.append(
                (row["id"], env.id, env.tenant, REGISTRY.get(env.type).stream, env.type, env.model_dump_json())
            )
        async with self.ctx.pool.acquire() as conn:
            await conn.execute(
                _RECORD,
                *[list(column) for column in zip(*updates, strict=True)],
                *[list(column) for column in zip(*events, strict=True)],
                notify_channel(outbox.service),
            )


_RECORD = """
with recorded as (
    update deliveries d set state = u.state, next_attempt_at = coalesce(u.next_at, d.next_attempt_at),
           last_answer = u.answer, sent_at = u.sent_at, lease_until = null
    from unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::timestamptz[], $6::timestamptz[])
         as u(id, state, next_at, answer, sent_at, lease)
    where d.id = u.id and d.state = 'sending' and d.lease_until = u.lease
    returning d.id
), published as (
    insert into outbox (id, tenant, stream, type, subject, envelope)
    select e.id, e.tenant, e.stream, e.type, null, e.envelope
    from unnest($7::uuid[], $8::uuid[], $9::text[], $10::text[], $11::text[], $12::text[])
         as e(delivery_id, id, tenant, stream, type, envelope)
    join recorded r on r.id = e.delivery_id
    returning 1
)
select (select count(*) from published), pg_notify($13, '')
"""


class EmailSender:
    """One mail worker, using one connection of the SMTP pool at a time; a process runs one per connection."""

    def __init__(
        self,
        ctx: ServiceContext,
        settings: NotificationSettings,
        templates: Templates,
        smtp: SmtpPool | None = None,
        *,
        recorder: Recorder | None = None,
        prototypes: dict[tuple[Any, ...], Prototype] | None = None,
        wakeup: Wakeup | None = None,
    ) -> None:
        self.ctx = ctx
        self.settings = settings
        self.templates = templates
        self.smtp = smtp or SmtpPool(settings)
        self.recorder = recorder or Recorder(ctx, settings)
        self._prototypes: dict[tuple[Any, ...], Prototype] = {} if prototypes is None else prototypes
        self._stop = asyncio.Event()
        #: Woken by the NOTIFY of newly queued deliveries; without it (or between notifications) the poll.
        self.wakeup = wakeup

    async def run(self, stop: asyncio.Event) -> None:
        self._stop = stop
        backoff = Backoff()
        try:
            while not stop.is_set():
                seen = self.wakeup.generation() if self.wakeup else 0
                try:
                    sent = await self.send_due()
                    backoff.reset()
                except TRANSIENT as exc:
                    log.warning("mail sender waiting for the database", extra={"error": repr(exc)})
                    await backoff.wait(stop)
                    continue
                if sent == 0:
                    if self.wakeup is not None:
                        await self.wakeup.wait(seen, self.settings.sender_poll_seconds, stop)
                        continue
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.settings.sender_poll_seconds)
        finally:
            await self.smtp.close()

    async def send_due(self) -> int:
        """Claim a few deliveries and send them one after another, each outcome recorded before the next mail
        goes out; returns the number of deliveries handled."""
        s, now = self.settings, self.ctx.clock.now()
        lease_until = now + timedelta(seconds=s.lease_seconds)
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            await self._abandon_unknown(conn, now)
            rows = await repository.claim(conn, "email", now, lease_until, s.sender_batch_size, s.email_max_attempts)
        if not rows:
            return 0
        lookups = await self._lookups(rows)
        # A mail started this close to the lease's end might still be on the wire when another sender takes
        # the row over: what is left then goes back to the queue instead.
        margin = timedelta(seconds=min(2 * s.smtp_timeout_seconds, s.lease_seconds / 2))
        recording: asyncio.Task[None] | None = None
        sending = time.perf_counter()
        try:
            for i, row in enumerate(rows):
                if self._stop.is_set() or self.ctx.clock.now() + margin >= lease_until:
                    await self._release(rows[i:], lease_until)
                    return i
                # The next mail is rendered while the last outcome commits, and goes on the wire only after.
                prepared = self._prepare(row, lookups)
                if recording is not None:
                    await recording
                answer = await self._transmit(row, prepared)
                MAILS.labels("sent" if answer.ok else "failed" if answer.permanent else "retry").inc()
                recording = asyncio.create_task(self.recorder.record(row, lease_until, answer))
        finally:
            if recording is not None:
                await recording
            MAIL_BATCH_SECONDS.observe(time.perf_counter() - sending)
        return len(rows)

    async def _release(self, rows: list[Any], lease_until: datetime) -> None:
        """Rows claimed and not sent: due again at once, the claim's attempt not counted."""
        async with self.ctx.pool.acquire() as conn:
            await conn.execute(
                "update deliveries set state = case when attempts > 1 then 'failed' else 'queued' end,"
                " attempts = attempts - 1, lease_until = null"
                " where id = any($1) and state = 'sending' and lease_until = $2",
                [r["id"] for r in rows],
                lease_until,
            )

    async def _abandon_unknown(self, conn: Any, now: datetime) -> None:
        """A lease that ran out on the last allowed attempt: the outcome is unknown, and it is not tried again
        (this is what bounds resends after crashes)."""
        rows = await conn.fetch(
            "update deliveries set state = 'given_up', lease_until = null,"
            " last_answer = 'outcome unknown: the sender stopped during the last attempt'"
            " where id in (select id from deliveries where channel = 'email' and state = 'sending'"
            " and lease_until < $1 and attempts >= $2 for update skip locked)"
            " returning id, tenant, cause_event_id, template",
            now,
            self.settings.email_max_attempts,
        )
        if rows:
            await self.ctx.outbox.write(
                conn,
                [
                    Pending(
                        NotificationFailedV1(
                            delivery_id=r["id"],
                            cause_event_id=r["cause_event_id"],
                            channel="email",
                            template=r["template"],
                            permanent=True,
                            reason="outcome unknown after the last attempt",
                        ),
                        r["tenant"],
                    )
                    for r in rows
                ],
            )

    async def _lookups(self, rows: list[Any]) -> dict[str, dict[Any, Any]]:
        meeting_ids = list({r["meeting_id"] for r in rows if r["meeting_id"]})
        survey_ids = list({r["survey_id"] for r in rows if r["survey_id"]})
        cause_ids = list({r["cause_event_id"] for r in rows})
        async with self.ctx.pool.acquire() as conn:
            meetings = await conn.fetch("select * from meetings where meeting_id = any($1)", meeting_ids)
            surveys = await conn.fetch("select * from surveys where survey_id = any($1)", survey_ids)
            causes = await conn.fetch("select event_id, data from causes where event_id = any($1)", cause_ids)
        return {
            "meetings": {(m["tenant"], m["meeting_id"]): m for m in meetings},
            "surveys": {(v["tenant"], v["survey_id"]): v for v in surveys},
            "causes": {c["event_id"]: json.loads(c["data"]) for c in causes},
        }

    def _context(self, row: Any, lookups: dict[str, dict[Any, Any]], personal: dict[str, Any]) -> dict[str, Any]:
        """What the templates see, without the recipient's links; NotReady while the meeting or survey is unknown."""
        tenant, locale, template = row["tenant"], row["locale"], row["template"]
        cause = lookups["causes"].get(row["cause_event_id"], {})
        context: dict[str, Any] = {
            "tenant": tenant,
            "name": "",
            "companions": 0,
            "manage_url": None,
            "reason": cause.get("reason"),
            "news": cause.get("news") or {},
            "unsubscribe_url": None,
            "qr_cid": None,
            **personal,
        }
        tz = "Europe/Berlin"
        meeting = lookups["meetings"].get((tenant, row["meeting_id"])) if row["meeting_id"] else None
        if template in NEEDS_MEETING and meeting is None:
            raise NotReady("meeting not known yet")
        if meeting is not None:
            tz = meeting["timezone"]
            context["meeting"] = {
                "title": meeting["title"],
                "when": domain.when(meeting["starts_at"], meeting["ends_at"], tz, locale),
                "venue": venue_text(meeting["venue"]),
                "url": meeting["url"],
            }
        survey = lookups["surveys"].get((tenant, row["survey_id"])) if row["survey_id"] else None
        if template == "reminder_survey_closes":
            if survey is None:
                raise NotReady("survey not known yet")
            context["survey"] = {"title": survey["title"], "url": survey["url"]}
        if cause.get("due_at"):
            context["deadline"] = domain.day(datetime.fromisoformat(cause["due_at"]), tz, locale)
        return context

    def _message_id(self, row: Any) -> str:
        # Stable per delivery: a resend after a crash carries the same id, so mail clients can fold duplicates.
        return f"<{row['id']}@{self.settings.from_address.partition('@')[2] or 'civic'}>"

    def compose(
        self, row: Any, lookups: dict[str, dict[Any, Any]], personal: dict[str, Any], to: str | None = None
    ) -> Message:
        """The mail of one delivery, built through the ``email`` package."""
        s = self.settings
        context = self._context(row, lookups, personal)
        meeting = lookups["meetings"].get((row["tenant"], row["meeting_id"])) if row["meeting_id"] else None
        unsubscribe = None
        if not row["transactional"] and row["subscription_id"]:
            unsubscribe = unsubscribe_url(s, row["subscription_id"])
            context["unsubscribe_url"] = unsubscribe
        if row["template"] == "subscription_confirm" and row["subscription_id"]:
            context["confirm_url"] = confirm_url(s, row["subscription_id"])
        attachments = None
        if row["template"] in WITH_TICKET and personal.get("ticket_code") and meeting is not None:
            context["qr_cid"] = f"ticket-{row['id']}@civic"
            attachments = Attachments(
                qr=qr_png(personal["ticket_code"]),
                qr_cid=context["qr_cid"],
                ics=meeting_ics(
                    uid=f"{row['registration_id'] or row['id']}@civic",
                    title=meeting["title"],
                    starts_at=meeting["starts_at"],
                    ends_at=meeting["ends_at"],
                    location=venue_text(meeting["venue"]),
                    url=meeting["url"],
                    stamp=self.ctx.clock.now(),
                ),
            )
        rendered = self.templates.render(row["tenant"], row["locale"], row["template"], context)
        return build_email(
            rendered,
            to=to or row["address"],
            from_address=s.from_address,
            from_name=s.from_name,
            message_id=self._message_id(row),
            date=self.ctx.clock.now(),
            attachments=attachments,
            unsubscribe_url=unsubscribe,
        )

    def wire(self, row: Any, lookups: dict[str, dict[Any, Any]], to: str | None = None) -> bytes:
        """The mail as it goes over SMTP to ``to`` (the row's address written for the wire); a fan-out mail is
        filled in from its cause's prototype."""
        to = to or row["address"]
        personal = _personal(row)
        key = _fanout_key(row, personal)
        if key is None:
            if to.isascii():
                return to_bytes(self.compose(row, lookups, personal, to))
            # An SMTPUTF8 mail carries the address in UTF-8 as it stands (RFC 6532), not as an encoded word.
            return to_bytes(self.compose(row, lookups, personal, RECIPIENT_SLOT)).replace(
                RECIPIENT_SLOT.encode(), to.encode(), 1
            )
        proto = self._prototypes.get(key)
        if proto is None:
            context = self._context(row, lookups, {}) | {"unsubscribe_url": UNSUBSCRIBE_SLOT}
            rendered = self.templates.render(row["tenant"], row["locale"], row["template"], context)
            proto = Prototype.of(rendered, from_address=self.settings.from_address, from_name=self.settings.from_name)
            if len(self._prototypes) > 1000:
                self._prototypes.clear()
            self._prototypes[key] = proto
        return proto.fill(
            to=to,
            message_id=self._message_id(row),
            date=self.ctx.clock.now(),
            unsubscribe_url=unsubscribe_url(self.settings, row["subscription_id"]),
        )

    async def _send(self, row: Any, lookups: dict[str, dict[Any, Any]]) -> Answer:
        """One delivery's attempt; whatever goes wrong is this delivery's answer, never the batch's."""
        return await self._transmit(row, self._prepare(row, lookups))

    def _prepare(self, row: Any, lookups: dict[str, dict[Any, Any]]) -> Answer | tuple[domain.WireAddress, bytes]:
        """The envelope address and the bytes of a delivery's mail, or the answer that it cannot be sent."""
        if not row["address"]:
            return Answer(False, True, "no address (erased)")
        try:
            to = domain.wire_address(row["address"])
        except domain.Undeliverable as exc:
            return Answer(False, True, f"undeliverable address: {exc}")
        try:
            return to, self.wire(row, lookups, to.address)
        except NotReady as exc:
            return Answer(False, False, str(exc))
        except Exception as exc:  # a template error must not stop the batch
            log.exception("rendering failed", extra={"delivery_id": str(row["id"])})
            return Answer(False, True, f"rendering failed: {type(exc).__name__}")

    async def _transmit(self, row: Any, prepared: Answer | tuple[domain.WireAddress, bytes]) -> Answer:
        if isinstance(prepared, Answer):
            return prepared
        to, data = prepared
        try:
            return await self.smtp.send(data, self.settings.from_address, to.address, utf8=to.utf8)
        except Exception as exc:  # anything the SMTP client did not expect: retried, as its cause may pass
            log.exception("sending failed unexpectedly", extra={"delivery_id": str(row["id"])})
            return Answer(False, False, f"sending failed: {type(exc).__name__}")
