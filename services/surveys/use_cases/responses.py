"""Answering a survey: one anonymous response with its results and its event, or the first receipt again for a
retry with the same submission key."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, date, datetime, time
from typing import Any
from uuid import uuid4

from services.surveys import domain
from services.surveys.domain import Survey
from services.surveys.store import ClosedMeanwhile, CodeRefused, Store
from services.surveys.use_cases.common import Units, answerable, questionnaire
from shared.bus.outbox import Outbox, notify_channel
from shared.contracts.registry import REGISTRY
from shared.contracts.surveys import ResponseCompletedV1

SERVICE = "surveys"
#: Envelopes of response events, written by the response's own statement (``Store.record_response``).
_OUTBOX = Outbox(SERVICE)

Receipt = dict[str, Any]


def receipt(s: Survey, day: date) -> Receipt:
    return {"survey_id": str(s.id), "day": day.isoformat(), "status": "recorded"}


async def submit(
    uows: Units,
    tenant: str,
    ref: str,
    *,
    answers: dict[str, Any],
    token: str | None = None,
    draft: str | None = None,
    key: str | None = None,
    now: datetime,
    shards: int = 1,
) -> tuple[bool, Receipt]:
    """Store one anonymous response with its results; (replayed, receipt). A retry with the same
    submission key answers with the first receipt and stores nothing. With ``draft`` the answers
    are the draft's (and ``answers`` on top), and the draft ends in the response's transaction."""
    if draft is None:
        # One statement on a pooled connection: its own transaction, one round trip.
        async with uows.reading() as store:
            s, secret = await answerable(store, tenant, ref)
            domain.check_open(s, now)
            return await _record(store, s, secret, answers, token, key, now, shards)
    async with uows() as uow:
        s, secret = await answerable(uow.store, tenant, ref)
        domain.check_open(s, now)
        stored = await uow.store.take_draft(tenant, s.id, domain.code_hash(secret, draft), now)
        if stored is None:
            # Gone: submitted before (a double click whose first request won, or a retry) or never there.
            first = await uow.store.submission_day(tenant, s.id, domain.submission_key_hash(key)) if key else None
            if first is not None:
                return True, receipt(s, first)
            raise domain.draft_not_found()
        # A refusal below raises, and the transaction's rollback keeps the draft.
        return await _record(uow.store, s, secret, stored | answers, token, key, now, shards)


async def _record(
    store: Store,
    s: Survey,
    secret: bytes,
    answers: dict[str, Any],
    token: str | None,
    key: str | None,
    now: datetime,
    shards: int,
) -> tuple[bool, Receipt]:
    qn = await questionnaire(store, s)
    accepted, errors = domain.validate_answers(qn, answers)
    if s.access == "token" and not token:
        errors.append(
            {
                "in": "body",
                "pointer": "/token",
                "field": "token",
                "code": "required",
                "detail": "this survey needs the code from your letter",
            }
        )
    if errors:
        raise domain.invalid_answers(errors)
    day = domain.day_of(now)
    texts = [(uuid4(), q.id, accepted[q.id]) for q in qn.questions() if q.kind == domain.TEXT and q.id in accepted]
    # Events about responses carry no finer time than the day, and no subject: a per-survey sequence row would
    # be one hot row every response waits on.
    event = _OUTBOX.envelope(
        ResponseCompletedV1(survey_id=s.id, day=day),
        tenant=s.tenant,
        subject=None,
        time=datetime.combine(day, time(0), tzinfo=UTC),
    )
    try:
        first = await store.record_response(
            tenant=s.tenant,
            survey_id=s.id,
            key_hash=domain.submission_key_hash(key) if key is not None else None,
            day=day,
            code_hash=domain.code_hash(secret, token) if s.access == "token" and token else None,
            response_id=uuid4(),
            answers=accepted,
            texts=texts,
            shard=secrets.randbelow(max(1, shards)),
            increments=domain.counter_increments(qn, accepted),
            event=(event.id, REGISTRY.get(event.type).stream, event.type, event.model_dump_json()),
            channel=notify_channel(SERVICE),
        )
    except ClosedMeanwhile:
        raise domain.not_open(replace(s, state="closed"), "closed") from None
    except CodeRefused:
        raise domain.code_invalid() from None
    if first is not None:
        return True, receipt(s, first)
    return False, receipt(s, day)
