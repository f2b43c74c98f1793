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


class RegistrationsAnonymisedV1(Payload):
    """Retention ran out after the meeting: personal data of these registrations is gone."""

    meeting_id: UUID
    registration_ids: list[UUID]


_P = "civic.registration"
EVENTS: list[EventSpec] = [
    spec(f"{_P}.meeting.published.v1", MeetingPublishedV1, "registration", "A meeting was published."),
    spec(f"{_P}.meeting.changed.v1", MeetingChangedV1, "registration", "A published meeting changed."),
    spec(f"{_P}.meeting.cancelled.v1", MeetingCancelledV1, "registration", "A meeting was cancelled."),
    spec(f"{_P}.meeting.seats_changed.v1", SeatsChangedV1, "registration", "Seat counts of a meeting changed."),
    spec(f"{_P}.registration.received.v1", RegistrationReceivedV1, "registration", "A registration came in."),
    spec(
        f"{_P}.registration.confirmed.v1",
        RegistrationConfirmedV1,
        "registration",
        "A registration holds a seat.",
        ("contact", "ticket_code", "manage_url"),
    ),
    spec(
        f"{_P}.registration.waitlisted.v1",
        RegistrationWaitlistedV1,
        "registration",
        "A registration is on the waiting list.",
        ("contact", "manage_url"),
    ),
    spec(
        f"{_P}.registration.promoted.v1",
        RegistrationPromotedV1,
        "registration",
        "A waitlisted registration got a seat.",
        ("contact", "ticket_code", "manage_url"),
    ),
    spec(
        f"{_P}.registration.cancelled.v1",
        RegistrationCancelledV1,
        "registration",
        "A registration was cancelled.",
        ("contact",),
    ),
    spec(
        f"{_P}.registration.checked_in.v1",
        RegistrationCheckedInV1,
        "registration",
        "A ticket was checked in at the door.",
    ),
    spec(
        f"{_P}.person.erased.v1",
        PersonErasedV1,
        "registration",
        "A person's data was erased on request.",
        ("email_sha256", "phone_sha256"),
    ),
    spec(
        f"{_P}.registrations.anonymised.v1",
        RegistrationsAnonymisedV1,
        "registration",
        "Personal data of a past meeting's registrations was anonymised.",
    ),
    spec(
        f"{_P}.deadline.approaching.v1",
        DeadlineApproachingV1,
        "registration",
        "A registration deadline or a meeting start is near.",
    ),
]
