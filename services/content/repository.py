"""SQL of the content service's staff side: processes and their parts, pages and news, QR codes.

Every function takes the tenant and filters by it; texts go in as jsonb ``{de, en}``. Markdown is rendered
and sanitised here, when written, so the public read path never renders.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from pydantic import BaseModel

from services.content import domain, models
from services.content.rendering import render_text
from shared.db import Conn
from shared.http.problems import Problem


def dump(value: Any) -> str | None:
    """A pydantic value (or list of them) as jsonb text."""
    if value is None:
        return None
    if isinstance(value, BaseModel):
        return value.model_dump_json(exclude_none=True)
    if isinstance(value, list):
        return json.dumps(
            [v.model_dump(mode="json", exclude_none=True) if isinstance(v, BaseModel) else v for v in value]
        )
    return json.dumps(value)


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


def not_found(what: str) -> Problem:
    return Problem(404, "Not found", type_="not-found", detail=f"{what} not found")


# -- processes -----------------------------------------------------------------------------------------------

PROCESS_JSON = ("title", "motto", "summary", "funding")


async def create_process(conn: Conn, tenant: str, data: models.ProcessIn, now: datetime) -> dict[str, Any]:
    try:
        rec = await conn.fetchrow(
            "insert into processes (tenant, id, slug, title, motto, summary, funding, created_at, updated_at)"
            " values ($1, $2, $3, $4, $5, $6, $7, $8, $8) returning *",
            tenant,
            uuid4(),
            data.slug,
            dump(data.title),
            dump(data.motto),
            dump(data.summary),
            dump(data.funding),
            now,
        )
    except asyncpg.UniqueViolationError:
        raise _slug_taken(data.slug) from None
    out = row(rec, *PROCESS_JSON)
    assert out is not None
    return out


def _slug_taken(slug: str) -> Problem:
    return Problem(
        409,
        "Conflict",
        type_="slug-taken",
        detail=f"the slug {slug!r} is taken",
        errors=[{"in": "body", "pointer": "/slug", "detail": "already in use", "code": "unique"}],
    )


async def update_process(
    conn: Conn, tenant: str, process_id: UUID, patch: models.ProcessPatch, now: datetime
) -> dict[str, Any]:
    fields = patch.model_dump(exclude_unset=True)
    values: dict[str, Any] = {}
    for name in fields:
        v = getattr(patch, name)
        values[name] = v if name == "slug" else dump(v)
    try:
        rec = await _update(conn, "processes", tenant, process_id, values, now)
    except asyncpg.UniqueViolationError:
        raise _slug_taken(str(patch.slug)) from None
    out = row(rec, *PROCESS_JSON)
    if out is None:
        raise not_found("process")
    return out


async def _update(
    conn: Conn, table: str, tenant: str, id_: UUID, values: dict[str, Any], now: datetime | None
) -> asyncpg.Record | None:
    # Column names come from pydantic models' field names, never from the request's keys directly.
    sets = [f"{col} = ${i}" for i, col in enumerate(values, start=3)]
    if now is not None:
        sets.append(f"updated_at = ${len(values) + 3}")
    params: list[Any] = [tenant, id_, *values.values()] + ([now] if now is not None else [])
    if not sets:
        return await conn.fetchrow(f"select * from {table} where tenant = $1 and id = $2", tenant, id_)
    return await conn.fetchrow(
        f"update {table} set {', '.join(sets)} where tenant = $1 and id = $2 returning *", *params
    )


async def list_processes(conn: Conn, tenant: str) -> list[dict[str, Any]]:
    recs = await conn.fetch("select * from processes where tenant = $1 order by created_at, slug", tenant)
    return [r for r in (row(x, *PROCESS_JSON) for x in recs) if r is not None]


async def process_by_slug(conn: Conn, tenant: str, slug: str) -> dict[str, Any] | None:
    rec = await conn.fetchrow("select * from processes where tenant = $1 and slug = $2", tenant, slug)
    return row(rec, *PROCESS_JSON)


async def require_process(conn: Conn, tenant: str, process_id: UUID) -> dict[str, Any]:
    rec = await conn.fetchrow("select * from processes where tenant = $1 and id = $2", tenant, process_id)
    out = row(rec, *PROCESS_JSON)
    if out is None:
        raise not_found("process")
    return out


async def process_for_staff(conn: Conn, tenant: str, process_id: UUID) -> dict[str, Any]:
    """Everything of a process in all languages, drafts included, e-mail addresses in clear."""
    p = await require_process(conn, tenant, process_id)
    args = (tenant, process_id)
    p["phases"] = [
        row(r, "title", "description")
        for r in await conn.fetch(
            "select * from phases where tenant = $1 and process_id = $2 order by starts_on, position", *args
        )
    ]
    steps = [
        row(r, "title", "body_md", "body_html")
        for r in await conn.fetch("select * from steps where tenant = $1 and process_id = $2", *args)
    ]
    p["steps"] = sorted(steps, key=lambda s: domain.step_sort_key(s["number"]) if s else ())
    p["contacts"] = [
        row(r, "role", "unit", "opening_hours")
        for r in await conn.fetch(
            "select * from contacts where tenant = $1 and process_id = $2 order by position", *args
        )
    ]
    p["attachments"] = [
        row(r, "title")
        for r in await conn.fetch(
            "select * from attachments where tenant = $1 and process_id = $2 order by position", *args
        )
    ]
    p["references"] = [
        dict(r)
        for r in await conn.fetch(
            "select id, kind, ref_id, position from refs where tenant = $1 and process_id = $2 order by position",
            *args,
        )
    ]
    p["articles"] = [
        row(r, "title", "summary")
        for r in await conn.fetch(
            "select id, kind, slug, title, summary, status, publish_at, published_at from articles"
            " where tenant = $1 and process_id = $2 order by created_at",
            *args,
        )
    ]
    return p


# -- parts of a process --------------------------------------------------------------------------------------


async def _next_position(conn: Conn, table: str, tenant: str, process_id: UUID) -> int:
    return int(
        await conn.fetchval(
            f"select coalesce(max(position) + 1, 0) from {table} where tenant = $1 and process_id = $2",
            tenant,
            process_id,
        )
    )


async def add_phase(conn: Conn, tenant: str, process_id: UUID, data: models.PhaseIn) -> dict[str, Any]:
    await require_process(conn, tenant, process_id)
    pos = data.position if data.position is not None else await _next_position(conn, "phases", tenant, process_id)
    rec = await conn.fetchrow(
        "insert into phases (tenant, id, process_id, position, title, description, starts_on, ends_on)"
        " values ($1, $2, $3, $4, $5, $6, $7, $8) returning *",
        tenant,
        uuid4(),
        process_id,
        pos,
        dump(data.title),
        dump(data.description),
        data.starts_on,
        data.ends_on,
    )
    out = row(rec, "title", "description")
    assert out is not None
    return out


async def update_phase(conn: Conn, tenant: str, phase_id: UUID, data: models.PhaseIn) -> dict[str, Any]:
    # A phase moved to another start day is announced again when that day comes.
    rec = await conn.fetchrow(
        "update phases set title = $3, description = $4, starts_on = $5, ends_on = $6,"
        " position = coalesce($7, position),"
        " announced_at = case when starts_on = $5 then announced_at end"
        " where tenant = $1 and id = $2 returning *",
        tenant,
        phase_id,
        dump(data.title),
        dump(data.description),
        data.starts_on,
        data.ends_on,
        data.position,
    )
    out = row(rec, "title", "description")
    if out is None:
        raise not_found("phase")
    return out


async def add_step(conn: Conn, tenant: str, process_id: UUID, data: models.StepIn) -> dict[str, Any]:
    await require_process(conn, tenant, process_id)
    try:
        rec = await conn.fetchrow(
            "insert into steps (tenant, id, process_id, number, kind, title, body_md, body_html)"
            " values ($1, $2, $3, $4, $5, $6, $7, $8) returning *",
            tenant,
            uuid4(),
            process_id,
            data.number,
            data.kind,
            dump(data.title),
            dump(data.body),
            dump(render_text(data.body.model_dump() if data.body else None)),
        )
    except asyncpg.UniqueViolationError:
        raise Problem(
            409,
            "Conflict",
            type_="step-number-taken",
            detail=f"step {data.number} exists in this process",
            errors=[{"in": "body", "pointer": "/number", "detail": "already in use", "code": "unique"}],
        ) from None
    out = row(rec, "title", "body_md", "body_html")
    assert out is not None
    return out


async def add_contact(conn: Conn, tenant: str, process_id: UUID, data: models.ContactIn) -> dict[str, Any]:
    await require_process(conn, tenant, process_id)
    pos = data.position if data.position is not None else await _next_position(conn, "contacts", tenant, process_id)
    rec = await conn.fetchrow(
        "insert into contacts (tenant, id, process_id, position, name, role, unit, email, phone, address,"
        " opening_hours) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) returning *",
        tenant,
        uuid4(),
        process_id,
        pos,
        data.name,
        dump(data.role),
        dump(data.unit),
        data.email,
        data.phone,
        data.address,
        dump(data.opening_hours),
    )
    out = row(rec, "role", "unit", "opening_hours")
    assert out is not None
    return out


async def add_attachment(conn: Conn, tenant: str, process_id: UUID, data: models.AttachmentIn) -> dict[str, Any]:
    await require_process(conn, tenant, process_id)
    pos = data.position if data.position is not None else await _next_position(conn, "attachments", tenant, process_id)
    rec = await conn.fetchrow(
        "insert into attachments (tenant, id, process_id, position, title, url, media_type)"
        " values ($1, $2, $3, $4, $5, $6, $7) returning *",
        tenant,
        uuid4(),
        process_id,
        pos,
        dump(data.title),
        str(data.url),
        data.media_type,
    )
    out = row(rec, "title")
    assert out is not None
    return out


async def add_ref(conn: Conn, tenant: str, process_id: UUID, data: models.RefIn) -> dict[str, Any]:
    await require_process(conn, tenant, process_id)
    pos = data.position if data.position is not None else await _next_position(conn, "refs", tenant, process_id)
    rec = await conn.fetchrow(
        "insert into refs (tenant, id, process_id, kind, ref_id, position) values ($1, $2, $3, $4, $5, $6)"
        " on conflict (tenant, process_id, kind, ref_id) do update set position = refs.position returning *",
        tenant,
        uuid4(),
        process_id,
        data.kind,
        data.ref_id,
        pos,
    )
    return dict(rec) if rec else {}


PARTS = {"phases", "steps", "contacts", "attachments", "refs", "articles"}


async def delete_part(conn: Conn, tenant: str, table: str, id_: UUID) -> None:
    assert table in PARTS
    done = await conn.fetchval(f"delete from {table} where tenant = $1 and id = $2 returning true", tenant, id_)
    if not done:
        raise not_found(table.rstrip("s"))


# -- pages and news ------------------------------------------------------------------------------------------

ARTICLE_JSON = ("title", "summary", "body_md", "body_html")


async def create_article(conn: Conn, tenant: str, data: models.ArticleIn, now: datetime) -> dict[str, Any]:
    if data.process_id is not None:
        await require_process(conn, tenant, data.process_id)
    try:
        rec = await conn.fetchrow(
            "insert into articles (tenant, id, process_id, kind, slug, title, summary, body_md, body_html,"
            " created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) returning *",
            tenant,
            uuid4(),
            data.process_id,
            data.kind,
            data.slug,
            dump(data.title),
            dump(data.summary),
            dump(data.body),
            dump(render_text(data.body.model_dump())),
            now,
        )
    except asyncpg.UniqueViolationError:
        raise _slug_taken(data.slug) from None
    out = row(rec, *ARTICLE_JSON)
    assert out is not None
    return out


async def update_article(
    conn: Conn, tenant: str, article_id: UUID, patch: models.ArticlePatch, now: datetime
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in patch.model_dump(exclude_unset=True):
        v = getattr(patch, name)
        values[name if name != "body" else "body_md"] = v if name == "slug" else dump(v)
        if name == "body":
            values["body_html"] = dump(render_text(v.model_dump() if v else None))
    try:
        rec = await _update(conn, "articles", tenant, article_id, values, now)
    except asyncpg.UniqueViolationError:
        raise _slug_taken(str(patch.slug)) from None
    out = row(rec, *ARTICLE_JSON)
    if out is None:
        raise not_found("article")
    return out


async def list_articles(conn: Conn, tenant: str, kind: str | None) -> list[dict[str, Any]]:
    recs = await conn.fetch(
        "select * from articles where tenant = $1 and ($2::text is null or kind = $2) order by created_at desc",
        tenant,
        kind,
    )
    return [r for r in (row(x, *ARTICLE_JSON) for x in recs) if r is not None]


async def get_article(conn: Conn, tenant: str, article_id: UUID) -> dict[str, Any]:
    rec = await conn.fetchrow("select * from articles where tenant = $1 and id = $2", tenant, article_id)
    out = row(rec, *ARTICLE_JSON)
    if out is None:
        raise not_found("article")
    return out


# -- QR codes ------------------------------------------------------------------------------------------------


async def create_qr(conn: Conn, tenant: str, code: str, data: models.QrIn, now: datetime) -> dict[str, Any]:
    rec = await conn.fetchrow(
        "insert into qr_codes (tenant, code, label, target_kind, target_id, target_url, error_correction,"
        " created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $8) on conflict (code) do nothing"
        " returning *",
        tenant,
        code,
        data.label,
        data.target_kind,
        data.target_id,
        str(data.target_url),
        data.error_correction,
        now,
    )
    return dict(rec) if rec else {}


async def get_qr(conn: Conn, tenant: str, code: str) -> dict[str, Any]:
    rec = await conn.fetchrow("select * from qr_codes where tenant = $1 and code = $2", tenant, code)
    if rec is None:
        raise not_found("QR code")
    return dict(rec)


async def update_qr(conn: Conn, tenant: str, code: str, patch: models.QrPatch, now: datetime) -> dict[str, Any]:
    values = {k: (str(v) if k == "target_url" else v) for k, v in patch.model_dump(exclude_unset=True).items()}
    values = {k: v for k, v in values.items() if v is not None or k in ("target_id", "label")}
    sets = [f"{col} = ${i}" for i, col in enumerate(values, start=4)]
    rec = await conn.fetchrow(
        f"update qr_codes set {', '.join([*sets, 'updated_at = $3'])} where tenant = $1 and code = $2 returning *",
        tenant,
        code,
        now,
        *values.values(),
    )
    if rec is None:
        raise not_found("QR code")
    return dict(rec)


async def list_qr(conn: Conn, tenant: str) -> list[dict[str, Any]]:
    recs = await conn.fetch(
        "select c.*, coalesce((select sum(s.scans) from qr_scans s where s.code = c.code and s.tenant = c.tenant),"
        " 0)::int as scans from qr_codes c where c.tenant = $1 order by c.created_at",
        tenant,
    )
    return [dict(r) for r in recs]


async def qr_scan_days(
    conn: Conn, tenant: str, code: str, since: date | None, until: date | None
) -> list[dict[str, Any]]:
    await get_qr(conn, tenant, code)
    recs = await conn.fetch(
        "select day, scans from qr_scans where tenant = $1 and code = $2"
        " and ($3::date is null or day >= $3) and ($4::date is null or day <= $4) order by day",
        tenant,
        code,
        since,
        until,
    )
    return [dict(r) for r in recs]


async def scan(conn: Conn, code: str, day: date) -> str | None:
    """Count a scan of ``code`` on ``day`` and return where it leads; None for an unknown code. One statement."""
    target: str | None = await conn.fetchval(
        "with c as (select tenant, code, target_url from qr_codes where code = $1),"
        " counted as (insert into qr_scans (tenant, code, day, scans) select tenant, code, $2, 1 from c"
        " on conflict (code, day) do update set scans = qr_scans.scans + 1)"
        " select target_url from c",
        code,
        day,
    )
    return target
