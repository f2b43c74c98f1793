"""Removing a free text (or the whole response it belongs to) that names someone, with the results kept right.

A free text is stored twice: in its response's answers and as a row of ``free_texts`` (what staff page
through). The two share no id (responses stay unlinkable to anything), so the response is found by the text
itself: the survey's responses whose answer to that question is exactly this text. The counters lose what the
removed part had added (reads sum over shards, so the correction goes to shard 0). A ``removals`` row records
that it happened without anything that leads back to the response.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID, uuid4

from services.surveys import domain
from services.surveys.use_cases.common import Units, questionnaire, survey
from shared.errors import Conflict, NotFound

Scope = Literal["text", "response"]


async def remove(
    uows: Units,
    tenant: str,
    survey_id: UUID,
    text_id: UUID,
    *,
    scope: Scope,
    reason: str,
    by: str,
    now: datetime,
) -> dict[str, Any]:
    async with uows.reading() as store:
        s = await survey(store, tenant, survey_id)
        qn = await questionnaire(store, s)
    async with uows() as uow:
        # Exclusive against responses (which hold the lock shared): counters and rows change together.
        await uow.store.lock_exclusively(s.id)
        text = await uow.store.free_text(tenant, s.id, text_id)
        if text is None:
            raise NotFound("about:blank", detail="no such free text (or it was removed already)")
        question, body = text
        matches = await uow.store.responses_with_text(tenant, s.id, question, body)
        if scope == "response" and len(matches) > 1:
            # Two people wrote exactly this: which response is meant cannot be told, and a wrong one would lose
            # someone else's answers. Removing the text is still possible (it is the same text in both).
            raise Conflict(
                "response-ambiguous",
                "Ambiguous",
                detail="several responses hold exactly this text; remove the text instead of the whole response",
            )
        decrements: list[tuple[str, int, float]] = []
        if matches:
            response_id, answers = matches[0]
            if scope == "response":
                decrements = domain.counter_increments(qn, answers)
                for q in qn.questions():
                    if q.kind == domain.TEXT and q.id in answers and q.id != question:
                        await uow.store.delete_one_free_text(tenant, s.id, q.id, answers[q.id])
                await uow.store.delete_response(response_id)
            else:
                decrements = [(f"q:{question}:answered", 1, 0.0)]
                await uow.store.drop_answer(response_id, question)
        await uow.store.delete_free_text(text_id)
        if decrements:
            await uow.store.add_to_counters(tenant, s.id, [(k, -c, -t) for k, c, t in decrements], shard=0)
        removal_id = uuid4()
        await uow.store.add_removal(removal_id, tenant, s.id, question, scope, reason, by, now)
    return {"removal_id": removal_id, "scope": scope, "question_id": question, "removed_at": now}


async def removals(uows: Units, tenant: str, survey_id: UUID) -> list[dict[str, Any]]:
    """Which free texts and responses staff removed, and why."""
    async with uows.reading() as store:
        s = await survey(store, tenant, survey_id)
        return await store.removals(tenant, s.id)
