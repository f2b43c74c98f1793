"""All SQL of the surveys service: surveys, access codes, responses with their results, drafts, removals.

``Store`` is bound to one connection (a unit of work's transaction, or a pooled connection for reading); its
methods answer plain values and ``domain.Survey``; the rules and refusals live in ``use_cases``/``domain``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from services.surveys.domain import RESPONSES, Survey
from shared.bus.deadlines import register_deadline
from shared.contracts.common import DeadlineKind
from shared.db import Conn

_COLUMNS = (
    "id, tenant, slug, title, introduction, estimated_minutes, opens_at, closes_at, results_public, process_id, "
    "access, reminder_offsets, state, created_at, updated_at, published_at, opened_at, closed_at"
)


def lock_key(survey_id: UUID) -> int:
    """An advisory-lock key per survey: responses take it shared, closing, removing and mixing exclusively."""
    return int.from_bytes(survey_id.bytes[:8], "big", signed=True)


def _ref(ref: str) -> tuple[UUID | None, str]:
    try:
        return UUID(ref), ref
    except ValueError:
        return None, ref


class ClosedMeanwhile(Exception):
    """``record_response`` found the survey closed (after its window check passed)."""


class CodeRefused(Exception):
    """``record_response`` found the access code unknown or used up."""


class SlugTaken(Exception):
    """Another survey of the tenant has this slug."""


class Store:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    # --- surveys ---------------------------------------------------------------------------------

    async def survey(self, tenant: str, survey_id: UUID, *, for_update: bool = False) -> Survey | None:
        lock = " for update" if for_update else ""
        row = await self.conn.fetchrow(
            f"select {_COLUMNS} from surveys where tenant = $1 and id = $2{lock}", tenant, survey_id
        )
        return Survey.of(row) if row is not None else None

    async def public_survey(self, tenant: str, ref: str) -> Survey | None:
        """A survey by id or slug, as the public link names it; drafts are not public."""
        sid, slug = _ref(ref)
        row = await self.conn.fetchrow(
            f"select {_COLUMNS} from surveys where tenant = $1 and (id = $2 or slug = $3) and state <> 'draft'",
            tenant,
            sid,
            slug,
        )
        return Survey.of(row) if row is not None else None

    async def for_responses(self, tenant: str, ref: str) -> tuple[Survey, bytes] | None:
        """A public survey with its code secret."""
        sid, slug = _ref(ref)
        row = await self.conn.fetchrow(
            f"select {_COLUMNS}, token_secret from surveys where tenant = $1 and (id = $2 or slug = $3) "
            "and state <> 'draft'",
            tenant,
            sid,
            slug,
        )
        return (Survey.of(row), bytes(row["token_secret"])) if row is not None else None

    async def surveys(self, tenant: str) -> list[Survey]:
        rows = await self.conn.fetch(
            f"select {_COLUMNS} from surveys where tenant = $1 order by opens_at desc, id", tenant
        )
        return [Survey.of(r) for r in rows]

    async def definition(self, tenant: str, survey_id: UUID) -> dict[str, Any]:
        raw = await self.conn.fetchval(
            "select definition from surveys where tenant = $1 and id = $2", tenant, survey_id
        )
        return dict(json.loads(raw))

    async def token_secret(self, tenant: str, survey_id: UUID) -> bytes:
        secret = await self.conn.fetchval(
            "select token_secret from surveys where tenant = $1 and id = $2", tenant, survey_id
        )
        return bytes(secret)

    async def insert_survey(
        self, survey_id: UUID, tenant: str, slug: str, fields: dict[str, Any], secret: bytes, now: datetime
    ) -> Survey | None:
        """None when the slug is taken. ``fields``: title ... definition, as the columns name them."""
        row = await self.conn.fetchrow(
            "insert into surveys (id, tenant, slug, title, introduction, estimated_minutes, opens_at, closes_at, "
            "results_public, process_id, access, reminder_offsets, definition, token_secret, created_at, updated_at) "
            "values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15) "
            f"on conflict (tenant, slug) do nothing returning {_COLUMNS}",
            survey_id,
            tenant,
            slug,
            *self._settable(fields),
            secret,
            now,
        )
        return Survey.of(row) if row is not None else None

    async def update_survey(
        self, tenant: str, survey_id: UUID, slug: str, fields: dict[str, Any], now: datetime
    ) -> Survey:
        try:
            row = await self.conn.fetchrow(
                "update surveys set slug = $3, title = $4, introduction = $5, estimated_minutes = $6, "
                "opens_at = $7, closes_at = $8, results_public = $9, process_id = $10, access = $11, "
                "reminder_offsets = $12, definition = $13, updated_at = $14 "
                f"where tenant = $1 and id = $2 returning {_COLUMNS}",
                tenant,
                survey_id,
                slug,
                *self._settable(fields),
                now,
            )
        except asyncpg.UniqueViolationError:
            raise SlugTaken(slug) from None
        return Survey.of(row)

    @staticmethod
    def _settable(f: dict[str, Any]) -> list[Any]:
        return [
            f["title"],
            f["introduction"],
            f["estimated_minutes"],
            f["opens_at"],
            f["closes_at"],
            f["results_public"],
            f["process_id"],
            f["access"],
            f["reminder_offsets"],
            json.dumps(f["definition"]),
        ]

    async def mark_published(self, tenant: str, survey_id: UUID, now: datetime) -> Survey:
        row = await self.conn.fetchrow(
            f"update surveys set state = 'published', published_at = $3 where tenant = $1 and id = $2 "
            f"returning {_COLUMNS}",
            tenant,
            survey_id,
            now,
        )
        return Survey.of(row)

    async def schedule_closing(self, s: Survey) -> None:
        """The survey's deadline with the bus, for its "deadline approaching" reminders."""
        await register_deadline(
            self.conn,
            tenant=s.tenant,
            kind=DeadlineKind.SURVEY_CLOSES,
            subject_id=str(s.id),
            due_at=s.closes_at,
            offsets=[timedelta(seconds=o) for o in s.reminder_offsets],
            title=s.title,
        )

    # --- the clock -------------------------------------------------------------------------------

    async def open_due(self, now: datetime) -> list[asyncpg.Record]:
        """Open every published survey whose window has begun; the state guard makes it happen once."""
        rows: list[asyncpg.Record] = await self.conn.fetch(
            "update surveys set state = 'open', opened_at = $1 where state = 'published' and opens_at <= $1 "
            "returning id, tenant, title, closes_at, process_id",
            now,
        )
        return rows

    async def delete_expired_drafts(self, now: datetime) -> None:
        await self.conn.execute("delete from drafts where expires_at <= $1", now)

    async def due_to_close(self, now: datetime) -> list[tuple[str, UUID]]:
        rows = await self.conn.fetch(
            "select id, tenant from surveys where state in ('published', 'open') and closes_at <= $1", now
        )
        return [(r["tenant"], r["id"]) for r in rows]

    async def lock_exclusively(self, survey_id: UUID) -> None:
        """Exclusive against responses (which hold the lock shared): until commit, no response is written."""
        await self.conn.execute("select pg_advisory_xact_lock($1)", lock_key(survey_id))

    async def mark_closed(self, tenant: str, survey_id: UUID, now: datetime) -> dict[str, Any] | None:
        """Close the survey if still due: its ``process_id``; None when it is not due (closed already)."""
        row = await self.conn.fetchrow(
            "update surveys set state = 'closed', closed_at = $3 where tenant = $1 and id = $2 "
            "and state in ('published', 'open') and closes_at <= $3 returning id, process_id",
            tenant,
            survey_id,
            now,
        )
        return {"process_id": row["process_id"]} if row is not None else None

    async def response_count(self, tenant: str, survey_id: UUID) -> int:
        count = await self.conn.fetchval(
            "select coalesce(sum(count), 0) from result_counters where tenant = $1 and survey_id = $2 and key = $3",
            tenant,
            survey_id,
            RESPONSES,
        )
        return int(count)

    # --- access codes ----------------------------------------------------------------------------

    async def add_codes(self, tenant: str, survey_id: UUID, hashes: Sequence[bytes]) -> None:
        await self.conn.execute(
            "insert into access_tokens (tenant, survey_id, token_hash) "
            "select $1, $2, h from unnest($3::bytea[]) as h on conflict do nothing",
            tenant,
            survey_id,
            list(hashes),
        )

    async def code_usable(self, tenant: str, survey_id: UUID, code_hash: bytes) -> bool:
        usable = await self.conn.fetchval(
            "select not used from access_tokens where tenant = $1 and survey_id = $2 and token_hash = $3",
            tenant,
            survey_id,
            code_hash,
        )
        return bool(usable)

    # --- responses -------------------------------------------------------------------------------

    async def submission_day(self, tenant: str, survey_id: UUID, key_hash: bytes) -> date | None:
        day: date | None = await self.conn.fetchval(
            "select day from submissions where tenant = $1 and survey_id = $2 and key_hash = $3",
            tenant,
            survey_id,
            key_hash,
        )
        return day

    async def record_response(
        self,
        *,
        tenant: str,
        survey_id: UUID,
        key_hash: bytes | None,
        day: date,
        code_hash: bytes | None,
        response_id: UUID,
        answers: dict[str, Any],
        texts: Sequence[tuple[UUID, str, str]],
        shard: int,
        increments: Sequence[tuple[str, int, float]],
        event: tuple[UUID, str, str, str],
        channel: str,
    ) -> date | None:
        """One response, its texts, counters and event (id, stream, type, envelope) in one statement: None when
        stored, the day of the first submission when the key was seen before. A single statement is its own
        transaction, and one round trip instead of seven is what lets a flood through (migration 002)."""
        event_id, stream, event_type, envelope = event
        try:
            first: date | None = await self.conn.fetchval(
                "select record_response($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, "
                "$16, $17, $18, $19, $20)",
                lock_key(survey_id),
                tenant,
                survey_id,
                key_hash,
                day,
                code_hash,
                response_id,
                json.dumps(answers),
                [i for i, _, _ in texts],
                [q for _, q, _ in texts],
                [b for _, _, b in texts],
                shard,
                [k for k, _, _ in increments],
                [c for _, c, _ in increments],
                [t for _, _, t in increments],
                event_id,
                stream,
                event_type,
                envelope,
                channel,
            )
        except asyncpg.PostgresError as exc:
            if exc.sqlstate == "CV001":
                raise ClosedMeanwhile() from None
            if exc.sqlstate == "CV002":
                raise CodeRefused() from None
            raise
        return first

    async def response_rows(self, tenant: str, survey_id: UUID) -> AsyncIterator[tuple[UUID, date, dict[str, Any]]]:
        """Every response of the survey, from a server-side cursor (needs a transaction)."""
        cursor = self.conn.cursor(
            "select id, day, answers from responses where tenant = $1 and survey_id = $2 order by id",
            tenant,
            survey_id,
            prefetch=1000,
        )
        async for r in cursor:
            yield r["id"], r["day"], json.loads(r["answers"])

    # --- drafts ----------------------------------------------------------------------------------

    async def add_draft(self, tenant: str, survey_id: UUID, code_hash: bytes, expires_at: datetime) -> None:
        await self.conn.execute(
            "insert into drafts (tenant, survey_id, code_hash, expires_at) values ($1, $2, $3, $4)",
            tenant,
            survey_id,
            code_hash,
            expires_at,
        )

    async def draft(
        self, tenant: str, survey_id: UUID, code_hash: bytes, now: datetime, *, for_update: bool = False
    ) -> dict[str, Any] | None:
        """A draft's answers, None when there is none (or it ended)."""
        lock = " for update" if for_update else ""
        stored = await self.conn.fetchval(
            "select answers from drafts where tenant = $1 and survey_id = $2 and code_hash = $3 "
            f"and expires_at > $4{lock}",
            tenant,
            survey_id,
            code_hash,
            now,
        )
        return dict(json.loads(stored)) if stored is not None else None

    async def take_draft(self, tenant: str, survey_id: UUID, code_hash: bytes, now: datetime) -> dict[str, Any] | None:
        """Delete the draft and answer its answers (None when there was none)."""
        stored = await self.conn.fetchval(
            "delete from drafts where tenant = $1 and survey_id = $2 and code_hash = $3 and expires_at > $4 "
            "returning answers",
            tenant,
            survey_id,
            code_hash,
            now,
        )
        return dict(json.loads(stored)) if stored is not None else None

    async def save_draft(self, tenant: str, survey_id: UUID, code_hash: bytes, answers: dict[str, Any]) -> None:
        await self.conn.execute(
            "update drafts set answers = $4 where tenant = $1 and survey_id = $2 and code_hash = $3",
            tenant,
            survey_id,
            code_hash,
            json.dumps(answers),
        )

    async def delete_draft(self, tenant: str, survey_id: UUID, code_hash: bytes) -> bool:
        done = await self.conn.fetchval(
            "delete from drafts where tenant = $1 and survey_id = $2 and code_hash = $3 returning true",
            tenant,
            survey_id,
            code_hash,
        )
        return bool(done)

    # --- results ---------------------------------------------------------------------------------

    async def counters(self, tenant: str, survey_id: UUID) -> dict[str, tuple[int, float]]:
        rows = await self.conn.fetch(
            "select key, sum(count)::bigint as c, sum(total)::float8 as t from result_counters "
            "where tenant = $1 and survey_id = $2 group by key",
            tenant,
            survey_id,
        )
        return {r["key"]: (r["c"], r["t"]) for r in rows}

    async def texts(
        self, tenant: str, survey_id: UUID, question_id: str, after: UUID | None, limit: int
    ) -> list[tuple[UUID, str]]:
        rows = await self.conn.fetch(
            "select id, body from free_texts where tenant = $1 and survey_id = $2 and question_id = $3 "
            "and ($4::uuid is null or id > $4) order by id limit $5",
            tenant,
            survey_id,
            question_id,
            after,
            limit,
        )
        return [(r["id"], r["body"]) for r in rows]

    async def add_to_counters(
        self, tenant: str, survey_id: UUID, deltas: Sequence[tuple[str, int, float]], *, shard: int = 0
    ) -> None:
        await self.conn.execute(
            "insert into result_counters (tenant, survey_id, key, shard, count, total) "
            "select $1, $2, u.k, $6, u.c, u.t from unnest($3::text[], $4::bigint[], $5::numeric[]) as u(k, c, t) "
            "on conflict (survey_id, key, shard) do update "
            "set count = result_counters.count + excluded.count, total = result_counters.total + excluded.total",
            tenant,
            survey_id,
            [k for k, _, _ in deltas],
            [c for _, c, _ in deltas],
            [t for _, _, t in deltas],
            shard,
        )

    # --- removals --------------------------------------------------------------------------------

    async def free_text(self, tenant: str, survey_id: UUID, text_id: UUID) -> tuple[str, str] | None:
        """(question id, body) of a free text, locked for its removal."""
        row = await self.conn.fetchrow(
            "select question_id, body from free_texts where tenant = $1 and survey_id = $2 and id = $3 for update",
            tenant,
            survey_id,
            text_id,
        )
        return (row["question_id"], row["body"]) if row is not None else None

    async def responses_with_text(
        self, tenant: str, survey_id: UUID, question_id: str, body: str
    ) -> list[tuple[UUID, dict[str, Any]]]:
        """At most two responses whose answer to the question is exactly ``body``, locked."""
        rows = await self.conn.fetch(
            "select id, answers from responses where tenant = $1 and survey_id = $2 and answers ->> $3 = $4 "
            "order by id limit 2 for update",
            tenant,
            survey_id,
            question_id,
            body,
        )
        return [(r["id"], json.loads(r["answers"]) if isinstance(r["answers"], str) else r["answers"]) for r in rows]

    async def delete_one_free_text(self, tenant: str, survey_id: UUID, question_id: str, body: str) -> None:
        """One free text with this body (texts and responses share no id: the body is what ties them)."""
        await self.conn.execute(
            "delete from free_texts where ctid = (select ctid from free_texts where tenant = $1 and "
            "survey_id = $2 and question_id = $3 and body = $4 limit 1)",
            tenant,
            survey_id,
            question_id,
            body,
        )

    async def delete_response(self, response_id: UUID) -> None:
        await self.conn.execute("delete from responses where id = $1", response_id)

    async def drop_answer(self, response_id: UUID, question_id: str) -> None:
        await self.conn.execute("update responses set answers = answers - $2 where id = $1", response_id, question_id)

    async def delete_free_text(self, text_id: UUID) -> None:
        await self.conn.execute("delete from free_texts where id = $1", text_id)

    async def add_removal(
        self,
        removal_id: UUID,
        tenant: str,
        survey_id: UUID,
        question_id: str,
        scope: str,
        reason: str,
        by: str,
        now: datetime,
    ) -> None:
        await self.conn.execute(
            "insert into removals (id, tenant, survey_id, question_id, scope, reason, removed_by, removed_at) "
            "values ($1, $2, $3, $4, $5, $6, $7, $8)",
            removal_id,
            tenant,
            survey_id,
            question_id,
            scope,
            reason,
            by,
            now,
        )

    async def removals(self, tenant: str, survey_id: UUID) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            "select id as removal_id, question_id, scope, reason, removed_by, removed_at from removals "
            "where tenant = $1 and survey_id = $2 order by removed_at, id",
            tenant,
            survey_id,
        )
        return [dict(r) for r in rows]

    # --- unlinkability ---------------------------------------------------------------------------

    async def unmixed(self) -> list[tuple[str, UUID]]:
        rows = await self.conn.fetch("select tenant, id from surveys where access = 'token' and not mixed")
        return [(r["tenant"], r["id"]) for r in rows]

    async def mix(self, tenant: str, survey_id: UUID) -> None:
        """Rewrite a token survey's codes, responses and texts in random order (in the caller's transaction,
        holding the survey's lock exclusively): see ``use_cases.surveys.mix``."""
        for table in ("access_tokens", "responses", "free_texts"):
            await self.conn.execute(
                f"with gone as (delete from {table} where tenant = $1 and survey_id = $2 returning *) "
                f"insert into {table} select * from gone order by random()",
                tenant,
                survey_id,
            )
        await self.conn.execute(
            "update result_counters set count = count where tenant = $1 and survey_id = $2", tenant, survey_id
        )
        await self.conn.execute(
            "update submissions set day = day where tenant = $1 and survey_id = $2", tenant, survey_id
        )
        await self.conn.execute("update surveys set mixed = true where tenant = $1 and id = $2", tenant, survey_id)
