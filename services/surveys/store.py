"""The surveys service's use cases against its schema: drafts, publishing, the clock, access codes,
responses with their results in one transaction, reading results, and the mixing job."""

from __future__ import annotations

import json
import logging
import secrets
import time as time_
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from services.surveys import domain
from services.surveys.config import SurveysConfig
from services.surveys.schemas import ResponseIn, SurveyIn
from shared.bus.deadlines import register_deadline
from shared.bus.outbox import Outbox, notify_channel
from shared.clock import Clock
from shared.contracts.common import DeadlineKind
from shared.contracts.surveys import ResponseCompletedV1, SurveyClosedV1, SurveyOpenedV1, SurveyPublishedV1
from shared.db import Conn
from shared.http.problems import Problem
from shared.links import link
from shared.service import ServiceContext

log = logging.getLogger(__name__)

DEADLINE_KIND = DeadlineKind.SURVEY_CLOSES

_COLUMNS = (
    "id, tenant, slug, title, introduction, estimated_minutes, opens_at, closes_at, results_public, process_id, "
    "access, reminder_offsets, state, created_at, updated_at, published_at, opened_at, closed_at"
)


class DayClock:
    """A clock that tells only the day: events about responses carry no finer time."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def now(self) -> datetime:
        return datetime.combine(self.clock.now().date(), time(0), tzinfo=UTC)


@dataclass(frozen=True)
class Survey:
    id: UUID
    tenant: str
    slug: str
    title: str
    introduction: str
    estimated_minutes: int | None
    opens_at: datetime
    closes_at: datetime
    results_public: bool
    process_id: UUID | None
    access: str
    reminder_offsets: list[int]
    state: str
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    opened_at: datetime | None
    closed_at: datetime | None

    @classmethod
    def of(cls, row: Any) -> Survey:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})


def lock_key(survey_id: UUID) -> int:
    """An advisory-lock key per survey: responses take it shared, closing and mixing exclusively."""
    return int.from_bytes(survey_id.bytes[:8], "big", signed=True)


def not_found(what: str = "survey") -> Problem:
    return Problem(404, "Not found", type_="not-found", detail=f"no such {what}")


def _ref(ref: str) -> tuple[UUID | None, str]:
    try:
        return UUID(ref), ref
    except ValueError:
        return None, ref


class Surveys:
    def __init__(self, ctx: ServiceContext, config: SurveysConfig) -> None:
        self.ctx = ctx
        self.config = config
        self.completed = Outbox(ctx.name, clock=DayClock(ctx.clock))
        # Published questionnaires never change, so each process parses one once.
        self._frozen: dict[UUID, domain.Questionnaire] = {}
        self._recent: dict[tuple[str, str], tuple[float, Survey, bytes]] = {}

    @property
    def pool(self) -> Any:
        return self.ctx.pool

    def url(self, s: Survey) -> str:
        return link(self.ctx.settings.links, self.ctx.settings.public_base_url, "survey", tenant=s.tenant, slug=s.slug)

    # --- reading ---------------------------------------------------------------------------------

    async def get(self, tenant: str, survey_id: UUID, conn: Conn | None = None) -> Survey:
        row = await (conn or self.pool).fetchrow(
            f"select {_COLUMNS} from surveys where tenant = $1 and id = $2", tenant, survey_id
        )
        if row is None:
            raise not_found()
        return Survey.of(row)

    async def find(self, tenant: str, ref: str) -> Survey:
        """A survey by id or slug, as the public link names it; drafts are not public."""
        sid, slug = _ref(ref)
        row = await self.pool.fetchrow(
            f"select {_COLUMNS} from surveys where tenant = $1 and (id = $2 or slug = $3) and state <> 'draft'",
            tenant,
            sid,
            slug,
        )
        if row is None:
            raise not_found()
        return Survey.of(row)

    async def _for_responses(self, tenant: str, ref: str) -> tuple[Survey, bytes]:
        """The survey (and its code secret) for taking responses, cached for a moment: what a response
        needs of a published survey does not change, and closing is checked again in the transaction."""
        now = time_.monotonic()
        hit = self._recent.get((tenant, ref))
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        sid, slug = _ref(ref)
        row = await self.pool.fetchrow(
            f"select {_COLUMNS}, token_secret from surveys where tenant = $1 and (id = $2 or slug = $3) "
            "and state <> 'draft'",
            tenant,
            sid,
            slug,
        )
        if row is None:
            raise not_found()
        found = (Survey.of(row), bytes(row["token_secret"]))
        if len(self._recent) > 1000:
            self._recent.clear()
        self._recent[(tenant, ref)] = (now + 2.0, *found)
        return found

    async def all(self, tenant: str) -> list[Survey]:
        rows = await self.pool.fetch(
            f"select {_COLUMNS} from surveys where tenant = $1 order by opens_at desc, id", tenant
        )
        return [Survey.of(r) for r in rows]

    async def questionnaire(self, s: Survey) -> domain.Questionnaire:
        if s.state != "draft" and s.id in self._frozen:
            return self._frozen[s.id]
        raw = await self.pool.fetchval("select definition from surveys where tenant = $1 and id = $2", s.tenant, s.id)
        qn = domain.questionnaire_from_dict(json.loads(raw))
        if s.state != "draft":
            self._frozen[s.id] = qn
        return qn

    async def definition(self, s: Survey) -> dict[str, Any]:
        raw = await self.pool.fetchval("select definition from surveys where tenant = $1 and id = $2", s.tenant, s.id)
        definition = dict(json.loads(raw))
        # A section given without an id has the one the questionnaire gives it (s1, s2, ...), so clients can
        # name it, e.g. when saving a draft's section.
        for i, section in enumerate(definition.get("sections", [])):
            section.setdefault("id", f"s{i + 1}")
        return definition

    # --- drafts ----------------------------------------------------------------------------------

    def _checked(self, body: SurveyIn) -> tuple[dict[str, Any], list[int]]:
        errors = domain.check_window(body.opens_at, body.closes_at)
        errors += domain.check_questionnaire(body.questionnaire())
        hours = body.reminder_offsets_hours if body.reminder_offsets_hours is not None else None
        offsets = [h * 3600 for h in (hours if hours is not None else self.config.reminder_offsets_hours)]
        if any(o <= 0 for o in offsets):
            errors.append({"pointer": "/reminder_offsets_hours", "detail": "offsets are positive hours"})
        if errors:
            raise Problem(
                422, "Invalid survey", type_="invalid-survey", detail="The survey has problems.", errors=errors
            )
        return body.definition(), offsets

    async def create(self, tenant: str, body: SurveyIn) -> Survey:
        definition, offsets = self._checked(body)
        sid = uuid4()
        now = self.ctx.clock.now()
        slug = body.slug or str(sid)
        row = await self.pool.fetchrow(
            "insert into surveys (id, tenant, slug, title, introduction, estimated_minutes, opens_at, closes_at, "
            "results_public, process_id, access, reminder_offsets, definition, token_secret, created_at, updated_at) "
            "values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15) "
            f"on conflict (tenant, slug) do nothing returning {_COLUMNS}",
            sid,
            tenant,
            slug,
            body.title,
            body.introduction,
            body.estimated_minutes,
            body.opens_at,
            body.closes_at,
            body.results_public,
            body.process_id,
            body.access,
            offsets,
            json.dumps(definition),
            secrets.token_bytes(32),
            now,
        )
        if row is None:
            raise Problem(409, "Conflict", type_="slug-taken", detail=f"the slug {slug!r} is already used")
        return Survey.of(row)

    async def replace(self, tenant: str, survey_id: UUID, body: SurveyIn) -> Survey:
        definition, offsets = self._checked(body)
        async with self.pool.acquire() as conn, conn.transaction():
            s = await self._for_update(conn, tenant, survey_id)
            if s.state != "draft":
                raise _frozen(s)
            try:
                row = await conn.fetchrow(
                    "update surveys set slug = $3, title = $4, introduction = $5, estimated_minutes = $6, "
                    "opens_at = $7, closes_at = $8, results_public = $9, process_id = $10, access = $11, "
                    "reminder_offsets = $12, definition = $13, updated_at = $14 "
                    f"where tenant = $1 and id = $2 returning {_COLUMNS}",
                    tenant,
                    survey_id,
                    body.slug or s.slug,
                    body.title,
                    body.introduction,
                    body.estimated_minutes,
                    body.opens_at,
                    body.closes_at,
                    body.results_public,
                    body.process_id,
                    body.access,
                    offsets,
                    json.dumps(definition),
                    self.ctx.clock.now(),
                )
            except asyncpg.UniqueViolationError:
                raise Problem(409, "Conflict", type_="slug-taken", detail="the slug is already used") from None
        return Survey.of(row)

    async def _for_update(self, conn: Conn, tenant: str, survey_id: UUID) -> Survey:
        row = await conn.fetchrow(
            f"select {_COLUMNS} from surveys where tenant = $1 and id = $2 for update", tenant, survey_id
        )
        if row is None:
            raise not_found()
        return Survey.of(row)

    async def publish(self, tenant: str, survey_id: UUID) -> Survey:
        now = self.ctx.clock.now()
        async with self.pool.acquire() as conn, conn.transaction():
            s = await self._for_update(conn, tenant, survey_id)
            if s.state != "draft":
                raise _frozen(s)
            if s.closes_at <= now:
                raise Problem(
                    422,
                    "Invalid survey",
                    type_="invalid-survey",
                    detail="closes_at is in the past",
                    errors=[{"pointer": "/closes_at", "detail": "must be in the future to publish"}],
                )
            row = await conn.fetchrow(
                f"update surveys set state = 'published', published_at = $3 where tenant = $1 and id = $2 "
                f"returning {_COLUMNS}",
                tenant,
                survey_id,
                now,
            )
            s = Survey.of(row)
            await register_deadline(
                conn,
                tenant=tenant,
                kind=DEADLINE_KIND,
                subject_id=str(s.id),
                due_at=s.closes_at,
                offsets=[timedelta(seconds=o) for o in s.reminder_offsets],
                title=s.title,
            )
            await self.ctx.outbox.record(
                conn,
                SurveyPublishedV1(
                    survey_id=s.id,
                    title=s.title,
                    opens_at=s.opens_at,
                    closes_at=s.closes_at,
                    url=self.url(s),
                    process_id=s.process_id,
                    results_public=s.results_public,
                ),
                tenant=tenant,
                subject=f"survey/{s.id}",
            )
        return s

    # --- the clock -------------------------------------------------------------------------------

    async def tick(self) -> list[tuple[str, UUID]]:
        """Open and close the surveys whose time has come; each transition (and its event) happens once,
        because the state change is guarded in SQL and the event is recorded in its transaction."""
        now = self.ctx.clock.now()
        done: list[tuple[str, UUID]] = []
        async with self.pool.acquire() as conn, conn.transaction():
            opened = await conn.fetch(
                "update surveys set state = 'open', opened_at = $1 where state = 'published' and opens_at <= $1 "
                "returning id, tenant, title, closes_at, process_id",
                now,
            )
            for r in opened:
                await self.ctx.outbox.record(
                    conn,
                    SurveyOpenedV1(
                        survey_id=r["id"], title=r["title"], closes_at=r["closes_at"], process_id=r["process_id"]
                    ),
                    tenant=r["tenant"],
                    subject=f"survey/{r['id']}",
                )
                done.append(("opened", r["id"]))
        # Drafts end with their survey's window; nothing of them is kept after it.
        await self.pool.execute("delete from drafts where expires_at <= $1", now)
        due = await self.pool.fetch(
            "select id, tenant from surveys where state in ('published', 'open') and closes_at <= $1", now
        )
        for r in due:
            if await self._close(r["tenant"], r["id"], now):
                done.append(("closed", r["id"]))
        return done

    async def _close(self, tenant: str, survey_id: UUID, now: datetime) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            # Exclusive against responses (which hold it shared): the count below is final.
            await conn.execute("select pg_advisory_xact_lock($1)", lock_key(survey_id))
            row = await conn.fetchrow(
                "update surveys set state = 'closed', closed_at = $3 where tenant = $1 and id = $2 "
                "and state in ('published', 'open') and closes_at <= $3 returning id, process_id",
                tenant,
                survey_id,
                now,
            )
            if row is None:
                return False
            count = await conn.fetchval(
                "select coalesce(sum(count), 0) from result_counters where tenant = $1 and survey_id = $2 and key = $3",
                tenant,
                survey_id,
                domain.RESPONSES,
            )
            await self.ctx.outbox.record(
                conn,
                SurveyClosedV1(survey_id=survey_id, closed_at=now, responses=int(count), process_id=row["process_id"]),
                tenant=tenant,
                subject=f"survey/{survey_id}",
            )
        return True

    # --- access codes ----------------------------------------------------------------------------

    async def issue_codes(self, tenant: str, survey_id: UUID, count: int) -> list[str]:
        """New single-use codes; only their keyed hashes are stored, so they are shown this once."""
        async with self.pool.acquire() as conn, conn.transaction():
            s = await self._for_update(conn, tenant, survey_id)
            if s.access != "token":
                raise Problem(409, "Conflict", type_="not-a-token-survey", detail="the survey is open to everyone")
            if s.state == "closed":
                raise Problem(409, "Conflict", type_="survey-closed", detail="the survey is closed")
            secret = await conn.fetchval(
                "select token_secret from surveys where tenant = $1 and id = $2", tenant, survey_id
            )
            codes = list({domain.new_code() for _ in range(count)})
            await conn.execute(
                "insert into access_tokens (tenant, survey_id, token_hash) "
                "select $1, $2, h from unnest($3::bytea[]) as h on conflict do nothing",
                tenant,
                survey_id,
                [domain.code_hash(bytes(secret), c) for c in codes],
            )
        return codes

    # --- responses -------------------------------------------------------------------------------

    async def submit(
        self, tenant: str, ref: str, body: ResponseIn, key: str | None = None
    ) -> tuple[bool, dict[str, Any]]:
        """Store one anonymous response with its results; (replayed, receipt). A retry with the same
        submission key answers with the first receipt and stores nothing. With ``body.draft`` the answers
        are the draft's (and the body's on top), and the draft ends in the response's transaction."""
        s, secret = await self._for_responses(tenant, ref)
        now = self.ctx.clock.now()
        self._check_window(s, now)
        key = key or body.submission_key
        if body.draft is None:
            return await self._record(self.pool, s, secret, body, dict(body.answers), key, now)
        async with self.pool.acquire() as conn, conn.transaction():
            stored = await conn.fetchval(
                "delete from drafts where tenant = $1 and survey_id = $2 and code_hash = $3 and expires_at > $4 "
                "returning answers",
                tenant,
                s.id,
                domain.code_hash(secret, body.draft),
                now,
            )
            if stored is None:
                # Gone: submitted before (a double click whose first request won, or a retry) or never there.
                first = await self._seen(conn, s, key)
                if first is not None:
                    return True, self._receipt(s, first)
                raise _draft_not_found()
            # A refusal below raises, and the transaction's rollback keeps the draft.
            return await self._record(conn, s, secret, body, json.loads(stored) | body.answers, key, now)

    async def _seen(self, conn: Conn, s: Survey, key: str | None) -> date | None:
        if key is None:
            return None
        day: date | None = await conn.fetchval(
            "select day from submissions where tenant = $1 and survey_id = $2 and key_hash = $3",
            s.tenant,
            s.id,
            domain.submission_key_hash(key),
        )
        return day

    async def _record(
        self,
        conn: Conn,
        s: Survey,
        secret: bytes,
        body: ResponseIn,
        answers: dict[str, Any],
        key: str | None,
        now: datetime,
    ) -> tuple[bool, dict[str, Any]]:
        tenant = s.tenant
        qn = await self.questionnaire(s)
        accepted, errors = domain.validate_answers(qn, answers)
        if s.access == "token" and not body.token:
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
            raise Problem(
                422,
                "Invalid answers",
                type_="invalid-answers",
                detail=f"{len(errors)} answer(s) need attention.",
                errors=errors,
            )
        day = domain.day_of(now)
        increments = domain.counter_increments(qn, accepted)
        texts = [(q.id, accepted[q.id]) for q in qn.questions() if q.kind == domain.TEXT and q.id in accepted]
        shard = secrets.randbelow(max(1, self.config.counter_shards))
        event = self.completed.envelope(ResponseCompletedV1(survey_id=s.id, day=day), tenant=tenant, subject=None)
        try:
            # The outbox row is written by record_response (migration 002) in the same statement as the
            # response: one round trip instead of seven, which is what lets a flood through. No subject: a
            # per-survey sequence row would be one hot row every response waits on.
            first = await conn.fetchval(
                "select record_response($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, "
                "$16, $17, $18, $19, $20)",
                lock_key(s.id),
                tenant,
                s.id,
                domain.submission_key_hash(key) if key is not None else None,
                day,
                domain.code_hash(secret, body.token) if s.access == "token" and body.token else None,
                uuid4(),
                json.dumps(accepted),
                [uuid4() for _ in texts],
                [q for q, _ in texts],
                [b for _, b in texts],
                shard,
                [k for k, _, _ in increments],
                [c for _, c, _ in increments],
                [t for _, _, t in increments],
                event.id,
                self.completed.registry.get(event.type).stream,
                event.type,
                event.model_dump_json(),
                notify_channel(self.ctx.name),
            )
        except asyncpg.PostgresError as exc:
            if exc.sqlstate == "CV001":
                self._check_window(replace(s, state="closed"), now)
            if exc.sqlstate == "CV002":
                raise _code_invalid() from None
            raise
        if first is not None:
            return True, self._receipt(s, first)
        return False, self._receipt(s, day)

    # --- drafts and access codes before answering -------------------------------------------------

    async def _open_for_answers(self, tenant: str, ref: str) -> tuple[Survey, bytes, datetime]:
        s, secret = await self._for_responses(tenant, ref)
        now = self.ctx.clock.now()
        self._check_window(s, now)
        return s, secret, now

    async def check_code(self, tenant: str, ref: str, code: str) -> None:
        """Whether a letter's access code is known and unused (using it up is the submission's job)."""
        s, secret, _ = await self._open_for_answers(tenant, ref)
        if s.access != "token":
            raise Problem(409, "Conflict", type_="not-a-token-survey", detail="the survey is open to everyone")
        usable = await self.pool.fetchval(
            "select not used from access_tokens where tenant = $1 and survey_id = $2 and token_hash = $3",
            tenant,
            s.id,
            domain.code_hash(secret, code),
        )
        if not usable:
            raise _code_invalid()

    async def start_draft(self, tenant: str, ref: str) -> tuple[Survey, str, dict[str, Any]]:
        """A new, empty draft; its resume code is returned this once (only a keyed hash is stored)."""
        s, secret, _ = await self._open_for_answers(tenant, ref)
        code = domain.new_code(domain.RESUME_CODE_LENGTH)
        await self.pool.execute(
            "insert into drafts (tenant, survey_id, code_hash, expires_at) values ($1, $2, $3, $4)",
            tenant,
            s.id,
            domain.code_hash(secret, code),
            s.closes_at,
        )
        return s, code, {}

    async def read_draft(self, tenant: str, ref: str, code: str) -> tuple[Survey, dict[str, Any]]:
        s, secret, now = await self._open_for_answers(tenant, ref)
        stored = await self.pool.fetchval(
            "select answers from drafts where tenant = $1 and survey_id = $2 and code_hash = $3 and expires_at > $4",
            tenant,
            s.id,
            domain.code_hash(secret, code),
            now,
        )
        if stored is None:
            raise _draft_not_found()
        return s, dict(json.loads(stored))

    async def save_draft_section(
        self, tenant: str, ref: str, code: str, section_id: str, answers: dict[str, Any], *, partial: bool
    ) -> tuple[Survey, dict[str, Any]]:
        """Answers of one section into the draft, checked as a submission would check them (bad answers:
        one 422 problem listing each, and nothing is saved)."""
        s, secret, now = await self._open_for_answers(tenant, ref)
        qn = await self.questionnaire(s)
        section = domain.section_of(qn, section_id)
        if section is None:
            raise not_found("section")
        async with self.pool.acquire() as conn, conn.transaction():
            stored = await conn.fetchval(
                "select answers from drafts where tenant = $1 and survey_id = $2 and code_hash = $3 "
                "and expires_at > $4 for update",
                tenant,
                s.id,
                domain.code_hash(secret, code),
                now,
            )
            if stored is None:
                raise _draft_not_found()
            saved, errors = domain.save_section(qn, json.loads(stored), section, answers, partial=partial)
            if errors:
                raise Problem(
                    422,
                    "Invalid answers",
                    type_="invalid-answers",
                    detail=f"{len(errors)} answer(s) need attention.",
                    errors=errors,
                )
            await conn.execute(
                "update drafts set answers = $4 where tenant = $1 and survey_id = $2 and code_hash = $3",
                tenant,
                s.id,
                domain.code_hash(secret, code),
                json.dumps(saved),
            )
        return s, saved

    async def delete_draft(self, tenant: str, ref: str, code: str) -> None:
        s, secret = await self._for_responses(tenant, ref)
        done = await self.pool.fetchval(
            "delete from drafts where tenant = $1 and survey_id = $2 and code_hash = $3 returning true",
            tenant,
            s.id,
            domain.code_hash(secret, code),
        )
        if not done:
            raise _draft_not_found()

    def _receipt(self, s: Survey, day: date) -> dict[str, Any]:
        return {"survey_id": str(s.id), "day": day.isoformat(), "status": "recorded"}

    def _check_window(self, s: Survey, now: datetime) -> None:
        why = domain.window_refusal(s.state, s.opens_at, s.closes_at, now)
        if why is None:
            return
        raise Problem(
            409,
            "Survey is not open",
            type_=f"survey-{why.replace('_', '-')}",
            detail=f"responses are taken from {s.opens_at.isoformat()} until {s.closes_at.isoformat()}",
            opens_at=s.opens_at.isoformat(),
            closes_at=s.closes_at.isoformat(),
        )

    # --- results ---------------------------------------------------------------------------------

    async def counters(self, s: Survey) -> dict[str, tuple[int, float]]:
        rows = await self.pool.fetch(
            "select key, sum(count)::bigint as c, sum(total)::float8 as t from result_counters "
            "where tenant = $1 and survey_id = $2 group by key",
            s.tenant,
            s.id,
        )
        return {r["key"]: (r["c"], r["t"]) for r in rows}

    async def results(self, s: Survey) -> dict[str, Any]:
        qn = await self.questionnaire(s)
        out = domain.results_from_counters(qn, await self.counters(s))
        return {"survey_id": str(s.id), "title": s.title, "state": s.state, **out}

    async def texts(self, s: Survey, question_id: str, after: UUID | None, limit: int) -> dict[str, Any]:
        qn = await self.questionnaire(s)
        q = qn.by_id().get(question_id)
        if q is None or q.kind != domain.TEXT:
            raise not_found("free-text question")
        rows = await self.pool.fetch(
            "select id, body from free_texts where tenant = $1 and survey_id = $2 and question_id = $3 "
            "and ($4::uuid is null or id > $4) order by id limit $5",
            s.tenant,
            s.id,
            question_id,
            after,
            limit,
        )
        items = [{"id": str(r["id"]), "text": r["body"]} for r in rows]
        return {"items": items, "next_after": items[-1]["id"] if len(items) == limit else None}

    # --- unlinkability ---------------------------------------------------------------------------

    async def unmixed(self) -> list[tuple[str, UUID]]:
        rows = await self.pool.fetch("select tenant, id from surveys where access = 'token' and not mixed")
        return [(r["tenant"], r["id"]) for r in rows]

    async def mix(self, tenant: str, survey_id: UUID) -> None:
        """Rewrite a token survey's codes, responses and texts in one transaction and in random order.

        A response and the code it used up were written by one transaction, so until now they share a
        transaction id (xmin) and sit at the same end of their tables. Afterwards every row of the survey
        carries this transaction's id and a random place; the old row versions are dead and go with vacuum.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("select pg_advisory_xact_lock($1)", lock_key(survey_id))
            for table in ("access_tokens", "responses", "free_texts"):
                await conn.execute(
                    f"with gone as (delete from {table} where tenant = $1 and survey_id = $2 returning *) "
                    f"insert into {table} select * from gone order by random()",
                    tenant,
                    survey_id,
                )
            await conn.execute(
                "update result_counters set count = count where tenant = $1 and survey_id = $2", tenant, survey_id
            )
            await conn.execute(
                "update submissions set day = day where tenant = $1 and survey_id = $2", tenant, survey_id
            )
            await conn.execute("update surveys set mixed = true where tenant = $1 and id = $2", tenant, survey_id)


def _code_invalid() -> Problem:
    return Problem(403, "Forbidden", type_="access-code-invalid", detail="the access code is unknown or used up")


def _draft_not_found() -> Problem:
    return Problem(
        404,
        "Not found",
        type_="draft-not-found",
        detail="no draft with this resume code; drafts end when they are submitted or the survey closes",
    )


def _frozen(s: Survey) -> Problem:
    return Problem(
        409,
        "Conflict",
        type_="survey-frozen",
        detail=f"the survey is {s.state}; only drafts can be changed or published",
        state=s.state,
    )
