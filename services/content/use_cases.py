"""The content service's use cases: one function per command or query, over a unit of work.

Commands take a ``UnitOfWork[Store]`` (one transaction with the outbox attached) and plain values (request
bodies as the dicts ``schemas.fields``/``schemas.changes`` make); queries take a ``Store`` on a pooled
connection (the process page takes the connection unopened: a cached page needs none). Refusals are
``shared.errors`` exceptions, mapped to problem documents in one place.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid4

from services.content import domain
from services.content.markdown import render_markdown, render_text
from services.content.pages import LONGEST, Page, PageCache
from services.content.short_links import new_code
from services.content.store import Store, Taken
from shared.contracts.content import ContentPublishedV1, PhaseStartedV1, QrScannedV1
from shared.errors import Conflict, FieldProblem, NotFound, Unavailable
from shared.links import LinkName, link
from shared.settings import LinkSettings
from shared.unit_of_work import UnitOfWork

#: How many tries ``create_qr`` gives the code generator before it gives up (a collision is very rare).
CODE_TRIES = 5


@dataclass(frozen=True)
class Links:
    """Where civic's pages live, for the links events carry."""

    base_url: str
    templates: LinkSettings


def not_found(what: str) -> NotFound:
    return NotFound("not-found", detail=f"{what} not found")


def _taken(slug: object) -> Conflict:
    return Conflict(
        "slug-taken",
        detail=f"the slug {slug!r} is taken",
        fields=[FieldProblem("/slug", "already in use", "unique")],
    )


async def _require_process(store: Store, tenant: str, process_id: UUID) -> dict[str, Any]:
    p = await store.process(tenant, process_id)
    if p is None:
        raise not_found("process")
    return p


# -- processes -----------------------------------------------------------------------------------------------


async def create_process(uow: UnitOfWork[Store], tenant: str, process: dict[str, Any], now: datetime) -> dict[str, Any]:
    async with uow:
        try:
            return await uow.store.create_process(tenant, uuid4(), process, now)
        except Taken:
            raise _taken(process["slug"]) from None


async def update_process(
    uow: UnitOfWork[Store], tenant: str, process_id: UUID, changes: dict[str, Any], now: datetime
) -> dict[str, Any]:
    async with uow:
        try:
            p = await uow.store.update_process(tenant, process_id, changes, now)
        except Taken:
            raise _taken(str(changes.get("slug"))) from None
        if p is None:
            raise not_found("process")
        return p


async def delete_process(uow: UnitOfWork[Store], tenant: str, process_id: UUID) -> None:
    async with uow:
        if not await uow.store.delete_process(tenant, process_id):
            raise not_found("process")


async def processes(store: Store, tenant: str) -> dict[str, Any]:
    return {"items": await store.processes(tenant)}


async def process_for_staff(store: Store, tenant: str, process_id: UUID) -> dict[str, Any]:
    """Everything of a process in all languages, drafts included, e-mail addresses in clear."""
    p = await _require_process(store, tenant, process_id)
    return {**p, **await store.process_parts(tenant, process_id)}


# -- parts of a process: phases, steps, contact persons, attachments, references -----------------------------


async def _position(store: Store, table: str, tenant: str, process_id: UUID, asked: int | None) -> int:
    """Where a new part goes: where staff said, else after the last one."""
    return asked if asked is not None else await store.next_position(table, tenant, process_id)


async def add_phase(uow: UnitOfWork[Store], tenant: str, process_id: UUID, phase: dict[str, Any]) -> dict[str, Any]:
    async with uow:
        await _require_process(uow.store, tenant, process_id)
        position = await _position(uow.store, "phases", tenant, process_id, phase.get("position"))
        return await uow.store.add_phase(tenant, uuid4(), process_id, position, phase)


async def update_phase(uow: UnitOfWork[Store], tenant: str, phase_id: UUID, phase: dict[str, Any]) -> dict[str, Any]:
    async with uow:
        out = await uow.store.update_phase(tenant, phase_id, phase)
        if out is None:
            raise not_found("phase")
        return out


async def add_step(uow: UnitOfWork[Store], tenant: str, process_id: UUID, step: dict[str, Any]) -> dict[str, Any]:
    """A step or measure; its Markdown body is rendered and sanitised now, so the public read never renders."""
    async with uow:
        await _require_process(uow.store, tenant, process_id)
        try:
            return await uow.store.add_step(tenant, uuid4(), process_id, step, render_text(step.get("body")))
        except Taken:
            raise Conflict(
                "step-number-taken",
                detail=f"step {step['number']} exists in this process",
                fields=[FieldProblem("/number", "already in use", "unique")],
            ) from None


async def add_contact(uow: UnitOfWork[Store], tenant: str, process_id: UUID, contact: dict[str, Any]) -> dict[str, Any]:
    async with uow:
        await _require_process(uow.store, tenant, process_id)
        position = await _position(uow.store, "contacts", tenant, process_id, contact.get("position"))
        return await uow.store.add_contact(tenant, uuid4(), process_id, position, contact)


async def add_attachment(
    uow: UnitOfWork[Store], tenant: str, process_id: UUID, attachment: dict[str, Any]
) -> dict[str, Any]:
    async with uow:
        await _require_process(uow.store, tenant, process_id)
        position = await _position(uow.store, "attachments", tenant, process_id, attachment.get("position"))
        return await uow.store.add_attachment(tenant, uuid4(), process_id, position, attachment)


async def add_reference(
    uow: UnitOfWork[Store], tenant: str, process_id: UUID, kind: str, ref_id: UUID, position: int | None = None
) -> dict[str, Any]:
    """Refer to a meeting or survey by id; referring to it again keeps the reference there is."""
    async with uow:
        await _require_process(uow.store, tenant, process_id)
        at = await _position(uow.store, "refs", tenant, process_id, position)
        return await uow.store.add_ref(tenant, uuid4(), process_id, at, kind, ref_id)


async def delete_part(uow: UnitOfWork[Store], tenant: str, table: str, part_id: UUID) -> None:
    async with uow:
        if not await uow.store.delete_part(tenant, table, part_id):
            raise not_found(table.rstrip("s"))


# -- pages and news ------------------------------------------------------------------------------------------


async def create_article(uow: UnitOfWork[Store], tenant: str, article: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A page or news item in Markdown, stored with its sanitised HTML; a draft until published."""
    async with uow:
        if article.get("process_id") is not None:
            await _require_process(uow.store, tenant, article["process_id"])
        try:
            return await uow.store.create_article(tenant, uuid4(), article, render_text(article["body"]), now)
        except Taken:
            raise _taken(article["slug"]) from None


async def update_article(
    uow: UnitOfWork[Store], tenant: str, article_id: UUID, changes: dict[str, Any], now: datetime
) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "body":
            columns["body_md"] = value
            columns["body_html"] = render_text(value)
        else:
            columns[name] = value
    async with uow:
        try:
            out = await uow.store.update_article(tenant, article_id, columns, now)
        except Taken:
            raise _taken(str(changes.get("slug"))) from None
        if out is None:
            raise not_found("article")
        return out


def preview(source: str) -> dict[str, Any]:
    """Markdown rendered and sanitised as a stored article body is, for an editor's preview; nothing is stored."""
    return {"html": render_markdown(source)}


async def articles(store: Store, tenant: str, kind: str | None) -> dict[str, Any]:
    return {"items": await store.articles(tenant, kind)}


async def article(store: Store, tenant: str, article_id: UUID) -> dict[str, Any]:
    out = await store.article(tenant, article_id)
    if out is None:
        raise not_found("article")
    return out


# -- publishing ----------------------------------------------------------------------------------------------


def _text(value: str | None) -> str:
    return (domain.localized(json.loads(value), "de") or "") if value else ""


async def _record_published(uow: UnitOfWork[Store], what: str, rec: dict[str, Any], links: Links) -> None:
    page: LinkName
    if what == "process":
        kind, process_id, page = "process", rec["id"], "process"
    else:
        kind, process_id = rec["kind"], rec["process_id"]
        page = "page" if kind == "page" else "news"
    url = link(links.templates, links.base_url, page, tenant=rec["tenant"], slug=rec["slug"])
    await uow.record(
        ContentPublishedV1(
            content_id=rec["id"],
            kind=kind,
            process_id=process_id,
            title=_text(rec["title"]),
            summary=_text(rec["summary"]) or None,
            language="de",
            url=url,
        ),
        tenant=rec["tenant"],
        subject=f"{kind}/{rec['id']}",
    )


async def publish(
    uow: UnitOfWork[Store], tenant: str, what: str, id_: UUID, *, at: datetime | None, now: datetime, links: Links
) -> dict[str, Any]:
    """Publish a process or article now (recording ContentPublishedV1), or schedule it for ``at``; the
    publishing loop publishes it then. Something published already is refused."""
    async with uow:
        status = await uow.store.status_for_update(what, tenant, id_)
        if status is None:
            raise not_found(what)
        if status == "published":
            raise Conflict("already-published", detail=f"the {what} is published already")
        if at is not None and at > now:
            return await uow.store.schedule(what, tenant, id_, at, now)
        rec = await uow.store.publish(what, tenant, id_, now)
        assert rec is not None  # locked above and not published
        await _record_published(uow, what, rec, links)
        return {"id": rec["id"], "status": rec["status"], "publish_at": None, "published_at": rec["published_at"]}


async def unpublish(uow: UnitOfWork[Store], tenant: str, what: str, id_: UUID, now: datetime) -> dict[str, Any]:
    async with uow:
        out = await uow.store.unpublish(what, tenant, id_, now)
        if out is None:
            raise not_found(what)
        return out


async def publish_due(uow: UnitOfWork[Store], now: datetime, links: Links, limit: int = 100) -> int:
    """Scheduled processes and articles whose time has come, across tenants; how many were published."""
    n = 0
    async with uow:
        for what in ("process", "article"):
            recs = await uow.store.publish_due(what, now, limit)
            for rec in recs:
                await _record_published(uow, what, rec, links)
            n += len(recs)
    return n


async def announce_phases(uow: UnitOfWork[Store], today: date, now: datetime, limit: int = 100) -> int:
    """PhaseStartedV1 for phases of published processes whose first day has come and that still run."""
    async with uow:
        recs = await uow.store.start_phases(today, now, limit)
        for rec in recs:
            await uow.record(
                PhaseStartedV1(
                    process_id=rec["process_id"],
                    phase_id=rec["id"],
                    title=domain.localized(rec["title"], "de") or "",
                    starts_on=rec["starts_on"],
                    ends_on=rec["ends_on"],
                ),
                tenant=rec["tenant"],
                subject=f"phase/{rec['id']}",
            )
    return len(recs)


async def report_scans(uow: UnitOfWork[Store], now: datetime, limit: int = 500) -> int:
    """QrScannedV1 with the running count of a code's day, at most once per code, day and minute."""
    async with uow:
        recs = await uow.store.report_scans(now, domain.QR_REPORT_INTERVAL, limit)
        for rec in recs:
            await uow.record(
                QrScannedV1(code=rec["code"], target_kind=rec["target_kind"], day=rec["day"], scans=rec["scans"]),
                tenant=rec["tenant"],
                subject=f"qr/{rec['code']}",
            )
    return len(recs)


# -- QR short links ------------------------------------------------------------------------------------------


async def create_qr(
    uow: UnitOfWork[Store], tenant: str, qr: dict[str, Any], now: datetime, code: Callable[[], str] = new_code
) -> dict[str, Any]:
    """A new short link ``/q/<code>`` to the target, with a fresh code."""
    async with uow:
        for _ in range(CODE_TRIES):
            rec = await uow.store.create_qr(tenant, code(), qr, now)
            if rec is not None:
                return rec
    # The problem document has always said this without a type of its own.
    raise Unavailable("about:blank", detail="could not find a free code; try again")


async def qr(store: Store, tenant: str, code: str) -> dict[str, Any]:
    rec = await store.qr(tenant, code)
    if rec is None:
        raise not_found("QR code")
    return rec


async def retarget_qr(
    uow: UnitOfWork[Store], tenant: str, code: str, changes: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """Change a code's target (or label, error correction) after printing: the printed code keeps working and
    leads to the new target. A field sent as null is left as it is, except ``target_id`` and ``label``, which
    null clears."""
    values = {k: v for k, v in changes.items() if v is not None or k in ("target_id", "label")}
    async with uow:
        rec = await uow.store.update_qr(tenant, code, values, now)
        if rec is None:
            raise not_found("QR code")
        return rec


async def qr_codes(store: Store, tenant: str) -> list[dict[str, Any]]:
    return await store.qr_codes(tenant)


async def qr_scans(store: Store, tenant: str, code: str, since: date | None, until: date | None) -> dict[str, Any]:
    """Scans per day (Europe/Berlin) of one code."""
    await qr(store, tenant, code)
    days = await store.qr_scan_days(tenant, code, since, until)
    return {"code": code, "days": days, "total": sum(d["scans"] for d in days)}


async def follow(store: Store, code: str, now: datetime) -> str | None:
    """Count a scan of ``code`` (per code and Berlin day; nothing about the person) and say where it leads."""
    return await store.scan(code, domain.berlin_today(now))


# -- the public read side ------------------------------------------------------------------------------------


def _json_default(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"not serialisable: {type(value).__name__}")


def encode(body: Any) -> bytes:
    """A body as compact UTF-8 JSON (dates ISO 8601, ids as strings): the bytes an ETag is computed over."""
    return json.dumps(body, default=_json_default, ensure_ascii=False, separators=(",", ":")).encode()


async def public_processes(store: Store, tenant: str, lang: str, page: int, per_page: int) -> dict[str, Any]:
    return await store.public_processes(tenant, lang, page, per_page)


async def public_news(
    store: Store, tenant: str, process_id: UUID | None, lang: str, page: int, per_page: int
) -> dict[str, Any]:
    return await store.news_page(tenant, process_id, lang, page, per_page)


async def public_article(store: Store, tenant: str, kind: str, slug: str, lang: str) -> dict[str, Any]:
    body = await store.public_article(tenant, kind, slug, lang)
    if body is None:
        raise NotFound("not-found", detail=f"no published {kind} with this slug")
    return body


async def process_page(
    stores: AbstractAsyncContextManager[Store],
    pages: PageCache,
    tenant: str,
    slug: str,
    lang: str,
    now: datetime,
    news_page: int,
    news_per_page: int,
    also: Sequence[Hashable] = (),
) -> Page:
    """The published process page in one document (phases, current phase, steps, contacts with e-mail
    obfuscated, pages, news, live state of meetings and surveys), built once per version.

    A page ``pages`` knows to be right is answered without touching ``stores`` (no connection is taken);
    otherwise one small query says whether the cached page is still right, and only a changed one is built
    (pages.py). The page is kept under ``also`` too (the route's key for the raw request)."""
    key = (tenant, slug, lang, news_page, news_per_page)
    page = pages.fresh(key, now)
    if page is not None:
        pages.put(page, *also)  # another spelling of the same request: answered by the route itself next time
        return page
    stamp = pages.stamp(tenant)  # before reading: a change notified meanwhile keeps what we read out
    missing = NotFound("not-found", detail="no published process with this slug")
    async with stores as store:
        version = await store.page_version(tenant, slug, now)
        if version is None:
            raise missing
        cached = pages.get(key, version.key)
        if cached is not None:
            data, etag = cached.body, cached.etag
        else:
            body = await store.process_page(tenant, slug, lang, now, news_page, news_per_page)
            if body is None:
                raise missing
            data = encode(body)
            etag = domain.etag_of(data)
    until = domain.page_valid_until(now, version.boundaries, LONGEST)
    page = Page(tenant, version.key, data, etag, until, stamp)
    pages.put(page, key, *also)
    return page
