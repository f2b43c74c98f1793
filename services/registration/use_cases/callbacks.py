"""The call-back list: people nobody can mail (no e-mail address) whose registration changed by itself.

A call is written by the use case that made the change, in its transaction (``call``): a promotion from the
waiting list (automatic or by hand), an edit of the meeting's time or place, its cancellation. Staff list the
calls to make and mark each one done; a call that a later change made pointless (the registration cancelled) is
dropped, and erasure and retention delete the calls with the person's data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from services.registration import domain
from services.registration.domain import CallbackReason, Meeting
from services.registration.store import Store
from services.registration.use_cases.common import NOT_FOUND, Units
from shared.errors import NotFound
from shared.unit_of_work import UnitOfWork

#: Done calls listed at most (the latest): the list is for today's work, not an archive.
DONE_SHOWN = 200
#: Open calls listed at most (oldest first).
OPEN_SHOWN = 1000


async def call(
    store: Store, meeting: Meeting, registrations: Iterable[Mapping[str, Any]], reason: CallbackReason, now: datetime
) -> list[UUID]:
    """Put those of ``registrations`` nobody can mail on the call-back list; their ids."""
    ids = [r["id"] for r in registrations if domain.needs_call(r)]
    await store.add_callbacks(meeting.tenant, meeting.id, ids, reason, now)
    return ids


async def listed(uows: Units, tenant: str, *, done: bool, meeting_id: UUID | None = None) -> list[dict[str, Any]]:
    async with uows.reading() as store:
        return await store.callbacks(tenant, done=done, meeting_id=meeting_id, limit=DONE_SHOWN if done else OPEN_SHOWN)


async def mark_done(
    uow: UnitOfWork[Store], tenant: str, callback_id: UUID, *, by: str, now: datetime
) -> dict[str, Any]:
    """The call made: idempotent (marked again, it keeps when and by whom it was first marked)."""
    async with uow:
        if not await uow.store.mark_callback_done(callback_id, tenant, now, by):
            raise NotFound(NOT_FOUND, detail="no such call")
        found = await uow.store.callback(callback_id, tenant)
        assert found is not None
        return found
