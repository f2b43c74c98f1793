"""Events of the registration service: meetings (the things people attend), registrations, check-in."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from shared.contracts.common import DeadlineApproachingV1
from shared.contracts.envelope import Payload
from shared.contracts.spec import EventSpec, spec


class Venue(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    name: str
    street: str | None = None
    postal_code: str | None = None
    city: str | None = None


class Contact(BaseModel):
    """The personal data notifications needs to write to someone; nothing more travels on the bus."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    name: str
    email: str | None = None
    phone: str | None = None
    locale: Literal["de", "en"] = "de"


class MeetingSnapshotV1(Payload):
    meeting_id: UUID
    title: str
    starts_at: datetime
    ends_at: datetime
    timezone: str = "Europe/Berlin"
    venue: Venue | None = None
    capacity: int | None = None
    seats_left: int | None = None
    waitlist: bool = True
    registration_opens_at: datetime | None = None
    registration_closes_at: datetime | None = None
    process_id: UUID | None = None
    url: str | None = None


class MeetingPublishedV1(MeetingSnapshotV1):
    pass


class MeetingChangedV1(MeetingSnapshotV1):
    pass


class MeetingCancelledV1(Payload):
    meeting_id: UUID
    reason: str | None = None


class SeatsChangedV1(Payload):
    meeting_id: UUID
    capacity: int | None
    confirmed: int
    waitlisted: int
    seats_left: int | None


class RegistrationReceivedV1(Payload):
    registration_id: UUID
    meeting_id: UUID
    channel: Literal["online", "email", "phone", "in_person"] = "online"


class RegistrationConfirmedV1(Payload):
    registration_id: UUID
    meeting_id: UUID
    contact: Contact
    companions: int = 0
    ticket_code: str
    manage_url: str | None = None
    seats_left: int | None = None


class RegistrationWaitlistedV1(Payload):
    registration_id: UUID
    meeting_id: UUID
    contact: Contact
    position: int
    manage_url: str | None = None


class RegistrationPromotedV1(Payload):
    registration_id: UUID
    meeting_id: UUID
    contact: Contact
    ticket_code: str
    manage_url: str | None = None
    seats_left: int | None = None


class RegistrationCancelledV1(Payload):
    registration_id: UUID
    meeting_id: UUID
    contact: Contact | None = None
    cancelled_by: Literal["citizen", "staff", "meeting_cancelled"]
    seats_left: int | None = None


class RegistrationCheckedInV1(Payload):
    registration_id: UUID
    meeting_id: UUID
    checked_in_at: datetime


class PersonErasedV1(Payload):
    """A person's data was erased on request; consumers erase what they hold for these registrations."""

    erasure_id: UUID
    registration_ids: list[UUID]
    email_sha256: str | None = None
    phone_sha256: str | None = None


# -- version 2: personal data sealed, on the private stream -------------------------------------------------
#
# Version 1 carried contact, ticket code and manage link in the clear on the stream every subscriber reads.
# Version 2 carries them in ``sealed``: AES-256-GCM under a key per registration (``key_id``) kept in
# registration's keyring, which only the notifications service may read (shared/privacy.py). Erasure and
# retention delete the key; every copy of the event (stream, AOF, RDB, backups, outbox) becomes unreadable.


class RegistrantData(BaseModel):
    """What ``sealed`` holds once opened: what notifications needs to write to the registrant."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    contact: Contact
    ticket_code: str | None = None
    manage_url: str | None = None


def registrant_context(key_id: UUID) -> str:
    """AES-GCM associated data of a registrant's sealed data: it opens only as the data of that registration."""
    return f"registrant:{key_id}"


class Sealed(Payload):
    """Base of payloads with sealed personal data."""

    key_id: UUID
    sealed: str


class RegistrationConfirmedV2(Sealed):
    registration_id: UUID
    meeting_id: UUID
    companions: int = 0
    seats_left: int | None = None


class RegistrationWaitlistedV2(Sealed):
    registration_id: UUID
    meeting_id: UUID
    position: int


class RegistrationPromotedV2(Sealed):
    registration_id: UUID
    meeting_id: UUID
    seats_left: int | None = None


class RegistrationCancelledV2(Payload):
    """``sealed`` is absent when the registration's personal data was already erased."""

    registration_id: UUID
    meeting_id: UUID
    cancelled_by: Literal["citizen", "staff", "meeting_cancelled"]
    seats_left: int | None = None
    key_id: UUID | None = None
    sealed: str | None = None


class PersonErasedV2(Payload):
    """A person's data was erased on request. The person appears only as keyed HMACs of the normalised
    e-mail address and phone number (shared.privacy.person_hmac with CIVIC_PRIVACY_SECRET)."""

    erasure_id: UUID
    registration_ids: list[UUID]
    email_hmac: str | None = None
    phone_hmac: str | None = None


class PersonExportRequestedV1(Payload):
    """Staff asked for everything civic holds about one person (GDPR Art. 15). ``sealed`` holds
    ``{"email": ..., "phone": ...}`` under the export's key (``key_id``, deleted when the export expires);
    each service that holds personal data answers with its records sealed under the same key."""

    export_id: UUID
    key_id: UUID
    sealed: str


class RegistrationsAnonymisedV1(Payload):
    """Retention ran out after the meeting: personal data of these registrations is gone."""

    meeting_id: UUID
    registration_ids: list[UUID]


_P = "civic.registration"


def _retired(name: str, payload: type[Payload], personal: tuple[str, ...]) -> EventSpec:
    """Version 1 of a personal event: carried personal data in the clear; nothing publishes it any more."""
    return spec(f"{_P}.{name}", payload, "registration", "Retired (see v2).", personal, private=True, retired=True)


class MeetingDeadlineApproachingV1(DeadlineApproachingV1):
    """A meeting's registration closes (``registration_closes``), or the meeting starts (``meeting_starts``),
    ``offset_seconds`` from now."""


EVENTS: list[EventSpec] = [
    spec(f"{_P}.meeting.published.v1", MeetingPublishedV1, "registration", "A meeting was published."),
    spec(f"{_P}.meeting.changed.v1", MeetingChangedV1, "registration", "A published meeting changed."),
    spec(f"{_P}.meeting.cancelled.v1", MeetingCancelledV1, "registration", "A meeting was cancelled."),
    spec(f"{_P}.meeting.seats_changed.v1", SeatsChangedV1, "registration", "Seat counts of a meeting changed."),
    spec(f"{_P}.registration.received.v1", RegistrationReceivedV1, "registration", "A registration came in."),
    _retired("registration.confirmed.v1", RegistrationConfirmedV1, ("contact", "ticket_code", "manage_url")),
    _retired("registration.waitlisted.v1", RegistrationWaitlistedV1, ("contact", "manage_url")),
    _retired("registration.promoted.v1", RegistrationPromotedV1, ("contact", "ticket_code", "manage_url")),
    _retired("registration.cancelled.v1", RegistrationCancelledV1, ("contact",)),
    spec(
        f"{_P}.registration.checked_in.v1",
        RegistrationCheckedInV1,
        "registration",
        "A ticket was checked in at the door.",
    ),
    _retired("person.erased.v1", PersonErasedV1, ("email_sha256", "phone_sha256")),
    spec(
        f"{_P}.registration.confirmed.v2",
        RegistrationConfirmedV2,
        "registration",
        "A registration holds a seat (contact, ticket code and manage link sealed).",
        ("sealed",),
        private=True,
    ),
    spec(
        f"{_P}.registration.waitlisted.v2",
        RegistrationWaitlistedV2,
        "registration",
        "A registration is on the waiting list (contact and manage link sealed).",
        ("sealed",),
        private=True,
    ),
    spec(
        f"{_P}.registration.promoted.v2",
        RegistrationPromotedV2,
        "registration",
        "A waitlisted registration got a seat (contact, ticket code and manage link sealed).",
        ("sealed",),
        private=True,
    ),
    spec(
        f"{_P}.registration.cancelled.v2",
        RegistrationCancelledV2,
        "registration",
        "A registration was cancelled (contact sealed).",
        ("sealed",),
        private=True,
    ),
    spec(
        f"{_P}.person.erased.v2",
        PersonErasedV2,
        "registration",
        "A person's data was erased on request (keyed HMACs of the contact only).",
        ("email_hmac", "phone_hmac"),
        private=True,
    ),
    spec(
        f"{_P}.person.export_requested.v1",
        PersonExportRequestedV1,
        "registration",
        "Staff asked for a person's data export (the e-mail address or phone number sealed).",
        ("sealed",),
        private=True,
    ),
    spec(
        f"{_P}.registrations.anonymised.v1",
        RegistrationsAnonymisedV1,
        "registration",
        "Personal data of a past meeting's registrations was anonymised.",
    ),
    spec(
        f"{_P}.deadline.approaching.v1",
        MeetingDeadlineApproachingV1,
        "registration",
        "A registration deadline or a meeting start is near.",
    ),
]
