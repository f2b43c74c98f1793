"""All SQL of the content service: the staff side (processes and their parts, pages and news, QR codes),
publishing transitions, the public read side and the projections of meetings and surveys.

Every statement takes the tenant and filters by it (except the cross-tenant loop passes and the short link,
whose code is unique across tenants); texts go in as jsonb ``{de, en}``. Methods return plain dicts (jsonb
columns decoded) or None where nothing matched: what that means is the use case's to say.

Publishing transitions are single statements that make the event true (``status`` to ``published``,
``announced_at`` from null, ``reported_scans`` up to ``scans``) and return the rows whose event is due, so a
second loop run, a second replica or a retry finds nothing left to do: each event goes out exactly once.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg

from services.content import domain
from shared.bus.consumer import accept_newer
from shared.db import Conn

PROCESS_JSON = ("title", "motto", "summary", "funding")
ARTICLE_JSON = ("title", "summary", "body_md", "body_html")
#: What can be published, by the name the API uses.
TABLES = {"process": "processes", "article": "articles"}
#: Tables whose rows staff delete by id.
PARTS = {"phases", "steps", "contacts", "attachments", "refs", "articles"}


class PageVersion(NamedTuple):
    """A process page's version (``key``: equal keys, equal pages) and the instants at which the clock alone
    changes the page (``boundaries``)."""

    key: tuple[object, ...]
    boundaries: list[datetime]


class Taken(Exception):
    """A unique value (a slug, a step number) is in use already; ``column`` says which."""

    def __init__(self, column: str) -> None:
        super().__init__(column)
        self.column = column


def dump(value: Any) -> str | None:
    """A plain value (dict, list) as jsonb text."""
    return None if value is None else json.dumps(value)


def load(value: str | None) -> Any:
    return json.loads(value) if value is not None else None


def row(record: asyncpg.Record | None, *json_columns: str) -> dict[str, Any] | None:
    if record is None:
        return None
    out = dict(record)
    for c in json_columns:
        if c in out:
            out[c] = load(out[c])
    return out


def _rows(records: list[asyncpg.Record], *json_columns: str) -> list[dict[str, Any]]:
    return [r for r in (row(x, *json_columns) for x in records) if r is not None]


def _t(value: str | None, lang: str) -> str | None:
    return domain.localized(load(value), lang) if value is not None else None


def _article(r: Any, lang: str, *, body: bool) -> dict[str, Any]:
    out = {
        "id": r["id"],
        "kind": r["kind"],
        "slug": r["slug"],
        "title": _t(r["title"], lang),
        "summary": _t(r["summary"], lang),
        "published_at": r["published_at"],
    }
    if body:
        out["body_html"] = _t(r["body_html"], lang)
    return out


def _funding(raw: str | None, lang: str) -> list[dict[str, Any]]:
    return [
        {
            "label": domain.localized(f.get("label"), lang),
            "amount": f.get("amount"),
            "currency": f.get("currency", "EUR"),
            "source": domain.localized(f.get("source"), lang),
            "period": domain.localized(f.get("period"), lang),
        }
        for f in load(raw) or []
    ]


class Store:
    """The content schema on one connection (a unit of work's, or a pooled one for reading)."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def _update(
        self, table: str, tenant: str, id_: UUID, values: dict[str, Any], now: datetime | None
    ) -> asyncpg.Record | None:
        # Column names come from pydantic models' field names, never from the request's keys directly.
        sets = [f"{col} = ${i}" for i, col in enumerate(values, start=3)]
        if now is not None:
            sets.append(f"updated_at = ${len(values) + 3}")
        params: list[Any] = [tenant, id_, *values.values()] + ([now] if now is not None else [])
        if not sets:
            return await self.conn.fetchrow(f"select * from {table} where tenant = $1 and id = $2", tenant, id_)
        return await self.conn.fetchrow(
            f"update {table} set {', '.join(sets)} where tenant = $1 and id = $2 returning *", *params
        )

    # -- processes -------------------------------------------------------------------------------------------

    async def create_process(self, tenant: str, id_: UUID, p: dict[str, Any], now: datetime) -> dict[str, Any]:
        try:
            rec = await self.conn.fetchrow(
                "insert into processes (tenant, id, slug, title, motto, summary, funding, created_at, updated_at)"
                " values ($1, $2, $3, $4, $5, $6, $7, $8, $8) returning *",
                tenant,
                id_,
                p["slug"],
                dump(p["title"]),
                dump(p.get("motto")),
                dump(p.get("summary")),
                dump(p.get("funding")),
                now,
            )
        except asyncpg.UniqueViolationError:
            raise Taken("slug") from None
        out = row(rec, *PROCESS_JSON)
        assert out is not None
        return out

    async def update_process(
        self, tenant: str, process_id: UUID, changes: dict[str, Any], now: datetime
    ) -> dict[str, Any] | None:
        values = {k: v if k == "slug" else dump(v) for k, v in changes.items()}
        try:
            rec = await self._update("processes", tenant, process_id, values, now)
        except asyncpg.UniqueViolationError:
            raise Taken("slug") from None
        return row(rec, *PROCESS_JSON)

    async def delete_process(self, tenant: str, process_id: UUID) -> bool:
        done = await self.conn.fetchval(
            "delete from processes where tenant = $1 and id = $2 returning true", tenant, process_id
        )
        return bool(done)

    async def processes(self, tenant: str) -> list[dict[str, Any]]:
        recs = await self.conn.fetch("select * from processes where tenant = $1 order by created_at, slug", tenant)
        return _rows(recs, *PROCESS_JSON)

    async def process_by_slug(self, tenant: str, slug: str) -> dict[str, Any] | None:
        rec = await self.conn.fetchrow("select * from processes where tenant = $1 and slug = $2", tenant, slug)
        return row(rec, *PROCESS_JSON)

    async def process(self, tenant: str, process_id: UUID) -> dict[str, Any] | None:
        rec = await self.conn.fetchrow("select * from processes where tenant = $1 and id = $2", tenant, process_id)
        return row(rec, *PROCESS_JSON)

    async def process_parts(self, tenant: str, process_id: UUID) -> dict[str, list[dict[str, Any]]]:
        """Every part of a process in all languages, drafts included, e-mail addresses in clear."""
        args = (tenant, process_id)
        c = self.conn
        steps = _rows(
            await c.fetch("select * from steps where tenant = $1 and process_id = $2", *args),
            "title",
            "body_md",
            "body_html",
        )
        return {
            "phases": _rows(
                await c.fetch(
                    "select * from phases where tenant = $1 and process_id = $2 order by starts_on, position", *args
                ),
                "title",
                "description",
            ),
            "steps": sorted(steps, key=lambda s: domain.step_sort_key(s["number"])),
            "contacts": _rows(
                await c.fetch("select * from contacts where tenant = $1 and process_id = $2 order by position", *args),
                "role",
                "unit",
                "opening_hours",
            ),
            "attachments": _rows(
                await c.fetch(
                    "select * from attachments where tenant = $1 and process_id = $2 order by position", *args
                ),
                "title",
            ),
            "references": [
                dict(r)
                for r in await c.fetch(
                    "select id, kind, ref_id, position from refs where tenant = $1 and process_id = $2"
                    " order by position",
                    *args,
                )
            ],
            "articles": _rows(
                await c.fetch(
                    "select id, kind, slug, title, summary, status, publish_at, published_at from articles"
                    " where tenant = $1 and process_id = $2 order by created_at",
                    *args,
                ),
                "title",
                "summary",
            ),
        }

    # -- parts of a process ----------------------------------------------------------------------------------

    async def next_position(self, table: str, tenant: str, process_id: UUID) -> int:
        assert table in PARTS
        return int(
            await self.conn.fetchval(
                f"select coalesce(max(position) + 1, 0) from {table} where tenant = $1 and process_id = $2",
                tenant,
                process_id,
            )
        )

    async def add_phase(
        self, tenant: str, id_: UUID, process_id: UUID, position: int, p: dict[str, Any]
    ) -> dict[str, Any]:
        rec = await self.conn.fetchrow(
            "insert into phases (tenant, id, process_id, position, title, description, starts_on, ends_on)"
            " values ($1, $2, $3, $4, $5, $6, $7, $8) returning *",
            tenant,
            id_,
            process_id,
            position,
            dump(p["title"]),
            dump(p.get("description")),
            p["starts_on"],
            p.get("ends_on"),
        )
        out = row(rec, "title", "description")
        assert out is not None
        return out

    async def update_phase(self, tenant: str, phase_id: UUID, p: dict[str, Any]) -> dict[str, Any] | None:
        # A phase moved to another start day is announced again when that day comes.
        rec = await self.conn.fetchrow(
            "update phases set title = $3, description = $4, starts_on = $5, ends_on = $6,"
            " position = coalesce($7, position),"
            " announced_at = case when starts_on = $5 then announced_at end"
            " where tenant = $1 and id = $2 returning *",
            tenant,
            phase_id,
            dump(p["title"]),
            dump(p.get("description")),
            p["starts_on"],
            p.get("ends_on"),
            p.get("position"),
        )
        return row(rec, "title", "description")

    async def add_step(
        self, tenant: str, id_: UUID, process_id: UUID, p: dict[str, Any], body_html: dict[str, str] | None
    ) -> dict[str, Any]:
        try:
            rec = await self.conn.fetchrow(
                "insert into steps (tenant, id, process_id, number, kind, title, body_md, body_html)"
                " values ($1, $2, $3, $4, $5, $6, $7, $8) returning *",
                tenant,
                id_,
                process_id,
                p["number"],
                p["kind"],
                dump(p["title"]),
                dump(p.get("body")),
                dump(body_html),
            )
        except asyncpg.UniqueViolationError:
            raise Taken("number") from None
        out = row(rec, "title", "body_md", "body_html")
        assert out is not None
        return out

    async def add_contact(
        self, tenant: str, id_: UUID, process_id: UUID, position: int, p: dict[str, Any]
    ) -> dict[str, Any]:
        rec = await self.conn.fetchrow(
            "insert into contacts (tenant, id, process_id, position, name, role, unit, email, phone, address,"
            " opening_hours) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) returning *",
            tenant,
            id_,
            process_id,
            position,
            p["name"],
            dump(p.get("role")),
            dump(p.get("unit")),
            p.get("email"),
            p.get("phone"),
            p.get("address"),
            dump(p.get("opening_hours")),
        )
        out = row(rec, "role", "unit", "opening_hours")
        assert out is not None
        return out

    async def add_attachment(
        self, tenant: str, id_: UUID, process_id: UUID, position: int, p: dict[str, Any]
    ) -> dict[str, Any]:
        rec = await self.conn.fetchrow(
            "insert into attachments (tenant, id, process_id, position, title, url, media_type)"
            " values ($1, $2, $3, $4, $5, $6, $7) returning *",
            tenant,
            id_,
            process_id,
            position,
            dump(p["title"]),
            p["url"],
            p.get("media_type"),
        )
        out = row(rec, "title")
        assert out is not None
        return out

    async def add_ref(
        self, tenant: str, id_: UUID, process_id: UUID, position: int, kind: str, ref_id: UUID
    ) -> dict[str, Any]:
        """A reference; referring to the same meeting or survey again keeps the one there is."""
        rec = await self.conn.fetchrow(
            "insert into refs (tenant, id, process_id, kind, ref_id, position) values ($1, $2, $3, $4, $5, $6)"
            " on conflict (tenant, process_id, kind, ref_id) do update set position = refs.position returning *",
            tenant,
            id_,
            process_id,
            kind,
            ref_id,
            position,
        )
        return dict(rec) if rec else {}

    async def delete_part(self, tenant: str, table: str, id_: UUID) -> bool:
        assert table in PARTS
        done = await self.conn.fetchval(
            f"delete from {table} where tenant = $1 and id = $2 returning true", tenant, id_
        )
        return bool(done)

    # -- pages and news --------------------------------------------------------------------------------------

    async def create_article(
        self, tenant: str, id_: UUID, a: dict[str, Any], body_html: dict[str, str] | None, now: datetime
    ) -> dict[str, Any]:
        try:
            rec = await self.conn.fetchrow(
                "insert into articles (tenant, id, process_id, kind, slug, title, summary, body_md, body_html,"
                " created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) returning *",
                tenant,
                id_,
                a.get("process_id"),
                a["kind"],
                a["slug"],
                dump(a["title"]),
                dump(a.get("summary")),
                dump(a["body"]),
                dump(body_html),
                now,
            )
        except asyncpg.UniqueViolationError:
            raise Taken("slug") from None
        out = row(rec, *ARTICLE_JSON)
        assert out is not None
        return out

    async def update_article(
        self, tenant: str, article_id: UUID, changes: dict[str, Any], now: datetime
    ) -> dict[str, Any] | None:
        """``changes`` by column (``body_md``, ``body_html`` for the body)."""
        values = {k: v if k == "slug" else dump(v) for k, v in changes.items()}
        try:
            rec = await self._update("articles", tenant, article_id, values, now)
        except asyncpg.UniqueViolationError:
            raise Taken("slug") from None
        return row(rec, *ARTICLE_JSON)

    async def articles(self, tenant: str, kind: str | None) -> list[dict[str, Any]]:
        recs = await self.conn.fetch(
            "select * from articles where tenant = $1 and ($2::text is null or kind = $2) order by created_at desc",
            tenant,
            kind,
        )
        return _rows(recs, *ARTICLE_JSON)

    async def article(self, tenant: str, article_id: UUID) -> dict[str, Any] | None:
        rec = await self.conn.fetchrow("select * from articles where tenant = $1 and id = $2", tenant, article_id)
        return row(rec, *ARTICLE_JSON)

    # -- publishing ------------------------------------------------------------------------------------------

    async def status_for_update(self, what: str, tenant: str, id_: UUID) -> str | None:
        """The publication status of a process or article, locked until the transaction ends."""
        table = TABLES[what]
        status: str | None = await self.conn.fetchval(
            f"select status from {table} where tenant = $1 and id = $2 for update", tenant, id_
        )
        return status

    async def schedule(self, what: str, tenant: str, id_: UUID, at: datetime, now: datetime) -> dict[str, Any]:
        rec = await self.conn.fetchrow(
            f"update {TABLES[what]} set status = 'scheduled', publish_at = $3, updated_at = $4"
            " where tenant = $1 and id = $2 returning id, status, publish_at, published_at",
            tenant,
            id_,
            at,
            now,
        )
        return dict(rec) if rec else {}

    async def publish(self, what: str, tenant: str, id_: UUID, now: datetime) -> dict[str, Any] | None:
        """Publish now; the whole row (for the event), None if it was published already."""
        rec = await self.conn.fetchrow(
            f"update {TABLES[what]} set status = 'published', published_at = $3, publish_at = null, updated_at = $3"
            " where tenant = $1 and id = $2 and status <> 'published' returning *",
            tenant,
            id_,
            now,
        )
        return dict(rec) if rec else None

    async def unpublish(self, what: str, tenant: str, id_: UUID, now: datetime) -> dict[str, Any] | None:
        rec = await self.conn.fetchrow(
            f"update {TABLES[what]} set status = 'draft', publish_at = null, published_at = null, updated_at = $3"
            " where tenant = $1 and id = $2 returning id, status",
            tenant,
            id_,
            now,
        )
        return dict(rec) if rec else None

    async def publish_due(self, what: str, now: datetime, limit: int) -> list[dict[str, Any]]:
        """Publish scheduled items whose time has come, across tenants; the rows published."""
        table = TABLES[what]
        recs = await self.conn.fetch(
            f"update {table} set status = 'published', published_at = publish_at, updated_at = $1"
            f" where id in (select id from {table} where status = 'scheduled' and publish_at <= $1"
            "  order by publish_at limit $2 for update skip locked)"
            " and status = 'scheduled' returning *",
            now,
            limit,
        )
        return [dict(r) for r in recs]

    async def start_phases(self, today: date, now: datetime, limit: int) -> list[dict[str, Any]]:
        """Mark as announced the phases of published processes whose first day has come; the ones that run.

        A phase that ended before its process was published is marked without being returned: it never started
        in public.
        """
        await self.conn.execute(
            "update phases ph set announced_at = $2 from processes p"
            " where p.id = ph.process_id and p.status = 'published' and ph.announced_at is null and ph.ends_on < $1",
            today,
            now,
        )
        recs = await self.conn.fetch(
            "update phases ph set announced_at = $2 from processes p"
            " where ph.id in (select ph2.id from phases ph2 join processes p2 on p2.id = ph2.process_id"
            "   where ph2.announced_at is null and p2.status = 'published' and ph2.starts_on <= $1"
            "   order by ph2.starts_on limit $3 for update of ph2 skip locked)"
            " and p.id = ph.process_id and ph.announced_at is null"
            " returning ph.tenant, ph.id, ph.process_id, ph.title, ph.starts_on, ph.ends_on",
            today,
            now,
            limit,
        )
        return _rows(recs, "title")

    async def report_scans(self, now: datetime, interval: timedelta, limit: int) -> list[dict[str, Any]]:
        """Mark as reported the days of codes with new scans and no report within ``interval``; those days."""
        recs = await self.conn.fetch(
            "update qr_scans s set reported_scans = s.scans, reported_at = $1 from qr_codes c"
            " where (s.code, s.day) in (select code, day from qr_scans where scans > reported_scans"
            "   and (reported_at is null or reported_at <= $2) limit $3 for update skip locked)"
            " and c.code = s.code and s.scans > s.reported_scans"
            " returning s.tenant, s.code, s.day, s.scans, c.target_kind",
            now,
            now - interval,
            limit,
        )
        return [dict(r) for r in recs]

    # -- QR codes --------------------------------------------------------------------------------------------

    async def create_qr(self, tenant: str, code: str, q: dict[str, Any], now: datetime) -> dict[str, Any] | None:
        """A new code; None when ``code`` is taken (in any tenant)."""
        rec = await self.conn.fetchrow(
            "insert into qr_codes (tenant, code, label, target_kind, target_id, target_url, error_correction,"
            " created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $8) on conflict (code) do nothing"
            " returning *",
            tenant,
            code,
            q.get("label"),
            q["target_kind"],
            q.get("target_id"),
            q["target_url"],
            q["error_correction"],
            now,
        )
        return dict(rec) if rec else None

    async def qr(self, tenant: str, code: str) -> dict[str, Any] | None:
        rec = await self.conn.fetchrow("select * from qr_codes where tenant = $1 and code = $2", tenant, code)
        return dict(rec) if rec else None

    async def update_qr(self, tenant: str, code: str, values: dict[str, Any], now: datetime) -> dict[str, Any] | None:
        sets = [f"{col} = ${i}" for i, col in enumerate(values, start=4)]
        rec = await self.conn.fetchrow(
            f"update qr_codes set {', '.join([*sets, 'updated_at = $3'])} where tenant = $1 and code = $2 returning *",
            tenant,
            code,
            now,
            *values.values(),
        )
        return dict(rec) if rec else None

    async def qr_codes(self, tenant: str) -> list[dict[str, Any]]:
        recs = await self.conn.fetch(
            "select c.*, coalesce((select sum(s.scans) from qr_scans s where s.code = c.code"
            " and s.tenant = c.tenant), 0)::int as scans from qr_codes c where c.tenant = $1 order by c.created_at",
            tenant,
        )
        return [dict(r) for r in recs]

    async def qr_scan_days(
        self, tenant: str, code: str, since: date | None, until: date | None
    ) -> list[dict[str, Any]]:
        recs = await self.conn.fetch(
            "select day, scans from qr_scans where tenant = $1 and code = $2"
            " and ($3::date is null or day >= $3) and ($4::date is null or day <= $4) order by day",
            tenant,
            code,
            since,
            until,
        )
        return [dict(r) for r in recs]

    async def scan(self, code: str, day: date) -> str | None:
        """Count a scan of ``code`` on ``day`` and return where it leads; None for an unknown code. One statement."""
        target: str | None = await self.conn.fetchval(
            "with c as (select tenant, code, target_url from qr_codes where code = $1),"
            " counted as (insert into qr_scans (tenant, code, day, scans) select tenant, code, $2, 1 from c"
            " on conflict (code, day) do update set scans = qr_scans.scans + 1)"
            " select target_url from c",
            code,
            day,
        )
        return target

    # -- the public read side: published items only, in one language -----------------------------------------

    async def public_processes(self, tenant: str, lang: str, page: int, per_page: int) -> dict[str, Any]:
        total = await self.conn.fetchval(
            "select count(*) from processes where tenant = $1 and status = 'published'", tenant
        )
        recs = await self.conn.fetch(
            "select id, slug, title, motto, summary, published_at from processes where tenant = $1"
            " and status = 'published' order by published_at desc, slug limit $2 offset $3",
            tenant,
            per_page,
            (page - 1) * per_page,
        )
        items = [
            {
                "id": r["id"],
                "slug": r["slug"],
                "title": _t(r["title"], lang),
                "motto": _t(r["motto"], lang),
                "summary": _t(r["summary"], lang),
                "published_at": r["published_at"],
            }
            for r in recs
        ]
        return {
            "items": items,
            "page": page,
            "per_page": per_page,
            "total": total,
            "pages": domain.pages(total, per_page),
        }

    async def news_page(
        self, tenant: str, process_id: UUID | None, lang: str, page: int, per_page: int
    ) -> dict[str, Any]:
        """Published news, newest first; of one process, or of the whole tenant when ``process_id`` is None."""
        where = "tenant = $1 and kind = 'news' and status = 'published' and ($2::uuid is null or process_id = $2)"
        total = await self.conn.fetchval(f"select count(*) from articles where {where}", tenant, process_id)
        recs = await self.conn.fetch(
            f"select * from articles where {where} order by published_at desc, id limit $3 offset $4",
            tenant,
            process_id,
            per_page,
            (page - 1) * per_page,
        )
        return {
            "items": [_article(r, lang, body=True) for r in recs],
            "page": page,
            "per_page": per_page,
            "total": total,
            "pages": domain.pages(total, per_page),
        }

    async def public_article(self, tenant: str, kind: str, slug: str, lang: str) -> dict[str, Any] | None:
        r = await self.conn.fetchrow(
            "select * from articles where tenant = $1 and kind = $2 and slug = $3 and status = 'published'",
            tenant,
            kind,
            slug,
        )
        return _article(r, lang, body=True) if r else None

    async def process_page(
        self, tenant: str, slug: str, lang: str, now: datetime, news_page_no: int, news_per_page: int
    ) -> dict[str, Any] | None:
        """A published process with everything a client shows, in one document."""
        conn = self.conn
        p = await conn.fetchrow(
            "select * from processes where tenant = $1 and slug = $2 and status = 'published'", tenant, slug
        )
        if p is None:
            return None
        pid = p["id"]
        today = domain.berlin_today(now)

        phase_recs = await conn.fetch(
            "select id, title, description, starts_on, ends_on from phases where tenant = $1 and process_id = $2"
            " order by starts_on, position",
            tenant,
            pid,
        )
        current = domain.current_phase(
            [domain.PhaseSpan(r["id"], r["starts_on"], r["ends_on"]) for r in phase_recs], today
        )
        phases = [
            {
                "id": r["id"],
                "title": _t(r["title"], lang),
                "description": _t(r["description"], lang),
                "starts_on": r["starts_on"],
                "ends_on": r["ends_on"],
                "current": current is not None and current.id == r["id"],
            }
            for r in phase_recs
        ]

        step_recs = await conn.fetch(
            "select number, kind, title, body_html from steps where tenant = $1 and process_id = $2", tenant, pid
        )
        steps = sorted(
            (
                {
                    "number": r["number"],
                    "kind": r["kind"],
                    "title": _t(r["title"], lang),
                    "body_html": _t(r["body_html"], lang),
                }
                for r in step_recs
            ),
            key=lambda s: domain.step_sort_key(s["number"]),
        )

        contacts = [
            {
                "name": r["name"],
                "role": _t(r["role"], lang),
                "unit": _t(r["unit"], lang),
                "email": domain.obfuscate_email(r["email"]),
                "phone": r["phone"],
                "address": r["address"],
                "opening_hours": _t(r["opening_hours"], lang),
            }
            for r in await conn.fetch(
                "select * from contacts where tenant = $1 and process_id = $2 order by position", tenant, pid
            )
        ]
        attachments = [
            {"title": _t(r["title"], lang), "url": r["url"], "media_type": r["media_type"]}
            for r in await conn.fetch(
                "select title, url, media_type from attachments where tenant = $1 and process_id = $2"
                " order by position",
                tenant,
                pid,
            )
        ]

        meetings = []
        for r in await conn.fetch(
            "select r.ref_id, m.* from refs r left join meeting_state m"
            " on m.tenant = r.tenant and m.meeting_id = r.ref_id"
            " where r.tenant = $1 and r.process_id = $2 and r.kind = 'meeting' order by r.position",
            tenant,
            pid,
        ):
            live = domain.MeetingLive(
                known=r["meeting_id"] is not None and r["title"] is not None,
                cancelled=bool(r["cancelled"]),
                starts_at=r["starts_at"],
                seats_left=r["seats_left"],
                waitlist=r["waitlist"] if r["waitlist"] is not None else True,
                opens_at=r["registration_opens_at"],
                closes_at=r["registration_closes_at"],
            )
            status = domain.registration_status(live, now)
            meetings.append(
                {
                    "meeting_id": r["ref_id"],
                    "title": r["title"],
                    "starts_at": r["starts_at"],
                    "ends_at": r["ends_at"],
                    "venue": load(r["venue"]),
                    "capacity": r["capacity"],
                    "seats_left": r["seats_left"],
                    "registration": status,
                    "registration_open": status in ("open", "waitlist"),
                    "registration_closes_at": r["registration_closes_at"],
                    "cancelled": bool(r["cancelled"]),
                    "url": r["url"],
                }
            )

        surveys = []
        for r in await conn.fetch(
            "select r.ref_id, s.* from refs r left join survey_state s"
            " on s.tenant = r.tenant and s.survey_id = r.ref_id"
            " where r.tenant = $1 and r.process_id = $2 and r.kind = 'survey' order by r.position",
            tenant,
            pid,
        ):
            known = r["survey_id"] is not None
            s_status = domain.survey_status(known, r["opens_at"], r["closes_at"], r["closed_at"], now)
            surveys.append(
                {
                    "survey_id": r["ref_id"],
                    "title": r["title"],
                    "opens_at": r["opens_at"],
                    "closes_at": r["closes_at"],
                    "status": s_status,
                    "open": s_status == "open",
                    "url": r["url"],
                }
            )

        page_recs = await conn.fetch(
            "select * from articles where tenant = $1 and process_id = $2 and kind = 'page' and status = 'published'"
            " order by published_at, slug",
            tenant,
            pid,
        )
        return {
            "id": pid,
            "slug": p["slug"],
            "language": lang,
            "title": _t(p["title"], lang),
            "motto": _t(p["motto"], lang),
            "summary": _t(p["summary"], lang),
            "funding": _funding(p["funding"], lang),
            "published_at": p["published_at"],
            "today": today,
            "current_phase": next((ph for ph in phases if ph["current"]), None),
            "phases": phases,
            "steps": steps,
            "contacts": contacts,
            "attachments": attachments,
            "meetings": meetings,
            "surveys": surveys,
            "pages": [_article(r, lang, body=False) for r in page_recs],
            "news": await self.news_page(tenant, pid, lang, news_page_no, news_per_page),
        }

    async def page_version(self, tenant: str, slug: str, now: datetime) -> PageVersion | None:
        """What the process page depends on, from one small query: None if there is no published process.

        The process's revision (raised by triggers on every part), the revisions of the referenced meetings' and
        surveys' projections, today's date in Berlin, and which of their time boundaries (registration window,
        start, survey opening and closing) have passed, since statuses are computed from the clock; and those
        boundaries, for when the clock alone will change the page.
        """
        r = await self.conn.fetchrow(
            "select p.revision,"
            " (select array_agg(coalesce(m.revision, 0) order by r.position, r.id) from refs r"
            "   left join meeting_state m on m.tenant = r.tenant and m.meeting_id = r.ref_id"
            "   where r.tenant = p.tenant and r.process_id = p.id and r.kind = 'meeting') as meetings,"
            " (select array_agg(coalesce(s.revision, 0) order by r.position, r.id) from refs r"
            "   left join survey_state s on s.tenant = r.tenant and s.survey_id = r.ref_id"
            "   where r.tenant = p.tenant and r.process_id = p.id and r.kind = 'survey') as surveys,"
            " (select array_agg(t) from ("
            "   select unnest(array[m.registration_opens_at, m.registration_closes_at, m.starts_at]) as t"
            "   from refs r join meeting_state m on m.tenant = r.tenant and m.meeting_id = r.ref_id"
            "   where r.tenant = p.tenant and r.process_id = p.id and r.kind = 'meeting'"
            "   union all"
            "   select unnest(array[s.opens_at, s.closes_at, s.closed_at])"
            "   from refs r join survey_state s on s.tenant = r.tenant and s.survey_id = r.ref_id"
            "   where r.tenant = p.tenant and r.process_id = p.id and r.kind = 'survey') b where t is not null)"
            "  as boundaries"
            " from processes p where p.tenant = $1 and p.slug = $2 and p.status = 'published'",
            tenant,
            slug,
        )
        if r is None:
            return None
        # Boundaries only change with a revision, and time moves forward: how many have passed says which.
        boundaries: list[datetime] = list(r["boundaries"] or [])
        passed = sum(1 for b in boundaries if now >= b)
        key = (r["revision"], tuple(r["meetings"] or ()), tuple(r["surveys"] or ()), domain.berlin_today(now), passed)
        return PageVersion(key, boundaries)

    # -- projections: the live state of meetings and surveys (see handlers.py) -------------------------------

    async def accept_newer(self, key: str, sequence: int | None) -> bool:
        """Whether an event at ``sequence`` for ``key`` is newer than what was applied (and note it if so)."""
        return await accept_newer(self.conn, key, sequence)

    async def meeting_snapshot(self, tenant: str, m: dict[str, Any], now: datetime) -> None:
        await self.conn.execute(
            "insert into meeting_state (tenant, meeting_id, title, starts_at, ends_at, venue, capacity,"
            " waitlist, registration_opens_at, registration_closes_at, url, cancelled, updated_at)"
            " values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, false, $12)"
            " on conflict (tenant, meeting_id) do update set title = excluded.title,"
            " starts_at = excluded.starts_at, ends_at = excluded.ends_at, venue = excluded.venue,"
            " capacity = excluded.capacity, waitlist = excluded.waitlist,"
            " registration_opens_at = excluded.registration_opens_at,"
            " registration_closes_at = excluded.registration_closes_at, url = excluded.url,"
            " updated_at = excluded.updated_at",
            tenant,
            m["meeting_id"],
            m["title"],
            m["starts_at"],
            m["ends_at"],
            dump(m["venue"]),
            m["capacity"],
            m["waitlist"],
            m["registration_opens_at"],
            m["registration_closes_at"],
            m["url"],
            now,
        )

    async def set_meeting_seats(self, tenant: str, meeting_id: UUID, seats_left: int) -> None:
        await self.conn.execute(
            "update meeting_state set seats_left = $3 where tenant = $1 and meeting_id = $2",
            tenant,
            meeting_id,
            seats_left,
        )

    async def meeting_cancelled(self, tenant: str, meeting_id: UUID, now: datetime) -> None:
        await self.conn.execute(
            "insert into meeting_state (tenant, meeting_id, cancelled, updated_at) values ($1, $2, true, $3)"
            " on conflict (tenant, meeting_id) do update set cancelled = true, updated_at = excluded.updated_at",
            tenant,
            meeting_id,
            now,
        )

    async def meeting_seats(
        self, tenant: str, meeting_id: UUID, capacity: int | None, seats_left: int | None, now: datetime
    ) -> None:
        await self.conn.execute(
            "insert into meeting_state (tenant, meeting_id, capacity, seats_left, updated_at)"
            " values ($1, $2, $3, $4, $5)"
            " on conflict (tenant, meeting_id) do update set seats_left = excluded.seats_left,"
            " capacity = coalesce(excluded.capacity, meeting_state.capacity), updated_at = excluded.updated_at",
            tenant,
            meeting_id,
            capacity,
            seats_left,
            now,
        )

    async def survey_published(
        self,
        tenant: str,
        survey_id: UUID,
        title: str,
        opens_at: datetime | None,
        closes_at: datetime | None,
        url: str | None,
        now: datetime,
    ) -> None:
        await self.conn.execute(
            "insert into survey_state (tenant, survey_id, title, opens_at, closes_at, url, updated_at)"
            " values ($1, $2, $3, $4, $5, $6, $7) on conflict (tenant, survey_id) do update set"
            " title = excluded.title, opens_at = excluded.opens_at, closes_at = excluded.closes_at,"
            " url = excluded.url, updated_at = excluded.updated_at",
            tenant,
            survey_id,
            title,
            opens_at,
            closes_at,
            url,
            now,
        )

    async def survey_opened(
        self, tenant: str, survey_id: UUID, title: str | None, closes_at: datetime | None, now: datetime
    ) -> None:
        # Opening carries the (possibly moved) closing time; it never undoes a close that already arrived.
        await self.conn.execute(
            "insert into survey_state (tenant, survey_id, title, closes_at, updated_at) values ($1, $2, $3, $4, $5)"
            " on conflict (tenant, survey_id) do update set title = coalesce(survey_state.title, excluded.title),"
            " closes_at = excluded.closes_at, updated_at = excluded.updated_at",
            tenant,
            survey_id,
            title,
            closes_at,
            now,
        )

    async def survey_closed(
        self, tenant: str, survey_id: UUID, closed_at: datetime, responses: int | None, now: datetime
    ) -> None:
        # Closing is final: whatever arrives later for this survey keeps closed_at.
        await self.conn.execute(
            "insert into survey_state (tenant, survey_id, closed_at, responses, updated_at)"
            " values ($1, $2, $3, $4, $5)"
            " on conflict (tenant, survey_id) do update set closed_at = excluded.closed_at,"
            " responses = excluded.responses, updated_at = excluded.updated_at",
            tenant,
            survey_id,
            closed_at,
            responses,
            now,
        )
