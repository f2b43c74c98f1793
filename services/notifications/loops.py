"""The senders: mail workers that claim a few due deliveries at a time, send them one by one and record each
outcome with its event as soon as the SMTP server has answered; the webhook sender; the wake-up on new
deliveries. ``loops(ctx)`` is what the service runs in the background.

Delivery guarantee (the trade-off chosen): a claimed row gets a lease in the send queue (it is ``sending``)
*before* SMTP, committed; right after the server's answer to that one mail, its outcome and the NotificationSent/Failed
event are committed (the outcomes of a process's workers share one statement: a commit waits a few
milliseconds for the answers to the other mails already on the wire, see ``Recorder``), and only then does the
worker put the mail ``unrecorded_mails_per_connection`` (2) after it on the wire: the next one goes while it
commits. If the process dies, the only rows whose mail may have been accepted without the outcome being
recorded are the ones out at that moment, at most ``unrecorded_mails_per_connection`` per SMTP connection;
their lease runs out and they are sent again (**at least once**), with the same ``Message-ID`` so
mail clients can fold the copy, bounded by ``email_max_attempts`` (each claim counts as an attempt). Rows
claimed but not yet sent wait for the lease and then go out once. We prefer this to at-most-once because the
messages that matter most (a ticket, a cancelled meeting) must not be lost silently.

A failure of one delivery (a refused or undeliverable address, a template error, an unexpected exception) is
that delivery's outcome and nobody else's: the worker records it and carries on with the next.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import httpx
from prometheus_client import Counter, Histogram

from services.notifications import domain
from services.notifications.domain import Answer
from services.notifications.mails import Lookups, Mails, NotReady
from services.notifications.settings import NotificationSettings, settings_of
from services.notifications.smtp import Opened, SmtpPool, wire_size
from services.notifications.store import DELIVERIES_CHANNEL, Store
from services.notifications.webhooks import BlockedTarget, GuardedTransport
from shared.bus.backoff import Backoff
from shared.bus.outbox import Pending, notify_channel
from shared.bus.wakeup import Turns, Wakeup
from shared.contracts.envelope import Payload
from shared.contracts.notifications import NotificationFailedV1, NotificationSentV1
from shared.contracts.registry import REGISTRY
from shared.loops import Loop, repeat
from shared.service import ServiceContext
from shared.unit_of_work import UnitsOfWork

log = logging.getLogger(__name__)

# Metrics (Prometheus): attempts by how they ended, and the time a batch spends with the SMTP server.
MAILS = Counter("civic_mail_attempts_total", "Mail sending attempts, by outcome (sent, retry, failed)", ["outcome"])
#: How often a mail worker looks for mails whose last attempt ran out of its lease (see ``MailWorker._claim``).
ABANDON_CHECK_SECONDS = 5.0
MAIL_BATCH_SECONDS = Histogram("civic_mail_batch_seconds", "Time to send one claimed batch of mails over SMTP")


def loops(ctx: ServiceContext) -> list[Loop]:
    """One mail worker per SMTP connection, sharing the pool, the recorder (group commits) and the mails
    (templates, prototypes); the webhook sender; one LISTEN connection per process that wakes one idle mail
    worker when deliveries are queued (``Turns``: a worker that claims a full batch wakes the next). The
    webhook sender comes last."""
    s = settings_of(ctx)
    uows = ctx.uows(Store)
    smtp, recorder, mails = SmtpPool(s), Recorder(ctx, s), Mails(s, ctx.clock)
    size = max(1, s.smtp_pool_size)
    turns = Turns(keep=size)
    wakeup = Wakeup(ctx.settings.database_url, DELIVERIES_CHANNEL, on_notify=turns.received)
    workers = [MailWorker(ctx, s, mails, smtp, recorder, turns) for _ in range(size)]

    def mail_loop(worker: MailWorker) -> Loop:
        async def run(stop: asyncio.Event) -> None:
            worker.stop = stop
            try:
                await repeat(
                    "mail worker",
                    worker.send_due,
                    stop,
                    interval=s.sender_poll_seconds,
                    wakeup=turns,
                    backoff=Backoff(),
                    again=lambda sent: bool(sent),
                )
            finally:
                await smtp.close()

        return run

    async def webhook_loop(stop: asyncio.Event) -> None:
        sender = WebhookSender(ctx, s, uows)
        try:
            await repeat(
                "webhook sender",
                sender.send_due,
                stop,
                interval=s.sender_poll_seconds,
                backoff=Backoff(),
                again=lambda sent: bool(sent),
            )
        finally:
            await sender.client.aclose()

    return [wakeup.run, *(mail_loop(w) for w in workers), webhook_loop]


# -- mail ---------------------------------------------------------------------------------------------------


class _Waiting(NamedTuple):
    """An outcome waiting for the recorder's next commit: what to write, the future its worker waits on, and
    the worker (its other outcomes in the same commit decide whether the commit waits for its next mail)."""

    item: tuple[Any, datetime, Answer]
    done: asyncio.Future[None]
    worker: object


class Recorder:
    """Records outcomes for the mail workers of a process: each worker waits until its own outcome is
    committed, and outcomes that arrive while a commit is in flight go together in the next (a group commit).

    Like PostgreSQL's ``commit_delay`` with ``commit_siblings``, a commit waits a moment (``linger``) for the
    answers of the mails already on the wire that do not wait for it (the other workers', and a worker's next
    one while it may have another outcome out), so that a rush commits several outcomes per statement instead
    of one each; with no such mail on the wire it does not wait."""

    def __init__(self, ctx: ServiceContext, settings: NotificationSettings) -> None:
        self.ctx = ctx
        self.settings = settings
        self.uows = ctx.uows(Store)
        #: Outcomes to commit next.
        self._waiting: list[_Waiting] = []
        self._lock = asyncio.Lock()
        #: The workers whose mail's content is on the wire: their outcomes follow within an SMTP answer's time.
        self._on_wire: set[object] = set()
        self._arrived = asyncio.Event()

    def on_wire(self, worker: object) -> None:
        """``worker`` sends a mail's content; its outcome follows (``record``), or it stops (``off_wire``)."""
        self._on_wire.add(worker)

    def off_wire(self, worker: object) -> None:
        self._on_wire.discard(worker)
        self._arrived.set()

    def record(self, row: Any, lease_until: datetime, answer: Answer, worker: object = None) -> asyncio.Task[None]:
        """Queue an outcome of ``worker`` at once (so that a commit waiting for it sees it) and commit it: the
        task ends when it is committed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting((row, lease_until, answer), done, worker))
        self.off_wire(worker)
        return asyncio.create_task(self._committed(done))

    async def _committed(self, done: asyncio.Future[None]) -> None:
        async with self._lock:
            if not done.done():
                await self._linger()
                batch, self._waiting = self._waiting, []
                try:
                    await self._commit([w.item for w in batch])
                except BaseException as exc:
                    for w in batch:
                        if not w.done.done():
                            w.done.set_exception(exc)
                    raise
                for w in batch:
                    if not w.done.done():
                        w.done.set_result(None)
        await done

    async def _linger(self) -> None:
        """Wait up to ``outcome_linger_seconds`` while a worker has a mail on the wire that does not wait for
        this commit, or until they all answered. A worker may have ``unrecorded_mails_per_connection`` outcomes
        out: one with fewer in this commit sends its next mail meanwhile, and its answer comes in time to join;
        one with that many waits for this commit before its next mail, so waiting for it would only keep its
        connection idle."""
        deadline = time.monotonic() + self.settings.outcome_linger_seconds
        depth = self.settings.unrecorded_mails_per_connection
        while (left := deadline - time.monotonic()) > 0:
            held = collections.Counter(w.worker for w in self._waiting)
            if not any(held[worker] < depth for worker in self._on_wire):
                return
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)

    async def _commit(self, items: list[tuple[Any, datetime, Answer]]) -> None:
        """One statement (one round trip, atomic on its own, so no transaction around it): the outcomes, the
        events of the rows still under their worker's lease, and the relay's wake-up."""
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
        async with self.uows.reading() as store:
            await store.record_mail_outcomes(updates, events, notify_channel(outbox.service))


class MailWorker:
    """One mail worker, using one connection of the SMTP pool at a time; a process runs one per connection."""

    def __init__(
        self,
        ctx: ServiceContext,
        settings: NotificationSettings,
        mails: Mails,
        smtp: SmtpPool,
        recorder: Recorder,
        turns: Turns,
    ) -> None:
        self.ctx = ctx
        #: The process's workers' turns: a full claim leaves mails behind, so the next idle worker is woken.
        self.turns = turns
        self.settings = settings
        self.mails = mails
        self.smtp = smtp
        self.recorder = recorder
        self.uows = ctx.uows(Store)
        #: Set while the loop runs: a batch in progress stops sending when it is.
        self.stop = asyncio.Event()
        #: When to look for mails whose last attempt's lease ran out next (``time.monotonic()``).
        self._abandon_due = 0.0

    async def _claim(self, now: datetime, lease_until: datetime) -> tuple[list[Any], Lookups]:
        """Give up the mails whose last allowed attempt ran out of its lease (this is what bounds resends after
        crashes: their outcome is unknown, and they are not tried again), then claim a batch with what its mails
        refer to. Leases run for minutes, so looking for run-out ones every few seconds finds them as soon; the
        claim alone is one statement, atomic on its own, and a busy worker claims many times a second."""
        s = self.settings
        if time.monotonic() >= self._abandon_due:
            self._abandon_due = time.monotonic() + min(ABANDON_CHECK_SECONDS, s.lease_seconds)
            async with self.uows() as uow:
                abandoned = await uow.store.abandon_unknown(now, s.email_max_attempts)
                if abandoned:
                    await uow.write(
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
                            for r in abandoned
                        ]
                    )
        async with self.uows.reading() as store:
            return await store.claim_mails(now, lease_until, s.sender_batch_size, s.email_max_attempts)

    async def send_due(self) -> int:
        """Claim a few deliveries and send them one after another, each outcome recorded before the next mail
        goes out; returns the number of deliveries handled."""
        s, now = self.settings, self.ctx.clock.now()
        lease_until = now + timedelta(seconds=s.lease_seconds)
        rows, lookups = await self._claim(now, lease_until)
        if not rows:
            return 0
        if len(rows) >= s.sender_batch_size:
            self.turns.notify()
        # A mail started this close to the lease's end might still be on the wire when another sender takes
        # the row over: what is left then goes back to the queue instead.
        margin = timedelta(seconds=min(2 * s.smtp_timeout_seconds, s.lease_seconds / 2))
        #: The outcomes of this connection's last mails, oldest first, until they are committed: a mail's content
        #: waits for the outcome ``unrecorded_mails_per_connection`` mails back, so that many are out at most.
        committing: collections.deque[asyncio.Task[None]] = collections.deque()
        depth = s.unrecorded_mails_per_connection
        #: The next row's mail, prepared, and its envelope where it went out with the last mail's content.
        ahead: tuple[Prepared, Opened | Answer | None] | None = None
        sending = time.perf_counter()
        try:
            for i, row in enumerate(rows):
                if self.stop.is_set() or self.ctx.clock.now() + margin >= lease_until:
                    if ahead is not None and isinstance(ahead[1], Opened):
                        await self.smtp.abort(ahead[1])
                    ahead = None
                    async with self.uows.reading() as store:
                        await store.release([r["id"] for r in rows[i:]], lease_until)
                    return i
                prepared, opened = ahead if ahead is not None else (self._prepare(row, lookups), None)
                following = self._prepare(rows[i + 1], lookups) if i + 1 < len(rows) else None
                recording = committing.popleft() if len(committing) >= depth else None
                answer, next_opened = await self._transmit(row, prepared, opened, following, recording)
                ahead = (following, next_opened) if following is not None else None
                MAILS.labels("sent" if answer.ok else "failed" if answer.permanent else "retry").inc()
                committing.append(self.recorder.record(row, lease_until, answer, self))
        finally:
            self.recorder.off_wire(self)  # stopped in the middle of a mail: no outcome of it will come
            if ahead is not None and isinstance(ahead[1], Opened):
                await self.smtp.abort(ahead[1])  # an envelope sent for a mail that will not follow here
            failed: BaseException | None = None
            for task in committing:  # every one awaited, so that no failure goes unseen
                try:
                    await task
                except BaseException as exc:
                    failed = failed or exc
            MAIL_BATCH_SECONDS.observe(time.perf_counter() - sending)
            if failed is not None:
                raise failed
        return len(rows)

    def _prepare(self, row: Any, lookups: Lookups) -> Prepared:
        """The envelope address and the bytes of a delivery's mail, or the answer that it cannot be sent."""
        if not row["address"]:
            return Answer(False, True, "no address (erased)")
        try:
            to = domain.wire_address(row["address"])
        except domain.Undeliverable as exc:
            return Answer(False, True, f"undeliverable address: {exc}")
        try:
            return to, self.mails.wire(row, lookups, to.address)
        except NotReady as exc:
            return Answer(False, False, str(exc))
        except Exception as exc:  # a template error must not stop the batch
            log.exception("rendering failed", extra={"delivery_id": str(row["id"])})
            return Answer(False, True, f"rendering failed: {type(exc).__name__}")

    async def _transmit(
        self,
        row: Any,
        prepared: Prepared,
        opened: Opened | Answer | None,
        following: Prepared | None,
        recording: asyncio.Task[None] | None,
    ) -> tuple[Answer, Opened | Answer | None]:
        """Send one mail, its content only once ``recording`` (the outcome of the mail
        ``unrecorded_mails_per_connection`` back) is committed; a failure of that commit ends the batch (raised),
        with this mail's envelope given back undelivered. ``opened``:
        its envelope, where it went out with the last mail's content. The next mail's envelope (``following``)
        goes in the same write as this one's content where the server pipelines; returned is this mail's
        answer and the next mail's envelope as far as it went."""
        try:
            if isinstance(prepared, Answer):
                if isinstance(opened, Opened):
                    await self.smtp.abort(opened)
                return prepared, None
            to, data = prepared
            if opened is None:
                # While the last outcome commits, the envelope (MAIL FROM, RCPT TO) goes to the server; the
                # content, which is what delivers the mail, goes only after the commit.
                opened = await self.smtp.envelope(
                    self.settings.from_address, to.address, utf8=to.utf8, size=wire_size(data)
                )
            if isinstance(opened, Answer):
                return opened, None
            if recording is not None:
                await recording
                recording = None
            held, opened = opened, None  # from here the connection is the content's to give back or close
            self.recorder.on_wire(self)
            if following is None or isinstance(following, Answer):
                return await self.smtp.data(held, data), None
            next_to, next_data = following
            answer, next_opened = await self.smtp.data_then(
                held, data, self.settings.from_address, next_to.address, utf8=next_to.utf8, size=wire_size(next_data)
            )
            return answer, next_opened
        except Exception as exc:
            if recording is not None and recording.done() and recording.exception() is not None:
                raise  # the last outcome was not recorded: stop before anything else goes out
            log.exception("sending failed unexpectedly", extra={"delivery_id": str(row["id"])})
            return Answer(False, False, f"sending failed: {type(exc).__name__}"), None
        finally:
            if isinstance(opened, Opened):
                await self.smtp.abort(opened)
            if recording is not None:
                await recording


#: A delivery's mail ready for the wire (envelope address and bytes), or the answer that it cannot be sent.
Prepared = Answer | tuple[domain.WireAddress, bytes]


# -- webhooks -----------------------------------------------------------------------------------------------


class WebhookSender:
    """Sends due webhook deliveries, a batch at a time and several at once (Standard Webhooks signatures),
    retrying on the settings' schedule (about three days)."""

    def __init__(self, ctx: ServiceContext, settings: NotificationSettings, uows: UnitsOfWork[Store]) -> None:
        self.ctx = ctx
        self.settings = settings
        self.uows = uows
        self.client = httpx.AsyncClient(
            transport=GuardedTransport(settings.allow_private_targets),
            follow_redirects=False,
            timeout=settings.webhook_timeout_seconds,
            headers={"user-agent": "civic-webhooks/1"},
        )
        self._slots = asyncio.Semaphore(max(1, settings.webhook_concurrency))

    async def send_due(self) -> int:
        s, now = self.settings, self.ctx.clock.now()
        lease_until = now + timedelta(seconds=s.lease_seconds)
        async with self.uows() as uow:
            rows = await uow.store.claim("webhook", now, lease_until, s.webhook_batch_size)
        if not rows:
            return 0
        async with self.uows.reading() as store:
            endpoints = await store.endpoints(list({r["endpoint_id"] for r in rows}))
        results = await asyncio.gather(*(self._send(r, endpoints.get(r["endpoint_id"])) for r in rows))
        await self._record(rows, results, lease_until)
        return len(rows)

    async def _send(self, row: Any, endpoint: Any) -> tuple[Answer, bool]:
        if endpoint is None or not endpoint["enabled"] or endpoint["tenant"] != row["tenant"]:
            return Answer(False, True, "endpoint disabled or deleted"), False
        body = (row["body"] or "{}").encode()
        msg_id = str(row["cause_event_id"])
        timestamp = int(self.ctx.clock.now().timestamp())
        headers = {
            # Structured mode of the CloudEvents HTTP binding.
            "content-type": "application/cloudevents+json; charset=utf-8",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": domain.webhook_signature(endpoint["secret"], msg_id, timestamp, body),
        }
        async with self._slots:
            try:
                response = await self.client.post(endpoint["url"], content=body, headers=headers)
            except BlockedTarget as exc:
                return Answer(False, True, f"refused target: {exc}"), False
            except httpx.HTTPError as exc:
                return Answer(False, False, f"no answer: {type(exc).__name__}: {exc}"[:1000]), False
        if 300 <= response.status_code < 400:
            return Answer(False, False, f"{response.status_code} redirect not followed"), False
        return domain.webhook_answer(response.status_code, response.reason_phrase)

    async def _record(self, rows: list[Any], results: list[tuple[Answer, bool]], lease_until: datetime) -> None:
        now = self.ctx.clock.now()
        updates: list[tuple[Any, ...]] = []
        events: list[Pending] = []
        disable: list[Any] = []
        for row, (a, gone) in zip(rows, results, strict=True):
            common = {
                "delivery_id": row["id"],
                "cause_event_id": row["cause_event_id"],
                "channel": "webhook",
                "template": row["template"],
            }
            if gone:
                disable.append(row["endpoint_id"])
            if a.ok:
                updates.append((row["id"], "sent", now, a.text, now, lease_until))
                events.append(Pending(NotificationSentV1(**common), row["tenant"]))
                continue
            delay = (
                None
                if a.permanent
                else domain.webhook_retry_delay(row["attempts"], self.settings.webhook_retry_schedule)
            )
            state = "given_up" if delay is None else "failed"
            updates.append((row["id"], state, now + timedelta(seconds=delay or 0), a.text, None, lease_until))
            events.append(
                Pending(NotificationFailedV1(**common, permanent=delay is None, reason=a.text), row["tenant"])
            )
        async with self.uows() as uow:
            await uow.store.record_webhook_outcomes(updates, disable)
            await uow.write(events)
