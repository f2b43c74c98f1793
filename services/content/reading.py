"""The public read side: what citizens' web and mobile clients get, in one language, published items only."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any
from uuid import UUID

from services.content import domain
from services.content.repository import load
from shared.db import Conn


def _t(value: str | None, lang: str) -> str | None:
    return domain.localized(load(value), lang) if value is not None else None


def _json_default(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"not serialisable: {type(value).__name__}")


def encode(body: Any) -> bytes:
    return json.dumps(body, default=_json_default, ensure_ascii=False, separators=(",", ":")).encode()


def _funding(raw: str | None, lang: str) -> list[dict[str, Any]]:
    out = []
    for f in load(raw) or []:
        out.append(
            {
                "label": domain.localized(f.get("label"), lang),
                "amount": f.get("amount"),
                "currency": f.get("currency", "EUR"),
                "source": domain.localized(f.get("source"), lang),
                "period": domain.localized(f.get("period"), lang),
            }
        )
    return out


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


async def list_processes(conn: Conn, tenant: str, lang: str, page: int, per_page: int) -> dict[str, Any]:
    total = await conn.fetchval("select count(*) from processes where tenant = $1 and status = 'published'", tenant)
    recs = await conn.fetch(
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
    return {"items": items, "page": page, "per_page": per_page, "total": total, "pages": domain.pages(total, per_page)}


async def news_page(
    conn: Conn, tenant: str, process_id: UUID | None, lang: str, page: int, per_page: int
) -> dict[str, Any]:
    """Published news, newest first; of one process, or of the whole tenant when ``process_id`` is None."""
    where = "tenant = $1 and kind = 'news' and status = 'published' and ($2::uuid is null or process_id = $2)"
    total = await conn.fetchval(f"select count(*) from articles where {where}", tenant, process_id)
    recs = await conn.fetch(
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


async def article(conn: Conn, tenant: str, kind: str, slug: str, lang: str) -> dict[str, Any] | None:
    r = await conn.fetchrow(
        "select * from articles where tenant = $1 and kind = $2 and slug = $3 and status = 'published'",
        tenant,
        kind,
        slug,
    )
    return _article(r, lang, body=True) if r else None


async def process_page(
    conn: Conn, tenant: str, slug: str, lang: str, now: datetime, news_page_no: int, news_per_page: int
) -> dict[str, Any] | None:
    """A published process with everything a client shows, in one document."""
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
    current = domain.current_phase([domain.PhaseSpan(r["id"], r["starts_on"], r["ends_on"]) for r in phase_recs], today)
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
            "select title, url, media_type from attachments where tenant = $1 and process_id = $2 order by position",
            tenant,
            pid,
        )
    ]

    meetings = []
    for r in await conn.fetch(
        "select r.ref_id, m.* from refs r left join meeting_state m on m.tenant = r.tenant and m.meeting_id = r.ref_id"
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
        "select r.ref_id, s.* from refs r left join survey_state s on s.tenant = r.tenant and s.survey_id = r.ref_id"
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
        "news": await news_page(conn, tenant, pid, lang, news_page_no, news_per_page),
    }


async def page_version(conn: Conn, tenant: str, slug: str, now: datetime) -> tuple[object, ...] | None:
    """What the process page depends on, from one small query: None if there is no published process.

    The process's revision (raised by triggers on every part), the revisions of the referenced meetings' and
    surveys' projections, today's date in Berlin, and which of their time boundaries (registration window,
    start, survey opening and closing) have passed, since statuses are computed from the clock.
    """
    r = await conn.fetchrow(
        "select p.revision,"
        " (select array_agg(coalesce(m.revision, 0) order by r.position, r.id) from refs r left join meeting_state m"
        "   on m.tenant = r.tenant and m.meeting_id = r.ref_id"
        "   where r.tenant = p.tenant and r.process_id = p.id and r.kind = 'meeting') as meetings,"
        " (select array_agg(coalesce(s.revision, 0) order by r.position, r.id) from refs r left join survey_state s"
        "   on s.tenant = r.tenant and s.survey_id = r.ref_id"
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
    passed = sum(1 for b in r["boundaries"] or [] if now >= b)
    return (r["revision"], tuple(r["meetings"] or ()), tuple(r["surveys"] or ()), domain.berlin_today(now), passed)
