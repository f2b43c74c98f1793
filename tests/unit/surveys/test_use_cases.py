"""The surveys use cases against a fake unit of work and a small in-memory store: which rules refuse what, which
events are recorded, and what a retry, a used-up code or a resumed draft does."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from uuid import UUID, uuid4

import pytest

from services.surveys import domain
from services.surveys.domain import Survey
from services.surveys.store import ClosedMeanwhile, CodeRefused
from services.surveys.use_cases import drafts, responses, surveys
from services.surveys.use_cases.common import Units
from shared.contracts.surveys import SurveyClosedV1, SurveyOpenedV1, SurveyPublishedV1
from shared.errors import Conflict, Forbidden, Invalid, NotFound
from shared.unit_of_work import FakeUnitOfWork

NOW = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
DEFINITION = {
    "sections": [
        {
            "id": "use",
            "title": "What you use",
            "questions": [
                {"id": "online", "kind": "yes_no", "text": "Online?", "required": True},
                {"id": "idea", "kind": "free_text", "text": "Your idea", "max_length": 200},
            ],
        }
    ]
}


class FakeStore:
    """The part of ``Store`` the use cases below need, over dicts; ``record_response`` keeps the SQL function's
    rules (a seen key answers its first day, a code is used once, a closed survey refuses)."""

    def __init__(self) -> None:
        self.surveys: dict[UUID, Survey] = {}
        self.secrets: dict[UUID, bytes] = {}
        self.codes: dict[bytes, bool] = {}
        self.keys: dict[bytes, date] = {}
        self.responses: list[dict[str, Any]] = []
        self.drafts: dict[bytes, dict[str, Any]] = {}
        self.deadlines: list[UUID] = []

    def add(self, **fields: Any) -> Survey:
        sid = uuid4()
        s = Survey(
            **{
                "id": sid,
                "tenant": f"kreis-{secrets.token_hex(4)}",  # the response path caches by tenant and ref
                "slug": "umfrage",
                "title": "Umfrage",
                "introduction": "",
                "estimated_minutes": None,
                "opens_at": NOW - timedelta(days=1),
                "closes_at": NOW + timedelta(days=9),
                "results_public": False,
                "process_id": None,
                "access": "public",
                "reminder_offsets": [86400],
                "state": "open",
                "created_at": NOW,
                "updated_at": NOW,
                "published_at": None,
                "opened_at": None,
                "closed_at": None,
                **fields,
            }
        )
        self.surveys[sid] = s
        self.secrets[sid] = secrets.token_bytes(32)
        return s

    async def survey(self, tenant: str, survey_id: UUID, *, for_update: bool = False) -> Survey | None:
        s = self.surveys.get(survey_id)
        return s if s is not None and s.tenant == tenant else None

    async def for_responses(self, tenant: str, ref: str) -> tuple[Survey, bytes] | None:
        for s in self.surveys.values():
            if s.tenant == tenant and s.slug == ref and s.state != "draft":
                return s, self.secrets[s.id]
        return None

    async def definition(self, tenant: str, survey_id: UUID) -> dict[str, Any]:
        return DEFINITION

    async def mark_published(self, tenant: str, survey_id: UUID, now: datetime) -> Survey:
        s = self.surveys[survey_id] = replace(self.surveys[survey_id], state="published", published_at=now)
        return s

    async def schedule_closing(self, s: Survey) -> None:
        self.deadlines.append(s.id)

    async def open_due(self, now: datetime) -> list[dict[str, Any]]:
        due = [s for s in self.surveys.values() if s.state == "published" and s.opens_at <= now]
        for s in due:
            self.surveys[s.id] = replace(s, state="open", opened_at=now)
        return [
            {"id": s.id, "tenant": s.tenant, "title": s.title, "closes_at": s.closes_at, "process_id": None}
            for s in due
        ]

    async def delete_expired_drafts(self, now: datetime) -> None:
        pass

    async def due_to_close(self, now: datetime) -> list[tuple[str, UUID]]:
        return [
            (s.tenant, s.id) for s in self.surveys.values() if s.state in ("published", "open") and s.closes_at <= now
        ]

    async def lock_exclusively(self, survey_id: UUID) -> None:
        pass

    async def mark_closed(self, tenant: str, survey_id: UUID, now: datetime) -> dict[str, Any] | None:
        s = self.surveys[survey_id]
        if s.state not in ("published", "open"):
            return None
        self.surveys[survey_id] = replace(s, state="closed", closed_at=now)
        return {"process_id": s.process_id}

    async def response_count(self, tenant: str, survey_id: UUID) -> int:
        return sum(1 for r in self.responses if r["survey_id"] == survey_id)

    async def submission_day(self, tenant: str, survey_id: UUID, key_hash: bytes) -> date | None:
        return self.keys.get(key_hash)

    async def record_response(self, **r: Any) -> date | None:
        if r["key_hash"] is not None and r["key_hash"] in self.keys:
            return self.keys[r["key_hash"]]
        if self.surveys[r["survey_id"]].state not in ("published", "open"):
            raise ClosedMeanwhile()
        if r["code_hash"] is not None:
            if self.codes.get(r["code_hash"]) is not False:
                raise CodeRefused()
            self.codes[r["code_hash"]] = True
        if r["key_hash"] is not None:
            self.keys[r["key_hash"]] = r["day"]
        self.responses.append(r)
        return None

    async def add_draft(self, tenant: str, survey_id: UUID, code_hash: bytes, expires_at: datetime) -> None:
        self.drafts[code_hash] = {}

    async def draft(
        self, tenant: str, survey_id: UUID, code_hash: bytes, now: datetime, *, for_update: bool = False
    ) -> dict[str, Any] | None:
        found = self.drafts.get(code_hash)
        return dict(found) if found is not None else None

    async def save_draft(self, tenant: str, survey_id: UUID, code_hash: bytes, answers: dict[str, Any]) -> None:
        self.drafts[code_hash] = dict(answers)

    async def take_draft(self, tenant: str, survey_id: UUID, code_hash: bytes, now: datetime) -> dict[str, Any] | None:
        return self.drafts.pop(code_hash, None)


class FakeUnits:
    """``ctx.uows(Store)`` for the fake: each unit of work is kept, so a test reads what each committed."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.made: list[FakeUnitOfWork[FakeStore]] = []

    def __call__(self) -> FakeUnitOfWork[FakeStore]:
        uow = FakeUnitOfWork(self.store, "surveys")
        self.made.append(uow)
        return uow

    def reading(self) -> Reading:
        return Reading(self.store)

    def payloads(self) -> list[Any]:
        return [p for uow in self.made for p in uow.payloads()]

    def rollbacks(self) -> int:
        return sum(uow.rollbacks for uow in self.made)


class Reading:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    async def __aenter__(self) -> FakeStore:
        return self.store

    async def __aexit__(self, *exc: object) -> None:
        pass


def units(store: FakeStore) -> tuple[Units, FakeUnits]:
    fake = FakeUnits(store)
    return cast(Units, fake), fake


# --- publish, open, close ------------------------------------------------------------------------


async def test_publishing_freezes_a_draft_schedules_its_reminders_and_records_the_event() -> None:
    store = FakeStore()
    s = store.add(state="draft")
    uows, fake = units(store)
    published = await surveys.publish(uows, s.tenant, s.id, now=NOW, url=lambda s: f"https://civic.test/{s.slug}")
    assert published.state == "published" and published.published_at == NOW
    assert store.deadlines == [s.id]
    [event] = fake.payloads()
    assert isinstance(event, SurveyPublishedV1) and event.url == "https://civic.test/umfrage"

    with pytest.raises(Conflict) as again:
        await surveys.publish(uows, s.tenant, s.id, now=NOW, url=lambda s: "")
    assert again.value.code == "survey-frozen" and again.value.extensions == {"state": "published"}
    assert len(fake.payloads()) == 1 and fake.rollbacks() == 1


async def test_a_survey_that_closed_already_cannot_be_published() -> None:
    store = FakeStore()
    s = store.add(state="draft", closes_at=NOW - timedelta(minutes=1))
    uows, fake = units(store)
    with pytest.raises(Invalid) as refused:
        await surveys.publish(uows, s.tenant, s.id, now=NOW, url=lambda s: "")
    assert refused.value.code == "invalid-survey"
    assert [f.as_dict()["pointer"] for f in refused.value.fields] == ["/closes_at"]
    assert fake.payloads() == [] and store.deadlines == []


async def test_publishing_an_unknown_survey_is_not_found() -> None:
    uows, _ = units(FakeStore())
    with pytest.raises(NotFound):
        await surveys.publish(uows, "kreis", uuid4(), now=NOW, url=lambda s: "")


async def test_the_clock_opens_and_closes_on_time_once_each() -> None:
    store = FakeStore()
    opening = store.add(state="published", opens_at=NOW, closes_at=NOW + timedelta(days=2))
    closing = store.add(state="open", closes_at=NOW)
    later = store.add(state="published", opens_at=NOW + timedelta(hours=1))
    uows, fake = units(store)
    assert await surveys.tick(uows, NOW) == [("opened", opening.id), ("closed", closing.id)]
    assert await surveys.tick(uows, NOW) == []
    opened, closed = fake.payloads()
    assert isinstance(opened, SurveyOpenedV1) and opened.survey_id == opening.id
    assert isinstance(closed, SurveyClosedV1) and closed.survey_id == closing.id and closed.responses == 0
    assert store.surveys[later.id].state == "published"


# --- responses -----------------------------------------------------------------------------------


async def test_a_closed_survey_takes_no_response() -> None:
    store = FakeStore()
    s = store.add(closes_at=NOW)
    uows, _ = units(store)
    with pytest.raises(Conflict) as refused:
        await responses.submit(uows, s.tenant, s.slug, answers={"online": True}, now=NOW)
    assert refused.value.code == "survey-closed" and refused.value.title == "Survey is not open"
    assert store.responses == []


async def test_a_survey_closed_between_the_check_and_the_write_refuses_the_same_way() -> None:
    store = FakeStore()
    s = store.add()
    uows, _ = units(store)
    await responses.submit(uows, s.tenant, s.slug, answers={"online": True}, now=NOW)  # caches the open survey
    await surveys.close(uows, s.tenant, s.id, NOW)
    with pytest.raises(Conflict) as refused:
        await responses.submit(uows, s.tenant, s.slug, answers={"online": True}, now=NOW)
    assert refused.value.code == "survey-closed" and len(store.responses) == 1


async def test_an_access_code_is_used_once() -> None:
    store = FakeStore()
    s = store.add(access="token")
    store.codes[domain.code_hash(store.secrets[s.id], "ABCD-EFGH-JKMN")] = False
    uows, _ = units(store)
    with pytest.raises(Invalid) as missing:
        await responses.submit(uows, s.tenant, s.slug, answers={"online": True}, now=NOW)
    assert [f.as_dict()["pointer"] for f in missing.value.fields] == ["/token"]
    replayed, _ = await responses.submit(
        uows, s.tenant, s.slug, answers={"online": True}, token="abcd efgh jkmn", now=NOW
    )
    assert not replayed
    with pytest.raises(Forbidden) as used:
        await responses.submit(uows, s.tenant, s.slug, answers={"online": False}, token="ABCD-EFGH-JKMN", now=NOW)
    assert used.value.code == "access-code-invalid" and len(store.responses) == 1


async def test_the_same_submission_key_again_is_a_retry_that_stores_nothing() -> None:
    store = FakeStore()
    s = store.add()
    uows, _ = units(store)
    first = await responses.submit(uows, s.tenant, s.slug, answers={"online": True}, key="key-000001", now=NOW)
    later = NOW + timedelta(days=1)
    again = await responses.submit(uows, s.tenant, s.slug, answers={"online": False}, key="key-000001", now=later)
    assert first == (False, {"survey_id": str(s.id), "day": "2026-10-01", "status": "recorded"})
    assert again == (True, first[1]) and len(store.responses) == 1
    # The event carries the day only, and the response keeps no finer time.
    event = store.responses[0]["event"]
    assert '"time":"2026-10-01T00:00:00Z"' in event[3] and store.responses[0]["day"] == date(2026, 10, 1)


async def test_bad_answers_are_listed_and_nothing_is_stored() -> None:
    store = FakeStore()
    s = store.add()
    uows, _ = units(store)
    with pytest.raises(Invalid) as refused:
        await responses.submit(uows, s.tenant, s.slug, answers={"online": "maybe"}, now=NOW)
    assert refused.value.code == "invalid-answers"
    assert [f.as_dict()["question"] for f in refused.value.fields] == ["online"]
    assert store.responses == []


# --- drafts --------------------------------------------------------------------------------------


async def test_a_draft_is_saved_resumed_and_ends_with_its_submission() -> None:
    store = FakeStore()
    s = store.add()
    uows, fake = units(store)
    started = await drafts.start_draft(uows, s.tenant, s.slug, now=NOW)
    assert started.code is not None and started.answers == {}
    code = started.code

    with pytest.raises(Invalid):
        await drafts.save_draft_section(uows, s.tenant, s.slug, code, "use", {"online": 3}, partial=True, now=NOW)
    assert fake.rollbacks() == 1
    saved = await drafts.save_draft_section(
        uows, s.tenant, s.slug, code, "use", {"idea": "Mehr online"}, partial=True, now=NOW
    )
    assert saved.answers == {"idea": "Mehr online"}
    with pytest.raises(NotFound):
        await drafts.save_draft_section(uows, s.tenant, s.slug, code, "nope", {}, partial=True, now=NOW)

    resumed = await drafts.read_draft(uows, s.tenant, s.slug, code.lower().replace("-", " "), now=NOW)
    assert resumed.code is None and resumed.answers == {"idea": "Mehr online"}

    # A required answer still missing: refused (the draft is kept by the transaction's rollback).
    with pytest.raises(Invalid):
        await responses.submit(uows, s.tenant, s.slug, answers={}, draft=code, key="draft-key-1", now=NOW)
    assert fake.rollbacks() == 3 and store.responses == []
    store.drafts[domain.code_hash(store.secrets[s.id], code)] = saved.answers  # as the rollback leaves it

    sent = await responses.submit(
        uows, s.tenant, s.slug, answers={"online": True}, draft=code, key="draft-key-1", now=NOW
    )
    assert sent[0] is False and store.responses[0]["answers"] == {"online": True, "idea": "Mehr online"}
    # The draft is gone; the same submission again (a double click) gets the first receipt.
    again = await responses.submit(
        uows, s.tenant, s.slug, answers={"online": True}, draft=code, key="draft-key-1", now=NOW
    )
    assert again == (True, sent[1]) and len(store.responses) == 1
    with pytest.raises(NotFound) as gone:
        await drafts.read_draft(uows, s.tenant, s.slug, code, now=NOW)
    assert gone.value.code == "draft-not-found"


async def test_no_draft_is_started_before_the_survey_opens() -> None:
    store = FakeStore()
    s = store.add(state="published", opens_at=NOW + timedelta(days=1))
    uows, _ = units(store)
    with pytest.raises(Conflict) as refused:
        await drafts.start_draft(uows, s.tenant, s.slug, now=NOW)
    assert refused.value.code == "survey-not-yet-open" and store.drafts == {}
