"""Removing a free text (or the whole response it belongs to) that names someone, with the results kept right.

A free text is stored twice: in its response's answers and as a row of ``free_texts`` (what staff page
through). The two share no id (responses stay unlinkable to anything), so the response is found by the text
itself: the survey's responses whose answer to that question is exactly this text. The counters lose what the
removed part had added (read sums over shards, so the correction goes to shard 0). A ``removals`` row records
that it happened without anything that leads back to the response.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal
from uuid import UUID, uuid4

from services.surveys import domain
from shared.db import Conn
from shared.http.problems import Problem

Scope = Literal["text", "response"]


async def remove(
    conn: Conn,
    qn: domain.Questionnaire,
    *,
    tenant: str,
    survey_id: UUID,
    text_id: UUID,
    scope: Scope,
    reason: str,
    by: str,
    now: datetime,
) -> dict[str, Any]:
    """Run in a transaction holding the survey's lock exclusively (no response is written meanwhile)."""
    text = await conn.fetchrow(
        "select question_id, body from free_texts where tenant = $1 and survey_id = $2 and id = $3 for update",
        tenant,
        survey_id,
        text_id,
    )
    if text is None:
        raise Problem(404, "Not found", detail="no such free text (or it was removed already)")
    question = text["question_id"]
    matches = await conn.fetch(
        "select id, answers from responses where tenant = $1 and survey_id = $2 and answers ->> $3 = $4 "
        "order by id limit 2 for update",
        tenant,
        survey_id,
        question,
        text["body"],
    )
    if scope == "response" and len(matches) > 1:
        # Two people wrote exactly this: which response is meant cannot be told, and a wrong one would lose
        # someone else's answers. Removing the text is still possible (it is the same text in both).
        raise Problem(
            409,
            "Ambiguous",
            type_="response-ambiguous",
            detail="several responses hold exactly this text; remove the text instead of the whole response",
        )
    decrements: list[tuple[str, int, float]] = []
    if matches:
        response = matches[0]
        answers = json.loads(response["answers"]) if isinstance(response["answers"], str) else response["answers"]
        if scope == "response":
            decrements = domain.counter_increments(qn, answers)
            for q in qn.questions():
                if q.kind == domain.TEXT and q.id in answers and q.id != question:
                    await conn.execute(
                        "delete from free_texts where ctid = (select ctid from free_texts where tenant = $1 and "
                        "survey_id = $2 and question_id = $3 and body = $4 limit 1)",
                        tenant,
                        survey_id,
                        q.id,
                        answers[q.id],
                    )
            await conn.execute("delete from responses where id = $1", response["id"])
        else:
            decrements = [(f"q:{question}:answered", 1, 0.0)]
            await conn.execute("update responses set answers = answers - $2 where id = $1", response["id"], question)
    await conn.execute("delete from free_texts where id = $1", text_id)
    if decrements:
        await conn.execute(
            "insert into result_counters (tenant, survey_id, key, shard, count, total) "
            "select $1, $2, u.k, 0, -u.c, -u.t from unnest($3::text[], $4::bigint[], $5::numeric[]) as u(k, c, t) "
            "on conflict (survey_id, key, shard) do update "
            "set count = result_counters.count + excluded.count, total = result_counters.total + excluded.total",
            tenant,
            survey_id,
            [k for k, _, _ in decrements],
            [c for _, c, _ in decrements],
            [t for _, _, t in decrements],
        )
    removal_id = uuid4()
    await conn.execute(
        "insert into removals (id, tenant, survey_id, question_id, scope, reason, removed_by, removed_at) "
        "values ($1, $2, $3, $4, $5, $6, $7, $8)",
        removal_id,
        tenant,
        survey_id,
        question,
        scope,
        reason,
        by,
        now,
    )
    return {"removal_id": removal_id, "scope": scope, "question_id": question, "removed_at": now}


async def removals(conn: Conn, tenant: str, survey_id: UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "select id as removal_id, question_id, scope, reason, removed_by, removed_at from removals "
        "where tenant = $1 and survey_id = $2 order by removed_at, id",
        tenant,
        survey_id,
    )
    return [dict(r) for r in rows]
