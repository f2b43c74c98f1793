"""Reading what a survey brought: results from the counters, free texts page by page, the raw responses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any
from uuid import UUID

from services.surveys import domain
from services.surveys.domain import Survey
from services.surveys.store import Store
from services.surveys.use_cases.common import Units, public_survey, questionnaire, survey


async def _results(store: Store, s: Survey) -> dict[str, Any]:
    qn = await questionnaire(store, s)
    out = domain.results_from_counters(qn, await store.counters(s.tenant, s.id))
    return {"survey_id": str(s.id), "title": s.title, "state": s.state, **out}


async def _texts(store: Store, s: Survey, question_id: str, after: UUID | None, limit: int) -> dict[str, Any]:
    qn = await questionnaire(store, s)
    q = qn.by_id().get(question_id)
    if q is None or q.kind != domain.TEXT:
        raise domain.not_found("free-text question")
    items = [{"id": str(i), "text": body} for i, body in await store.texts(s.tenant, s.id, question_id, after, limit)]
    return {"items": items, "next_after": items[-1]["id"] if len(items) == limit else None}


async def staff_results(uows: Units, tenant: str, survey_id: UUID) -> dict[str, Any]:
    """Live results."""
    async with uows.reading() as store:
        return await _results(store, await survey(store, tenant, survey_id))


async def public_results(uows: Units, tenant: str, ref: str) -> dict[str, Any]:
    """Results after closing, if the survey makes them public."""
    async with uows.reading() as store:
        s = await public_survey(store, tenant, ref)
        domain.check_results_visible(s)
        return await _results(store, s)


async def staff_texts(
    uows: Units, tenant: str, survey_id: UUID, question_id: str, after: UUID | None, limit: int
) -> dict[str, Any]:
    async with uows.reading() as store:
        return await _texts(store, await survey(store, tenant, survey_id), question_id, after, limit)


async def public_texts(
    uows: Units, tenant: str, ref: str, question_id: str, after: UUID | None, limit: int
) -> dict[str, Any]:
    async with uows.reading() as store:
        s = await public_survey(store, tenant, ref)
        domain.check_results_visible(s)
        return await _texts(store, s, question_id, after, limit)


Rows = AsyncIterator[tuple[UUID, date, dict[str, Any]]]


async def export(uows: Units, tenant: str, survey_id: UUID) -> tuple[Survey, domain.Questionnaire, Rows]:
    """The survey, its questionnaire and its responses, read as they are streamed (in one transaction)."""
    async with uows.reading() as store:
        s = await survey(store, tenant, survey_id)
        qn = await questionnaire(store, s)

    async def rows() -> Rows:
        async with uows() as uow:
            async for row in uow.store.response_rows(tenant, survey_id):
                yield row

    return s, qn, rows()
