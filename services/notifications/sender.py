"""The mail sender: claims due deliveries, renders and sends them, records the outcome and its event.

Delivery guarantee (the trade-off chosen): a claimed row is marked ``sending`` with a lease *before* SMTP and
committed; after SMTP the outcome and the NotificationSent/Failed event are committed together. If the process
dies between the server's "250 OK" and that commit, the lease runs out and the row is sent again: **at least
once**, with a duplicate only in that narrow window, bounded by ``email_max_attempts`` (each claim counts as an
attempt) and carrying the same ``Message-ID`` so mail clients can fold it. We prefer this to at-most-once
because the messages that matter most (a ticket, a cancelled meeting) must not be lost silently.
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
from shared.contracts.envelope import Payload
from shared.contracts.notifications import NotificationFailedV1, NotificationSentV1
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
    return f"{settings.public_base_url}/api/notifications/unsubscribe?token={token}"


def confirm_url(settings: NotificationSettings, subscription_id: UUID) -> str:
    token = domain.sign_token(settings.signing_secret, "confirm", str(subscription_id))
    return f"{settings.public_base_url}/api/notifications/subscriptions/confirm?token={token}"


def venue_text(venue: Any) -> str | None:
    if not venue:
        return None
    v = json.loads(venue) if isinstance(venue, str) else venue
    place = " ".join(x for x in (v.get("postal_code"), v.get("city")) if x)
    return ", ".join(x for x in (v.get("name"), v.get("street"), place) if x)


class EmailSender:
    def __init__(
        self, ctx: ServiceContext, settings: NotificationSettings, templates: Templates, smtp: SmtpPool | None = None
    ) -> None:
        self.ctx = ctx
        self.settings = settings
        self.templates = templates
        self.smtp = smtp or SmtpPool(settings)
        self._prototypes: dict[tuple[Any, ...], Prototype] = {}

    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff()
        try:
            while not stop.is_set():
                try:
                    sent = await self.send_due()
                    backoff.reset()
                except TRANSIENT as exc:
                    log.warning("mail sender waiting for the database", extra={"error": repr(exc)})
                    await backoff.wait(stop)
                    continue
                if sent == 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.settings.sender_poll_seconds)
        finally:
            await self.smtp.close()

    async def send_due(self) -> int:
        """Claim one batch, send it, record the outcomes; returns the number of deliveries handled."""
        s, now = self.settings, self.ctx.clock.now()
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            await self._abandon_unknown(conn, now)
            rows = await repository.claim(
                conn,
                "email",
                now,
                now + timedelta(seconds=s.lease_seconds),
                s.sender_batch_size,
                s.email_max_attempts,
            )
        if not rows:
            return 0
        lookups = await self._lookups(rows)
        sending = time.perf_counter()
        answers = await self._send_all(rows, lookups)
        MAIL_BATCH_SECONDS.observe(time.perf_counter() - sending)
        await self._record(rows, answers)
        for answer in answers:
            MAILS.labels("sent" if answer.ok else "failed" if answer.permanent else "retry").inc()
        return len(rows)

    async def _send_all(self, rows: list[Any], lookups: dict[str, dict[Any, Any]]) -> list[Answer]:
        """One worker per SMTP connection, each rendering its next mail while the others' are on the wire."""
        answers: list[Answer | None] = [None] * len(rows)
        todo = iter(range(len(rows)))

        async def worker() -> None:
            for i in todo:
                answers[i] = await self._send(rows[i], lookups)

        await asyncio.gather(*(worker() for _ in range(max(1, self.settings.smtp_pool_size))))
        return [a if a is not None else Answer(False, False, "not attempted") for a in answers]

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
            await self.ctx.outbox.record_many(
                conn,
                [
                    (
                        NotificationFailedV1(
                            delivery_id=r["id"],
                            cause_event_id=r["cause_event_id"],
                            channel="email",
                            template=r["template"],
                            permanent=True,
                            reason="outcome unknown after the last attempt",
                        ),
                        r["tenant"],
                        None,
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

    def compose(self, row: Any, lookups: dict[str, dict[Any, Any]], personal: dict[str, Any]) -> Message:
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
            to=row["address"],
            from_address=s.from_address,
            from_name=s.from_name,
            message_id=self._message_id(row),
            date=self.ctx.clock.now(),
            attachments=attachments,
            unsubscribe_url=unsubscribe,
        )

    def wire(self, row: Any, lookups: dict[str, dict[Any, Any]]) -> bytes:
        """The mail as it goes over SMTP; a fan-out mail is filled in from its cause's prototype."""
        personal = _personal(row)
        key = _fanout_key(row, personal)
        if key is None:
            return to_bytes(self.compose(row, lookups, personal))
        proto = self._prototypes.get(key)
        if proto is None:
            context = self._context(row, lookups, {}) | {"unsubscribe_url": UNSUBSCRIBE_SLOT}
            rendered = self.templates.render(row["tenant"], row["locale"], row["template"], context)
            proto = Prototype.of(rendered, from_address=self.settings.from_address, from_name=self.settings.from_name)
            if len(self._prototypes) > 1000:
                self._prototypes.clear()
            self._prototypes[key] = proto
        return proto.fill(
            to=row["address"],
            message_id=self._message_id(row),
            date=self.ctx.clock.now(),
            unsubscribe_url=unsubscribe_url(self.settings, row["subscription_id"]),
        )

    async def _send(self, row: Any, lookups: dict[str, dict[Any, Any]]) -> Answer:
        if not row["address"]:
            return Answer(False, True, "no address (erased)")
        if any(c in row["address"] for c in "\r\n<>,") or "@" not in row["address"]:
            return Answer(False, True, "not a mail address")
        try:
            data = self.wire(row, lookups)
        except NotReady as exc:
            return Answer(False, False, str(exc))
        except Exception as exc:  # a template error must not stop the batch
            log.exception("rendering failed", extra={"delivery_id": str(row["id"])})
            return Answer(False, True, f"rendering failed: {type(exc).__name__}")
        return await self.smtp.send(data, self.settings.from_address, row["address"])

    async def _record(self, rows: list[Any], answers: list[Answer]) -> None:
        s, now = self.settings, self.ctx.clock.now()
        updates: list[tuple[Any, ...]] = []
        events: list[tuple[Payload, str, str | None]] = []
        for row, a in zip(rows, answers, strict=True):
            common = {
                "delivery_id": row["id"],
                "cause_event_id": row["cause_event_id"],
                "channel": "email",
                "template": row["template"],
            }
            if a.ok:
                updates.append((row["id"], "sent", now, a.text, now))
                events.append((NotificationSentV1(**common), row["tenant"], None))
                continue
            give_up = a.permanent or row["attempts"] >= s.email_max_attempts
            delay = domain.email_retry_delay(row["attempts"], s.email_retry_initial_seconds, s.email_retry_max_seconds)
            state = "given_up" if give_up else "failed"
            updates.append((row["id"], state, now + timedelta(seconds=delay), a.text, None))
            events.append((NotificationFailedV1(**common, permanent=give_up, reason=a.text), row["tenant"], None))
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "update deliveries set state = $2, next_attempt_at = $3, last_answer = $4, sent_at = $5,"
                " lease_until = null where id = $1 and state = 'sending'",
                updates,
            )
            await self.ctx.outbox.record_many(conn, events)
