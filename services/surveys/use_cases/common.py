"""What the use cases share: how they get a store, and the caches of what a published survey never changes."""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from cachetools import LRUCache, TTLCache

from services.surveys import domain
from services.surveys.domain import Survey
from services.surveys.store import Store
from shared.unit_of_work import UnitOfWork


class ReadingStore(Protocol):
    async def __aenter__(self) -> Store: ...

    async def __aexit__(self, *exc: object) -> None: ...


class Units(Protocol):
    """``ctx.uows(Store)``: ``units()`` a unit of work (a transaction), ``units.reading()`` a store without one."""

    def __call__(self) -> UnitOfWork[Store]: ...

    def reading(self) -> ReadingStore: ...


#: Published questionnaires never change, so each process parses one once.
_questionnaires: LRUCache[UUID, domain.Questionnaire] = LRUCache(maxsize=2000)
#: What a response needs of a published survey (and its code secret), for a moment: it does not change, and
#: closing is checked again in the response's own statement.
_answerable: TTLCache[tuple[str, str], tuple[Survey, bytes]] = TTLCache(maxsize=1000, ttl=2.0)


async def survey(store: Store, tenant: str, survey_id: UUID, *, for_update: bool = False) -> Survey:
    s = await store.survey(tenant, survey_id, for_update=for_update)
    if s is None:
        raise domain.not_found()
    return s


async def public_survey(store: Store, tenant: str, ref: str) -> Survey:
    s = await store.public_survey(tenant, ref)
    if s is None:
        raise domain.not_found()
    return s


async def questionnaire(store: Store, s: Survey) -> domain.Questionnaire:
    if s.state != "draft" and (hit := _questionnaires.get(s.id)) is not None:
        return hit
    qn = domain.questionnaire_from_dict(await store.definition(s.tenant, s.id))
    if s.state != "draft":
        _questionnaires[s.id] = qn
    return qn


async def answerable(store: Store, tenant: str, ref: str) -> tuple[Survey, bytes]:
    """The public survey by id or slug and its code secret (cached for a moment)."""
    hit = _answerable.get((tenant, ref))
    if hit is not None:
        return hit
    found = await store.for_responses(tenant, ref)
    if found is None:
        raise domain.not_found()
    _answerable[(tenant, ref)] = found
    return found
