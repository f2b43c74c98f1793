"""The notifications use cases against a fake unit of work: which mail an event asks for (and when none),
subscriptions' links, erasure, and the data export's share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest

from services.notifications import domain, use_cases
from services.notifications.domain import Cap, Cause, EmailDelivery, Policy
from shared.contracts.notifications import PersonExportContributedV1
from shared.contracts.registration import (
    Contact,
    PersonErasedV1,
    PersonErasedV2,
    PersonExportRequestedV1,
    RegistrationCancelledV1,
    RegistrationConfirmedV1,
    RegistrationConfirmedV2,
    RegistrationPromotedV1,
    RegistrationWaitlistedV2,
    registrant_context,
)
from shared.errors import Conflict, DomainError, Invalid, NotFound
from shared.privacy import KeyGone, new_key, open_sealed, seal
from shared.unit_of_work import FakeUnitOfWork

NOW = datetime(2021, 10, 20, 9, 0, tzinfo=UTC)
POLICY = Policy(signing_secret="unit-secret", unconfirmed_mails_per_hour=10)
TENANT = "kreis-test"


class FakeStore:
    """What the use cases ask of the store, kept in dictionaries."""

    def __init__(self) -> None:
        self.processes: set[tuple[str, UUID]] = set()
        self.subscriptions: dict[UUID, dict[str, Any]] = {}
        self.registrations: dict[UUID, dict[str, Any]] = {}
        self.mails: list[EmailDelivery] = []
        self.caps: list[Cap | None] = []
        self.keys: dict[UUID, bytes] = {}
        self.versions: dict[str, int] = {}
        self.erased_registrations: list[UUID] = []
        self.erased_recipients: list[tuple[str, str]] = []
        #: Statements made for many rows at once (the batch paths).
        self.statements = 0

    async def accept_newer(self, subject: str, sequence: int | None) -> bool:
        if sequence is None:
            return True
        if self.versions.get(subject, 0) >= sequence:
            return False
        self.versions[subject] = sequence
        return True

    async def producer_key(self, producer: str, key_id: UUID, tenant: str) -> bytes:
        if key_id not in self.keys:
            raise KeyGone(str(key_id))
        return self.keys[key_id]

    async def enqueue_email(self, d: EmailDelivery, now: datetime, cap: Cap | None = None) -> bool:
        self.mails.append(d)
        self.caps.append(cap)
        return True

    async def process_known(self, tenant: str, process_id: UUID) -> bool:
        return (tenant, process_id) in self.processes

    async def subscribe(self, *, process_id: UUID, recipient_key: str, **_: Any) -> tuple[UUID, str, bool]:
        for sid, sub in self.subscriptions.items():
            if sub["process_id"] == process_id and sub["recipient_key"] == recipient_key:
                if sub["state"] == "unsubscribed":
                    sub["state"] = "pending"
                    return sid, "pending", True
                return sid, sub["state"], False
        sid = uuid4()
        self.subscriptions[sid] = {"process_id": process_id, "recipient_key": recipient_key, "state": "pending"}
        return sid, "pending", True

    async def subscription_state(self, subscription_id: UUID) -> str | None:
        sub = self.subscriptions.get(subscription_id)
        return sub["state"] if sub else None

    async def set_subscription_state(self, subscription_id: UUID, state: str, now: datetime) -> None:
        if subscription_id in self.subscriptions:
            self.subscriptions[subscription_id]["state"] = state

    async def producer_keys(self, producer: str, wanted: list[tuple[UUID, str]]) -> dict[UUID, bytes]:
        return {key_id: self.keys[key_id] for key_id, _ in wanted if key_id in self.keys}

    async def accept_newer_many(self, items: list[tuple[str, int | None]]) -> list[bool]:
        return [await self.accept_newer(subject, sequence) for subject, sequence in items]

    async def upsert_registrations(self, rows: list[dict[str, Any]]) -> dict[UUID, Any]:
        self.statements += 1
        return {r["registration_id"]: await self.upsert_registration(**r) for r in rows}

    async def enqueue_emails(self, ds: list[tuple[EmailDelivery, Cap]], now: datetime) -> int:
        self.statements += 1
        for d, cap in ds:
            self.mails.append(d)
            self.caps.append(cap)
        return len(ds)

    async def upsert_registration(self, *, registration_id: UUID, **values: Any) -> Any:
        row = self.registrations.setdefault(registration_id, {"registration_id": registration_id})
        row.update({k: v for k, v in values.items() if v is not None or k not in row})
        return {"locale": "de", **row}

    async def erase_registrations(self, tenant: str, ids: list[UUID]) -> None:
        self.erased_registrations.extend(ids)
        for i in ids:
            self.registrations.pop(i, None)

    async def erase_recipient(self, tenant: str, value: str, *, column: str = "email_sha256") -> None:
        self.erased_recipients.append((column, value))

    async def person_records(self, tenant: str, address: str, recipient_key: str) -> dict[str, Any]:
        return {"recipients": [{"address": address}], "subscriptions": [], "registrations": [], "deliveries": []}


def _uow(store: FakeStore | None = None) -> FakeUnitOfWork[Any]:
    return FakeUnitOfWork(store or FakeStore(), "notifications")


def _cause(sequence: int | None = 1) -> Cause:
    return Cause(uuid4(), TENANT, "civic.registration.registration.confirmed.v1", sequence, NOW)


def _confirmed(email: str | None = "alex@example.org", **kw: Any) -> RegistrationConfirmedV1:
    values: dict[str, Any] = {
        "registration_id": uuid4(),
        "meeting_id": uuid4(),
        "contact": Contact(name="Alex Beispiel", email=email, phone=None if email else "+49 481 1234"),
        "ticket_code": "TICKET42",
        "manage_url": "https://civic.test/anmeldung/abc",
        "companions": 1,
    }
    values.update(kw)
    return RegistrationConfirmedV1(**values)


# -- which mail a registration event produces -------------------------------------------------------------


async def test_a_confirmed_registration_asks_for_the_ticket_mail_to_the_registrant() -> None:
    uow, p = _uow(), _confirmed()
    await use_cases.registration_confirmed(uow, POLICY, _cause(), p)
    (mail,) = uow.store.mails
    assert (mail.template, mail.address, mail.transactional) == ("confirmed", "alex@example.org", True)
    assert mail.registration_id == p.registration_id and mail.meeting_id == p.meeting_id
    assert mail.personal == {
        "name": "Alex Beispiel",
        "ticket_code": "TICKET42",
        "manage_url": "https://civic.test/anmeldung/abc",
        "companions": 1,
    }
    # Keyed by the address's hash, and capped per inbox, as the address is nobody's confirmed subscription.
    assert mail.recipient_key == domain.recipient_key(POLICY.signing_secret, "alex@example.org")
    assert uow.store.caps == [POLICY.cap("alex@example.org")]
    assert uow.commits == 1 and uow.events == []


async def test_a_promotion_from_the_waiting_list_asks_for_the_promoted_mail() -> None:
    uow = _uow()
    p = RegistrationPromotedV1(
        registration_id=uuid4(),
        meeting_id=uuid4(),
        contact=Contact(name="Kim", email="kim@example.org"),
        ticket_code="T",
    )
    await use_cases.registration_confirmed(uow, POLICY, _cause(), p)
    assert [m.template for m in uow.store.mails] == ["promoted"]


async def test_a_person_without_an_email_address_gets_no_mail() -> None:
    uow, p = _uow(), _confirmed(email=None)
    await use_cases.registration_confirmed(uow, POLICY, _cause(), p)
    assert uow.store.mails == []
    # The projection still knows the registration (for the meeting's later reminders it asks nobody).
    assert uow.store.registrations[p.registration_id]["status"] == "confirmed"


async def test_an_older_event_than_the_projection_shows_mails_nobody() -> None:
    store = FakeStore()
    p = _confirmed()
    await use_cases.registration_confirmed(_uow(store), POLICY, _cause(sequence=2), p)
    await use_cases.registration_confirmed(_uow(store), POLICY, _cause(sequence=1), p)
    assert len(store.mails) == 1


async def test_sealed_registrant_data_is_opened_with_the_producers_key_and_none_once_it_is_gone() -> None:
    store, key_id, key = FakeStore(), uuid4(), new_key()
    data = {"contact": {"name": "Alex", "email": "alex@example.org"}, "ticket_code": "T2", "manage_url": None}
    p = RegistrationConfirmedV2(
        registration_id=uuid4(),
        meeting_id=uuid4(),
        key_id=key_id,
        sealed=seal(key, data, context=registrant_context(key_id)),
    )
    store.keys[key_id] = key
    await use_cases.registration_confirmed(_uow(store), POLICY, _cause(), p)
    assert [(m.address, (m.personal or {})["ticket_code"]) for m in store.mails] == [("alex@example.org", "T2")]

    erased = FakeStore()  # the person was erased before the event was handled: the key is gone
    await use_cases.registration_confirmed(_uow(erased), POLICY, _cause(), p)
    assert erased.mails == [] and erased.registrations == {}


def _sealed_waitlisted(store: FakeStore, email: str | None, position: int) -> RegistrationWaitlistedV2:
    key_id, key = uuid4(), new_key()
    store.keys[key_id] = key
    contact = {"name": f"Person {position}", "email": email, "phone": None if email else "+49 481 1234"}
    data = {"contact": contact, "manage_url": f"https://civic.test/anmeldung/{position}"}
    return RegistrationWaitlistedV2(
        registration_id=uuid4(),
        meeting_id=uuid4(),
        position=position,
        key_id=key_id,
        sealed=seal(key, data, context=registrant_context(key_id)),
    )


def _mails(store: FakeStore) -> list[tuple[Any, ...]]:
    return sorted((m.address, m.template, m.registration_id, str(m.personal)) for m in store.mails)


async def test_a_run_of_waitlisted_events_at_once_queues_what_one_by_one_does_in_two_statements() -> None:
    one_by_one, batch = FakeStore(), FakeStore()
    events = [_sealed_waitlisted(one_by_one, f"p{i}@example.org", i) for i in range(5)]
    events.append(_sealed_waitlisted(one_by_one, None, 6))  # by phone: a projection row, no mail
    gone = _sealed_waitlisted(one_by_one, "gone@example.org", 7)
    events.append(gone)
    batch.keys = dict(one_by_one.keys)
    del one_by_one.keys[gone.key_id], batch.keys[gone.key_id]  # erased before the event was handled
    causes = [_cause(sequence=1) for _ in events]
    for cause, p in zip(causes, events, strict=True):
        await use_cases.registration_waitlisted(_uow(one_by_one), POLICY, cause, p)
    await use_cases.registrations_mailed(_uow(batch), POLICY, list(zip(causes, events, strict=True)))
    assert _mails(batch) == _mails(one_by_one) and len(batch.mails) == 5
    assert batch.registrations == one_by_one.registrations and len(batch.registrations) == 6
    assert batch.caps == [POLICY.cap(m.address) for m in batch.mails]
    assert batch.statements == 2  # the projection rows and the mails, each in one

    # Handled again (a redelivery's newer sequence is not newer): nothing more.
    await use_cases.registrations_mailed(_uow(batch), POLICY, list(zip(causes, events, strict=True)))
    assert len(batch.mails) == 5


async def test_a_run_with_two_mails_to_one_inbox_goes_one_by_one() -> None:
    """The hourly cap counts an inbox's earlier mails: the second of two must see the first."""
    store = FakeStore()
    events = [_sealed_waitlisted(store, "same+one@example.org", 1), _sealed_waitlisted(store, "same@example.org", 2)]
    await use_cases.registrations_mailed(_uow(store), POLICY, [(_cause(), p) for p in events])
    assert [m.address for m in store.mails] == ["same+one@example.org", "same@example.org"]
    assert store.statements == 0


@pytest.mark.parametrize(
    ("cancelled_by", "template"),
    [("citizen", "cancelled_citizen"), ("staff", "cancelled_staff"), ("meeting_cancelled", "cancelled_meeting")],
)
async def test_who_cancelled_decides_the_cancellation_mail(cancelled_by: str, template: str) -> None:
    uow = _uow()
    p = RegistrationCancelledV1(
        registration_id=uuid4(),
        meeting_id=uuid4(),
        contact=Contact(name="Alex", email="alex@example.org"),
        cancelled_by=cancelled_by,  # type: ignore[arg-type]
    )
    await use_cases.registration_cancelled(uow, POLICY, _cause(), p)
    assert [m.template for m in uow.store.mails] == [template]


# -- subscriptions ---------------------------------------------------------------------------------------------


async def _subscribe(store: FakeStore, process_id: UUID) -> None:
    await use_cases.subscribe(
        _uow(store),
        POLICY,
        tenant=TENANT,
        email="news@example.org",
        email_hmac="hmac",
        process_id=process_id,
        locale="de",
        now=NOW,
    )


async def test_subscribing_sends_one_opt_in_mail_per_arming_and_only_to_known_processes() -> None:
    store, process_id = FakeStore(), uuid4()
    with pytest.raises(Invalid) as refused:
        await _subscribe(store, process_id)
    assert refused.value.code == "validation"
    assert [f.code for f in refused.value.fields] == ["unknown_process"]
    assert store.subscriptions == {} and store.mails == []

    store.processes.add((TENANT, process_id))
    await _subscribe(store, process_id)
    await _subscribe(store, process_id)  # pending already: no second mail to the same address
    assert [m.template for m in store.mails] == ["subscription_confirm"]
    assert store.mails[0].subscription_id in store.subscriptions


async def test_unsubscribe_takes_a_signed_link_only() -> None:
    store, sid = FakeStore(), uuid4()
    store.subscriptions[sid] = {"process_id": uuid4(), "recipient_key": "k", "state": "confirmed"}
    forged = domain.sign_token("another-secret", "unsubscribe", str(sid))
    with pytest.raises(DomainError) as refused:
        await use_cases.unsubscribe(_uow(store), POLICY, forged, NOW)
    assert refused.value.code == "invalid-link" and refused.value.status == 400
    # A confirm link does not unsubscribe either: the purpose is signed too.
    with pytest.raises(DomainError):
        await use_cases.unsubscribe(
            _uow(store), POLICY, domain.sign_token(POLICY.signing_secret, "confirm", str(sid)), NOW
        )
    assert store.subscriptions[sid]["state"] == "confirmed"

    token = domain.sign_token(POLICY.signing_secret, "unsubscribe", str(sid))
    await use_cases.unsubscribe(_uow(store), POLICY, token, NOW)
    assert store.subscriptions[sid]["state"] == "unsubscribed"


async def test_an_unsubscribed_or_missing_subscription_cannot_be_confirmed() -> None:
    store, sid = FakeStore(), uuid4()
    store.subscriptions[sid] = {"process_id": uuid4(), "recipient_key": "k", "state": "unsubscribed"}
    with pytest.raises(Conflict) as refused:
        await use_cases.confirm(_uow(store), POLICY, domain.sign_token(POLICY.signing_secret, "confirm", str(sid)), NOW)
    assert refused.value.code == "unsubscribed"
    gone = domain.sign_token(POLICY.signing_secret, "confirm", str(uuid4()))
    with pytest.raises(NotFound):
        await use_cases.confirm(_uow(store), POLICY, gone, NOW)
    assert store.subscriptions[sid]["state"] == "unsubscribed"


# -- personal data ---------------------------------------------------------------------------------------------


async def test_erasure_forgets_the_registrations_and_the_persons_subscriptions() -> None:
    store = FakeStore()
    p = _confirmed()
    await use_cases.registration_confirmed(_uow(store), POLICY, _cause(), p)
    await use_cases.person_erased(
        _uow(store),
        _cause(),
        PersonErasedV2(erasure_id=uuid4(), registration_ids=[p.registration_id], email_hmac="hmac-of-alex"),
    )
    assert store.erased_registrations == [p.registration_id] and store.registrations == {}
    assert store.erased_recipients == [("email_hmac", "hmac-of-alex")]

    older = FakeStore()  # the retired version names the address by its plain hash
    await use_cases.person_erased(
        _uow(older), _cause(), PersonErasedV1(erasure_id=uuid4(), registration_ids=[], email_sha256="sha-of-alex")
    )
    assert older.erased_recipients == [("email_sha256", "sha-of-alex")]


async def test_the_data_export_gets_this_services_records_sealed_under_the_exports_key() -> None:
    store, key_id, key, export_id = FakeStore(), uuid4(), new_key(), uuid4()
    store.keys[key_id] = key
    request = PersonExportRequestedV1(
        export_id=export_id,
        key_id=key_id,
        sealed=seal(key, {"email": "alex@example.org"}, context=f"export:{export_id}"),
    )
    uow = _uow(store)
    await use_cases.contribute_export(uow, POLICY, _cause(), request)
    (answer,) = uow.payloads()
    assert isinstance(answer, PersonExportContributedV1) and answer.export_id == export_id
    opened = open_sealed(key, answer.sealed, context=f"export:{export_id}:notifications")
    assert opened["records"]["recipients"] == [{"address": "alex@example.org"}]

    expired = _uow(FakeStore())  # the export's key was deleted before we got to it: no answer
    await use_cases.contribute_export(expired, POLICY, _cause(), request)
    assert expired.events == []
