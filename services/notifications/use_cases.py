"""The notifications service's use cases: subscriptions (subscribe, confirm, unsubscribe), the delivery log,
webhook endpoints, and what each event it hears of asks for (projections kept, mails and webhooks queued,
erasure, the data export's share). Nothing is sent here; the senders (loops.py) pick up what was queued.

Commands take a ``UnitOfWork[Store]``; queries a ``Store`` (``uows.reading()``). Refusals are ``shared.errors``.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from services.notifications import domain
from services.notifications.domain import Cap, Cause, EmailDelivery, Policy
from services.notifications.store import Store
from services.notifications.webhooks import check_url
from shared.contracts.common import DeadlineApproachingV1, DeadlineKind
from shared.contracts.content import ContentPublishedV1, PhaseStartedV1
from shared.contracts.envelope import Envelope
from shared.contracts.notifications import PersonExportContributedV1
from shared.contracts.registration import (
    Contact,
    MeetingCancelledV1,
    MeetingSnapshotV1,
    PersonErasedV1,
    PersonErasedV2,
    PersonExportRequestedV1,
    RegistrantData,
    RegistrationCancelledV1,
    RegistrationCancelledV2,
    RegistrationCheckedInV1,
    RegistrationConfirmedV1,
    RegistrationConfirmedV2,
    RegistrationPromotedV1,
    RegistrationPromotedV2,
    RegistrationsAnonymisedV1,
    RegistrationWaitlistedV1,
    RegistrationWaitlistedV2,
    registrant_context,
)
from shared.contracts.registry import REGISTRY
from shared.contracts.surveys import SurveyOpenedV1, SurveyPublishedV1
from shared.errors import Conflict, DomainError, FieldProblem, Invalid, NotFound
from shared.privacy import KeyGone, open_sealed, seal
from shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

Uow = UnitOfWork[Store]

Confirmed = RegistrationConfirmedV1 | RegistrationPromotedV1 | RegistrationConfirmedV2 | RegistrationPromotedV2
Waitlisted = RegistrationWaitlistedV1 | RegistrationWaitlistedV2
Cancelled = RegistrationCancelledV1 | RegistrationCancelledV2
Erased = PersonErasedV1 | PersonErasedV2 | RegistrationsAnonymisedV1


# -- subscriptions (public) ------------------------------------------------------------------------------


async def subscribe(
    uow: Uow,
    policy: Policy,
    *,
    tenant: str,
    email: str,
    email_hmac: str,
    process_id: UUID,
    locale: str,
    now: Any,
) -> None:
    """Subscribe an address to a process's news (double opt-in: a mail with a confirmation link, once per
    arming). Only processes the service has heard of can be subscribed to."""
    async with uow:
        if not await uow.store.process_known(tenant, process_id):
            raise Invalid(
                "validation",
                "Invalid request",
                detail="There is no such participation process to subscribe to.",
                fields=[FieldProblem("/process_id", "no such process", "unknown_process")],
            )
        key = policy.recipient_key(email)
        sid, _state, mail = await uow.store.subscribe(
            tenant=tenant,
            address=email,
            email_sha256=domain.email_sha256(email),
            email_hmac=email_hmac,
            recipient_key=key,
            locale=locale,
            process_id=process_id,
            now=now,
        )
        if mail:
            await uow.store.enqueue_email(
                EmailDelivery(
                    tenant=tenant,
                    cause_event_id=uuid4(),
                    recipient_key=key,
                    address=email,
                    template="subscription_confirm",
                    transactional=True,
                    locale=locale,
                    subscription_id=sid,
                ),
                now,
                policy.cap(email),
            )


def _subscription(policy: Policy, purpose: str, token: str) -> UUID:
    value = domain.verify_token(policy.signing_secret, purpose, token)
    if value is None:
        raise DomainError("invalid-link", "Invalid link", detail="The link is incomplete or was altered.")
    return UUID(value)


async def confirm(uow: Uow, policy: Policy, token: str, now: Any) -> None:
    subscription_id = _subscription(policy, "confirm", token)
    async with uow:
        state = await uow.store.subscription_state(subscription_id)
        if state is None:
            raise NotFound("not-found", detail="This subscription no longer exists.")
        if state == "unsubscribed":
            raise Conflict("unsubscribed", "Unsubscribed", detail="Subscribe again to receive news.")
        await uow.store.set_subscription_state(subscription_id, "confirmed", now)


async def unsubscribe(uow: Uow, policy: Policy, token: str, now: Any) -> None:
    subscription_id = _subscription(policy, "unsubscribe", token)
    async with uow:
        await uow.store.set_subscription_state(subscription_id, "unsubscribed", now)


# -- the delivery log (staff) ----------------------------------------------------------------------------


async def deliveries_of_cause(store: Store, tenant: str, event_id: UUID) -> list[Any]:
    return await store.deliveries_of_cause(tenant, event_id)


async def deliveries_to(store: Store, policy: Policy, tenant: str, email: str) -> list[Any]:
    """Messages to one address, matched by its keyed hash (the log keeps no searchable address)."""
    return await store.deliveries_to(tenant, policy.recipient_key(email))


async def deliveries_of_registration(store: Store, tenant: str, registration_id: UUID) -> list[Any]:
    return await store.deliveries_of_registration(tenant, registration_id)


async def deliveries_of_endpoint(store: Store, tenant: str, endpoint_id: UUID) -> list[Any]:
    return await store.deliveries_of_endpoint(tenant, endpoint_id)


async def resend_webhook_delivery(uow: Uow, tenant: str, delivery_id: UUID, now: Any) -> Any:
    """Send a webhook delivery again: the same delivery (same ``webhook-id``, so receivers can tell a copy)
    queued at once with its attempts counted from zero, ``resends`` and ``resent_at`` recorded. Idempotent: a
    delivery already queued or being sent stays as it is (a second click sends nothing twice)."""
    async with uow:
        row = await uow.store.delivery(tenant, delivery_id)
        if row is None:
            raise NotFound("not-found", detail="No such delivery.")
        if row["channel"] != "webhook":
            raise Conflict("not-resendable", detail="Only webhook deliveries can be sent again.")
        endpoint = (await uow.store.endpoints([row["endpoint_id"]])).get(row["endpoint_id"])
        if endpoint is None or not endpoint["enabled"]:
            raise Conflict("endpoint-disabled", detail="The endpoint is disabled or deleted.")
        if row["state"] in ("queued", "sending"):
            return row
        return await uow.store.requeue(tenant, delivery_id, now)


# -- webhook endpoints (staff) ---------------------------------------------------------------------------


async def create_webhook(
    uow: Uow,
    *,
    tenant: str,
    url: str,
    event_types: list[str],
    description: str | None,
    allow_private_targets: list[str],
    now: Any,
) -> Any:
    """Register an endpoint; the row holds its signing secret, shown once."""
    problems = check_url(url, allow_private_targets)
    if problems:
        raise Invalid(
            "validation",
            "Invalid request",
            detail="The URL cannot be used.",
            fields=[FieldProblem("/url", p) for p in problems],
        )
    secret = domain.new_webhook_secret(secrets.token_bytes(32))
    async with uow:
        return await uow.store.create_endpoint(tenant, url, event_types, secret, description, now)


async def webhooks(store: Store, tenant: str) -> list[Any]:
    return await store.list_endpoints(tenant)


async def delete_webhook(uow: Uow, tenant: str, endpoint_id: UUID) -> None:
    async with uow:
        if not await uow.store.delete_endpoint(tenant, endpoint_id):
            raise NotFound("not-found", detail="No such webhook endpoint.")


# -- projections -------------------------------------------------------------------------------------------
# The event handlers (handlers.py) run these in the consumer's transaction (a joined unit of work).


async def meeting_snapshot(uow: Uow, cause: Cause, p: MeetingSnapshotV1) -> None:
    async with uow:
        if not await uow.store.accept_newer(f"meetings:{p.meeting_id}", cause.sequence):
            return
        await uow.store.upsert_meeting(
            cause.tenant,
            {
                "meeting_id": p.meeting_id,
                "process_id": p.process_id,
                "title": p.title,
                "starts_at": p.starts_at,
                "ends_at": p.ends_at,
                "timezone": p.timezone,
                "venue": p.venue.model_dump() if p.venue else None,
                "url": p.url,
            },
        )


async def meeting_cancelled(uow: Uow, cause: Cause, p: MeetingCancelledV1) -> None:
    # Registrants hear of it through the RegistrationCancelled (meeting_cancelled) of each registration.
    async with uow:
        await uow.store.cancel_meeting(cause.tenant, p.meeting_id)


async def survey_snapshot(uow: Uow, cause: Cause, p: SurveyPublishedV1 | SurveyOpenedV1) -> None:
    async with uow:
        await uow.store.upsert_survey(
            cause.tenant, p.survey_id, p.process_id, p.title, p.closes_at, getattr(p, "url", None)
        )


async def process_seen(uow: Uow, cause: Cause, p: ContentPublishedV1 | PhaseStartedV1) -> None:
    """A process content published or started a phase of: it exists, so it can be subscribed to."""
    async with uow:
        await _remember_process(uow, cause, p)


async def _remember_process(uow: Uow, cause: Cause, p: ContentPublishedV1 | PhaseStartedV1) -> None:
    if p.process_id is not None:
        await uow.store.remember_process(cause.tenant, p.process_id)


# -- registrations ------------------------------------------------------------------------------------------


async def _registrant(uow: Uow, cause: Cause, p: Confirmed | Waitlisted | Cancelled) -> RegistrantData | None:
    """The registrant's contact, ticket code and manage link: sealed in version 2 (opened with the key from
    registration's keyring), in the clear in the retired version 1. None once the person was erased (the key
    is gone, so an event still pending or replayed mails nobody) or when the event carries no contact."""
    if isinstance(p, RegistrationConfirmedV1 | RegistrationPromotedV1):
        return RegistrantData(contact=p.contact, ticket_code=p.ticket_code, manage_url=p.manage_url)
    if isinstance(p, RegistrationWaitlistedV1):
        return RegistrantData(contact=p.contact, manage_url=p.manage_url)
    if isinstance(p, RegistrationCancelledV1):
        return RegistrantData(contact=p.contact) if p.contact else None
    if p.key_id is None or p.sealed is None:
        return None
    try:
        key = await uow.store.producer_key("registration", p.key_id, cause.tenant)
    except KeyGone:
        log.info("registrant's data was erased before this event was handled", extra={"type": cause.type})
        return None
    return _unsealed(key, p)


def _unsealed(key: bytes, p: Sealed | RegistrationCancelledV2) -> RegistrantData:
    """What a sealed event holds for the registrant, opened with the producer's key."""
    assert p.key_id is not None and p.sealed is not None
    return RegistrantData.model_validate(open_sealed(key, p.sealed, context=registrant_context(p.key_id)))


async def _registration(
    uow: Uow,
    policy: Policy,
    cause: Cause,
    *,
    registration_id: UUID,
    meeting_id: UUID,
    status: str,
    contact: Contact | None,
) -> Any:
    """Update the projection; None if the event is older than what it already shows."""
    if not await uow.store.accept_newer(f"registrations:{registration_id}", cause.sequence):
        return None
    email = contact.email if contact else None
    return await uow.store.upsert_registration(
        tenant=cause.tenant,
        registration_id=registration_id,
        meeting_id=meeting_id,
        status=status,
        address=email,
        email_sha256=domain.email_sha256(email) if email else None,
        recipient_key=policy.recipient_key(email) if email else None,
        name=contact.name if contact else None,
        locale=contact.locale if contact else None,
    )


async def _mail_registrant(
    uow: Uow, policy: Policy, cause: Cause, row: Any, template: str, personal: dict[str, Any]
) -> None:
    """A transactional mail to the registrant the projection knows an address of; none without one."""
    if row is None or not row["address"]:
        return
    await uow.store.enqueue_email(
        _registrant_delivery(cause, row, template, personal), cause.now, policy.cap(row["address"])
    )


def _registrant_delivery(cause: Cause, row: Any, template: str, personal: dict[str, Any]) -> EmailDelivery:
    return EmailDelivery(
        tenant=cause.tenant,
        cause_event_id=cause.event_id,
        recipient_key=row["recipient_key"],
        address=row["address"],
        template=template,
        transactional=True,
        locale=row["locale"],
        registration_id=row["registration_id"],
        meeting_id=row["meeting_id"],
        personal={"name": row["name"] or "", **personal},
    )


async def registration_confirmed(uow: Uow, policy: Policy, cause: Cause, p: Confirmed) -> None:
    """Confirmed or promoted from the waiting list: the ticket mail."""
    await _registrant_mailed(uow, policy, cause, p)


async def registration_waitlisted(uow: Uow, policy: Policy, cause: Cause, p: Waitlisted) -> None:
    await _registrant_mailed(uow, policy, cause, p)


async def _registrant_mailed(uow: Uow, policy: Policy, cause: Cause, p: Confirmed | Waitlisted) -> None:
    async with uow:
        data = await _registrant(uow, cause, p)
        if data is None:
            return
        status = "waitlisted" if isinstance(p, Waitlisted) else "confirmed"
        row = await _registration(
            uow,
            policy,
            cause,
            registration_id=p.registration_id,
            meeting_id=p.meeting_id,
            status=status,
            contact=data.contact,
        )
        template, personal = _registrant_mail(p, data)
        await _mail_registrant(uow, policy, cause, row, template, personal)


def _registrant_mail(p: Confirmed | Waitlisted, data: RegistrantData) -> tuple[str, dict[str, Any]]:
    """The template and what is personal in the mail of a confirmed, promoted or waitlisted registration."""
    if isinstance(p, Waitlisted):
        return "waitlisted", {"position": p.position, "manage_url": data.manage_url}
    template = "promoted" if isinstance(p, RegistrationPromotedV1 | RegistrationPromotedV2) else "confirmed"
    return template, {
        "ticket_code": data.ticket_code,
        "manage_url": data.manage_url,
        "companions": getattr(p, "companions", 0),
    }


Sealed = RegistrationConfirmedV2 | RegistrationPromotedV2 | RegistrationWaitlistedV2


async def registrations_mailed(uow: Uow, policy: Policy, items: list[tuple[Cause, Confirmed | Waitlisted]]) -> None:
    """``registration_confirmed`` and ``registration_waitlisted`` for a run of events of one type at once (a
    consumer's batch, as in a rush of registrations): the same projection rows and mails, with four statements
    for the run instead of four for each event. A run in which an event of the retired version 1 comes, or one
    registration or one inbox comes twice, goes event by event: each of those must see what the one before did."""
    sealed = [(cause, p) for cause, p in items if isinstance(p, Sealed) and p.key_id is not None and p.sealed]
    if len(sealed) == len(items) and len({p.registration_id for _, p in sealed}) == len(sealed):
        async with uow:
            keys = await uow.store.producer_keys("registration", [(p.key_id, c.tenant) for c, p in sealed if p.key_id])
            opened: list[tuple[Cause, Sealed, RegistrantData]] = []
            for cause, p in sealed:
                assert p.key_id is not None
                if (key := keys.get(p.key_id)) is None:
                    log.info("registrant's data was erased before this event was handled", extra={"type": cause.type})
                    continue
                opened.append((cause, p, _unsealed(key, p)))
            # A registration by phone has no address: its projection row, and no mail.
            caps = [policy.cap(data.contact.email) if data.contact.email else None for _, _, data in opened]
            inboxes = [c.mailbox_key for c in caps if c is not None]
            if len(set(inboxes)) == len(inboxes):
                await _queue_run(uow, policy, opened, caps, items[0][0].now)
                return
    for one_cause, one in items:
        await _registrant_mailed(uow, policy, one_cause, one)


async def _queue_run(
    uow: Uow,
    policy: Policy,
    opened: list[tuple[Cause, Sealed, RegistrantData]],
    caps: list[Cap | None],
    now: datetime,
) -> None:
    """The writes of ``registrations_mailed``: versions, projection rows and mails, a statement each."""
    newer = await uow.store.accept_newer_many(
        [(f"registrations:{p.registration_id}", cause.sequence) for cause, p, _ in opened]
    )
    todo = [(item, cap) for item, cap, ok in zip(opened, caps, newer, strict=True) if ok]
    projected = []
    for (cause, p, data), _ in todo:
        email = data.contact.email
        projected.append(
            {
                "tenant": cause.tenant,
                "registration_id": p.registration_id,
                "meeting_id": p.meeting_id,
                "status": "waitlisted" if isinstance(p, Waitlisted) else "confirmed",
                "address": email,
                "email_sha256": domain.email_sha256(email) if email else None,
                "recipient_key": policy.recipient_key(email) if email else None,
                "name": data.contact.name,
                "locale": data.contact.locale,
            }
        )
    rows = await uow.store.upsert_registrations(projected)
    mails: list[tuple[EmailDelivery, Cap]] = []
    others: list[tuple[EmailDelivery, Cap]] = []
    for (cause, p, data), cap in todo:
        row = rows.get(p.registration_id)
        if row is None or not row["address"]:
            continue
        template, personal = _registrant_mail(p, data)
        delivery = _registrant_delivery(cause, row, template, personal)
        if cap is not None and row["address"] == data.contact.email:
            mails.append((delivery, cap))
        else:  # an address the projection had before: its inbox was not among those checked
            others.append((delivery, policy.cap(row["address"])))
    if mails:
        await uow.store.enqueue_emails(mails, now)
    for delivery, cap in others:
        await uow.store.enqueue_email(delivery, now, cap)


async def registration_cancelled(uow: Uow, policy: Policy, cause: Cause, p: Cancelled) -> None:
    async with uow:
        data = await _registrant(uow, cause, p)
        row = await _registration(
            uow,
            policy,
            cause,
            registration_id=p.registration_id,
            meeting_id=p.meeting_id,
            status="cancelled",
            contact=data.contact if data else None,
        )
        await _mail_registrant(uow, policy, cause, row, domain.cancelled_template(p.cancelled_by), {})


async def registration_checked_in(
    uow: Uow, policy: Policy, cause: Cause, p: RegistrationCheckedInV1, *, thanks: bool
) -> None:
    async with uow:
        row = await _registration(
            uow,
            policy,
            cause,
            registration_id=p.registration_id,
            meeting_id=p.meeting_id,
            status="checked_in",
            contact=None,
        )
        if thanks:
            await _mail_registrant(uow, policy, cause, row, "checked_in", {})


# -- personal data --------------------------------------------------------------------------------------------


async def person_erased(uow: Uow, cause: Cause, p: Erased) -> None:
    """Forget the registrations (and their mails' addresses); a person who asked to be forgotten loses their
    news subscriptions too."""
    async with uow:
        await uow.store.erase_registrations(cause.tenant, list(p.registration_ids))
        if isinstance(p, PersonErasedV2) and p.email_hmac:
            await uow.store.erase_recipient(cause.tenant, p.email_hmac, column="email_hmac")
        if isinstance(p, PersonErasedV1) and p.email_sha256:
            await uow.store.erase_recipient(cause.tenant, p.email_sha256)


async def contribute_export(uow: Uow, policy: Policy, cause: Cause, p: PersonExportRequestedV1) -> None:
    """Answer a data export request with this service's records, sealed under the export's key."""
    async with uow:
        try:
            key = await uow.store.producer_key("registration", p.key_id, cause.tenant)
        except KeyGone:
            return  # the export expired or its person was erased before we got to it
        subject = open_sealed(key, p.sealed, context=f"export:{p.export_id}")
        records: dict[str, Any] = {"recipients": [], "subscriptions": [], "registrations": [], "deliveries": []}
        email = subject.get("email")
        if email:
            # Phone numbers: this service keeps none.
            records = await uow.store.person_records(cause.tenant, email, policy.recipient_key(email))
        await uow.record(
            PersonExportContributedV1(
                export_id=p.export_id,
                key_id=p.key_id,
                sealed=seal(key, {"records": records}, context=f"export:{p.export_id}:notifications"),
            ),
            tenant=cause.tenant,
            subject=f"export/{p.export_id}",
        )


# -- reminders and news ----------------------------------------------------------------------------------------


async def deadline_approaching(uow: Uow, cause: Cause, p: DeadlineApproachingV1) -> None:
    """Reminders: to the registrants when a meeting starts, to the subscribers of its process (but those
    registered already) when its registration closes, to a survey's process's subscribers when it closes."""
    async with uow:
        tenant, store = cause.tenant, uow.store
        await store.record_cause(
            cause.event_id, tenant, cause.type, {"due_at": p.due_at.isoformat(), "kind": p.kind, "title": p.title}
        )
        try:
            subject = UUID(p.subject_id)
        except ValueError:
            log.warning("deadline subject is not an id", extra={"kind": p.kind, "subject_id": p.subject_id})
            return
        if p.kind == DeadlineKind.MEETING_STARTS:
            await store.fan_out_to_registrants(
                tenant=tenant,
                cause_event_id=cause.event_id,
                meeting_id=subject,
                template="reminder_meeting_starts",
                now=cause.now,
            )
        elif p.kind == DeadlineKind.REGISTRATION_CLOSES:
            process_id = await store.process_of_meeting(tenant, subject)
            if process_id is not None:
                await store.fan_out_to_subscribers(
                    tenant=tenant,
                    cause_event_id=cause.event_id,
                    process_id=process_id,
                    template="reminder_registration_closes",
                    preference="reminders",
                    now=cause.now,
                    meeting_id=subject,
                    skip_registered_for=subject,
                )
        elif p.kind == DeadlineKind.SURVEY_CLOSES:
            process_id = await store.process_of_survey(tenant, subject)
            if process_id is not None:
                await store.fan_out_to_subscribers(
                    tenant=tenant,
                    cause_event_id=cause.event_id,
                    process_id=process_id,
                    template="reminder_survey_closes",
                    preference="reminders",
                    now=cause.now,
                    survey_id=subject,
                )


async def content_published(uow: Uow, cause: Cause, p: ContentPublishedV1) -> None:
    """News of a process: a mail to each of its confirmed subscribers who want news."""
    async with uow:
        await _remember_process(uow, cause, p)
        if p.kind != "news" or p.process_id is None:
            return
        await uow.store.record_cause(
            cause.event_id, cause.tenant, cause.type, {"news": {"title": p.title, "summary": p.summary, "url": p.url}}
        )
        await uow.store.fan_out_to_subscribers(
            tenant=cause.tenant,
            cause_event_id=cause.event_id,
            process_id=p.process_id,
            template="news",
            preference="news",
            now=cause.now,
        )


# -- webhooks --------------------------------------------------------------------------------------------------


async def queue_webhooks(uow: Uow, items: list[tuple[Cause, Envelope]]) -> None:
    """Queue each event of a run for every endpoint of its tenant that asked for its type, without personal
    data; each tenant's endpoints are looked up once for the run."""
    async with uow:
        endpoints: dict[str, list[Any]] = {}
        for cause, envelope in items:
            if cause.tenant not in endpoints:
                endpoints[cause.tenant] = await uow.store.enabled_endpoints(cause.tenant)
            wanted = [e["id"] for e in endpoints[cause.tenant] if domain.matches(e["event_types"], cause.type)]
            if not wanted:
                continue
            body = domain.strip_personal(envelope.model_dump(mode="json"), REGISTRY.get(cause.type).personal_fields)
            await uow.store.queue_webhooks(cause.tenant, cause.event_id, cause.type, body, wanted, cause.now)
