"""What the use cases of several aggregates share: links into civic, seat figures, tickets, sealed events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Self
from uuid import UUID

from services.registration import domain, tickets
from services.registration.domain import Meeting
from services.registration.personal import sealed
from services.registration.store import Store
from shared.bus.outbox import Pending
from shared.contracts.envelope import Payload
from shared.contracts.registration import Contact, RegistrationCancelledV2, SeatsChangedV1
from shared.links import link
from shared.settings import Settings
from shared.unit_of_work import UnitOfWork

NOT_FOUND = "about:blank"  # a plain 404: the problem document has no type of its own


class Readings(Protocol):
    """What opens a store on a pooled connection outside a transaction (``UnitsOfWork.reading()``)."""

    async def __aenter__(self) -> Store: ...

    async def __aexit__(self, *exc: object) -> None: ...


class Units(Protocol):
    """``UnitsOfWork[Store]``: a new unit of work per call, or a reading store; ``pool`` tells processes'
    connection pools apart (the seat queue keeps one queue per pool and meeting)."""

    pool: Any

    def __call__(self) -> UnitOfWork[Store]: ...

    def reading(self) -> Readings: ...


@dataclass(frozen=True)
class Urls:
    """Links into civic's pages, as the installation is configured."""

    links: Any
    public_base_url: str

    @classmethod
    def of(cls, settings: Settings) -> Self:
        return cls(settings.links, settings.public_base_url)

    def manage(self, secret: str) -> str:
        return link(self.links, self.public_base_url, "manage", secret=secret)

    def meeting(self, tenant: str, meeting_id: UUID) -> str:
        return link(self.links, self.public_base_url, "meeting", tenant=tenant, meeting_id=meeting_id)


def subject(meeting_id: UUID) -> str:
    return f"meeting/{meeting_id}"


def pending(meeting: Meeting, events: list[Payload]) -> list[Pending]:
    return [Pending(e, meeting.tenant, subject(meeting.id)) for e in events]


def contact_of(reg: dict[str, Any]) -> Contact:
    return Contact(name=reg["name"] or "", email=reg["email"], phone=reg["phone"], locale=reg["locale"])


def ticket_for(meeting: Meeting, registration_id: UUID, slot_id: UUID | None) -> str:
    slot = meeting.slot(slot_id)
    day = domain.local_day(slot.starts_at if slot else meeting.starts_at)
    return tickets.sign(meeting.signing_key, registration_id, meeting.id, day)


def seats_changed(meeting_id: UUID, capacity: int | None, confirmed: int, waitlisted: int) -> SeatsChangedV1:
    return SeatsChangedV1(
        meeting_id=meeting_id,
        capacity=capacity,
        confirmed=confirmed,
        waitlisted=waitlisted,
        seats_left=domain.seats_left(capacity, confirmed),
    )


async def seats_event(store: Store, meeting: Meeting) -> SeatsChangedV1:
    """Seat figures of the whole meeting, as counted now."""
    whole = await store.counts(meeting.id, whole=True)
    return seats_changed(meeting.id, meeting.total_capacity, whole.confirmed_seats, whole.waitlisted)


async def cancelled_event(
    store: Store, reg: dict[str, Any], by: domain.CancelledBy, seats_left: int | None
) -> RegistrationCancelledV2:
    """The contact sealed, if the registration still has one (an erased registration has none)."""
    if not (reg["name"] or reg["email"] or reg["phone"]):
        return RegistrationCancelledV2(
            registration_id=reg["id"], meeting_id=reg["meeting_id"], cancelled_by=by, seats_left=seats_left
        )
    return sealed(
        RegistrationCancelledV2,
        await store.registrant_key(reg["id"], reg["tenant"]),
        registration_id=reg["id"],
        contact=contact_of(reg),
        meeting_id=reg["meeting_id"],
        cancelled_by=by,
        seats_left=seats_left,
    )
