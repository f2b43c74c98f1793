"""Publishing now or at a time, phase starts and aggregated QR scan reports, each with its event.

Every event here is recorded by the SQL transition that makes it true (``status`` to ``published``,
``announced_at`` from null, ``reported_scans`` up to ``scans``), in the same transaction, so a second loop
run, a second replica or a retry finds nothing left to do: each event goes out exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import date, datetime
from typing import Any
from uuid import UUID

from services.content import domain
from shared.bus.errors import TRANSIENT
from shared.bus.outbox import Outbox
from shared.contracts.content import ContentPublishedV1, PhaseStartedV1, QrScannedV1
from shared.db import Conn
from shared.http.problems import Problem
from shared.links import LinkName, link
from shared.service import Loop, ServiceContext
from shared.settings import LinkSettings

log = logging.getLogger(__name__)

TABLES = {"process": "processes", "article": "articles"}


def _title(value: str | None) -> str:
    return domain.localized(json.loads(value), "de") or "" if value else ""


async def _published_event(
    conn: Conn, outbox: Outbox, table: str, rec: Any, base_url: str, links: LinkSettings | None
) -> None:
    page: LinkName
    if table == "processes":
        kind, process_id, page = "process", rec["id"], "process"
    else:
        kind, process_id = rec["kind"], rec["process_id"]
        page = "page" if kind == "page" else "news"
    url = link(links or LinkSettings(), base_url, page, tenant=rec["tenant"], slug=rec["slug"])
    await outbox.record(
        conn,
        ContentPublishedV1(
            content_id=rec["id"],
            kind=kind,
            process_id=process_id,
            title=_title(rec["title"]),
            summary=_title(rec["summary"]) or None,
            language="de",
            url=url,
        ),
        tenant=rec["tenant"],
        subject=f"{kind}/{rec['id']}",
    )


async def publish(
    conn: Conn,
    outbox: Outbox,
    tenant: str,
    what: str,
    id_: UUID,
    *,
    at: datetime | None,
    now: datetime,
    base_url: str,
    links: LinkSettings | None = None,
) -> dict[str, Any]:
    """Publish now (and record ContentPublishedV1) or schedule for ``at``. Runs in the caller's transaction."""
    table = TABLES[what]
    current = await conn.fetchrow(f"select status from {table} where tenant = $1 and id = $2 for update", tenant, id_)
    if current is None:
        raise Problem(404, "Not found", type_="not-found", detail=f"{what} not found")
    if current["status"] == "published":
        raise Problem(409, "Conflict", type_="already-published", detail=f"the {what} is published already")
    if at is not None and at > now:
        rec = await conn.fetchrow(
            f"update {table} set status = 'scheduled', publish_at = $3, updated_at = $4"
            " where tenant = $1 and id = $2 returning id, status, publish_at, published_at",
            tenant,
            id_,
            at,
            now,
        )
        return dict(rec) if rec else {}
    rec = await conn.fetchrow(
        f"update {table} set status = 'published', published_at = $3, publish_at = null, updated_at = $3"
        " where tenant = $1 and id = $2 and status <> 'published' returning *",
        tenant,
        id_,
        now,
    )
    assert rec is not None
    await _published_event(conn, outbox, table, rec, base_url, links)
    return {"id": rec["id"], "status": rec["status"], "publish_at": None, "published_at": rec["published_at"]}


async def unpublish(conn: Conn, tenant: str, what: str, id_: UUID, now: datetime) -> dict[str, Any]:
    table = TABLES[what]
    rec = await conn.fetchrow(
        f"update {table} set status = 'draft', publish_at = null, published_at = null, updated_at = $3"
        " where tenant = $1 and id = $2 returning id, status",
        tenant,
        id_,
        now,
    )
    if rec is None:
        raise Problem(404, "Not found", type_="not-found", detail=f"{what} not found")
    return dict(rec)


async def publish_due(
    conn: Conn, outbox: Outbox, now: datetime, base_url: str, limit: int = 100, links: LinkSettings | None = None
) -> int:
    """Scheduled items whose time has come, across tenants. Call inside a transaction."""
    n = 0
    for table in ("processes", "articles"):
        recs = await conn.fetch(
            f"update {table} set status = 'published', published_at = publish_at, updated_at = $1"
            f" where id in (select id from {table} where status = 'scheduled' and publish_at <= $1"
            "  order by publish_at limit $2 for update skip locked)"
            " and status = 'scheduled' returning *",
            now,
            limit,
        )
        for rec in recs:
            await _published_event(conn, outbox, table, rec, base_url, links)
        n += len(recs)
    return n


async def announce_phases(conn: Conn, outbox: Outbox, today: date, now: datetime, limit: int = 100) -> int:
    """PhaseStartedV1 for phases of published processes whose first day has come and that still run.

    A phase that ended before its process was published is marked without an event: it never started in public.
    """
    await conn.execute(
        "update phases ph set announced_at = $2 from processes p"
        " where p.id = ph.process_id and p.status = 'published' and ph.announced_at is null and ph.ends_on < $1",
        today,
        now,
    )
    recs = await conn.fetch(
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
    for rec in recs:
        await outbox.record(
            conn,
            PhaseStartedV1(
                process_id=rec["process_id"],
                phase_id=rec["id"],
                title=_title(rec["title"]),
                starts_on=rec["starts_on"],
                ends_on=rec["ends_on"],
            ),
            tenant=rec["tenant"],
            subject=f"phase/{rec['id']}",
        )
    return len(recs)


async def report_scans(conn: Conn, outbox: Outbox, now: datetime, limit: int = 500) -> int:
    """QrScannedV1 with the running count of a code's day, at most once per code, day and minute."""
    recs = await conn.fetch(
        "update qr_scans s set reported_scans = s.scans, reported_at = $1 from qr_codes c"
        " where (s.code, s.day) in (select code, day from qr_scans where scans > reported_scans"
        "   and (reported_at is null or reported_at <= $2) limit $3 for update skip locked)"
        " and c.code = s.code and s.scans > s.reported_scans"
        " returning s.tenant, s.code, s.day, s.scans, c.target_kind",
        now,
        now - domain.QR_REPORT_INTERVAL,
        limit,
    )
    for rec in recs:
        await outbox.record(
            conn,
            QrScannedV1(code=rec["code"], target_kind=rec["target_kind"], day=rec["day"], scans=rec["scans"]),
            tenant=rec["tenant"],
            subject=f"qr/{rec['code']}",
        )
    return len(recs)


async def tick(ctx: ServiceContext) -> int:
    """One pass of the publishing loop; returns how many events it recorded."""
    now = ctx.clock.now()
    async with ctx.pool.acquire() as conn, conn.transaction():
        n = await publish_due(conn, ctx.outbox, now, ctx.settings.public_base_url, links=ctx.settings.links)
        n += await announce_phases(conn, ctx.outbox, domain.berlin_today(now), now)
        n += await report_scans(conn, ctx.outbox, now)
    return n


def publishing_loop(ctx: ServiceContext, interval: float | None = None) -> Loop:
    # Scheduled times are minute-precise in practice; tests set a short deadline interval and we follow it.
    every = interval if interval is not None else min(ctx.settings.deadline_interval_seconds, 5.0)

    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await tick(ctx)
            except TRANSIENT as exc:
                log.warning("content publishing pass postponed: a server is unreachable", extra={"error": repr(exc)})
            except Exception:
                log.exception("content publishing pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)

    return run
