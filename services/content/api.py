"""HTTP API under /api/content/: staff endpoints (``Staff`` token, tenant from the token) and public reads."""

from __future__ import annotations

from collections import OrderedDict
from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Header, Path, Query, Request, Response

from services.content import domain, models, publishing, qr, reading, repository
from shared.http.auth import Staff
from shared.http.openapi import answers, media, merge, problems
from shared.http.problems import Problem
from shared.links import link
from shared.service import ServiceContext, context_of

NAME = "content"
router = APIRouter(tags=["content"])
staff = APIRouter(prefix="/staff", tags=["content staff"])
public = APIRouter(prefix="/public", tags=["content public"])

PUBLISHED = merge(answers(models.PublicationOut), problems(409))
PART = merge(answers(models.PartOut, 201), problems(409))
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the client's copy (If-None-Match) is current"}
}

#: Short enough that a seat count is at most this stale in a shared cache; long enough to absorb bursts.
PUBLIC_CACHE = "public, max-age=30"

Tenant = Annotated[str, Path(min_length=1, max_length=63, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]
LangQ = Annotated[Literal["de", "en"], Query(description="language; missing translations fall back to de")]
PageQ = Annotated[int, Query(ge=1, le=10_000)]
PerPageQ = Annotated[int, Query(ge=1, le=50)]


def ctx_of(request: Request) -> ServiceContext:
    return context_of(request, NAME)


def cached(request: Request, body: Any) -> Response:
    """The body as JSON with an ETag over its bytes; 304 when the client has it already."""
    data = reading.encode(body)
    etag = domain.etag_of(data)
    headers = {"ETag": etag, "Cache-Control": PUBLIC_CACHE}
    if domain.etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(content=data, media_type="application/json", headers=headers)


def _jsonable(body: Any) -> Response:
    return Response(content=reading.encode(body), media_type="application/json")


# -- staff: processes ----------------------------------------------------------------------------------------


@staff.post("/processes", status_code=201, responses=merge(answers(models.ProcessOut, 201), problems(409)))
async def create_process(request: Request, data: models.ProcessIn, principal: Staff) -> Response:
    ctx = ctx_of(request)
    async with ctx.pool.acquire() as conn:
        p = await repository.create_process(conn, principal.tenant, data, ctx.clock.now())
    return Response(reading.encode(p), status_code=201, media_type="application/json")


@staff.get("/processes", responses=answers(models.ProcessesOut))
async def list_processes(request: Request, principal: Staff) -> Response:
    async with ctx_of(request).pool.acquire() as conn:
        return _jsonable({"items": await repository.list_processes(conn, principal.tenant)})


@staff.get("/processes/{process_id}", responses=answers(models.ProcessFullOut))
async def get_process(request: Request, process_id: UUID, principal: Staff) -> Response:
    """All languages, drafts included, contact e-mail addresses in clear."""
    async with ctx_of(request).pool.acquire() as conn:
        return _jsonable(await repository.process_for_staff(conn, principal.tenant, process_id))


@staff.patch("/processes/{process_id}", responses=merge(answers(models.ProcessOut), problems(409)))
async def update_process(request: Request, process_id: UUID, data: models.ProcessPatch, principal: Staff) -> Response:
    ctx = ctx_of(request)
    async with ctx.pool.acquire() as conn:
        return _jsonable(await repository.update_process(conn, principal.tenant, process_id, data, ctx.clock.now()))


@staff.delete("/processes/{process_id}", status_code=204)
async def delete_process(request: Request, process_id: UUID, principal: Staff) -> Response:
    async with ctx_of(request).pool.acquire() as conn:
        done = await conn.fetchval(
            "delete from processes where tenant = $1 and id = $2 returning true", principal.tenant, process_id
        )
    if not done:
        raise repository.not_found("process")
    return Response(status_code=204)


async def _publish(request: Request, tenant: str, what: str, id_: UUID, data: models.PublishIn) -> Response:
    ctx = ctx_of(request)
    async with ctx.pool.acquire() as conn, conn.transaction():
        out = await publishing.publish(
            conn,
            ctx.outbox,
            tenant,
            what,
            id_,
            at=data.publish_at,
            now=ctx.clock.now(),
            base_url=ctx.settings.public_base_url,
            links=ctx.settings.links,
        )
    return _jsonable(out)


@staff.post("/processes/{process_id}/publish", responses=PUBLISHED)
async def publish_process(
    request: Request, process_id: UUID, principal: Staff, data: models.PublishIn | None = None
) -> Response:
    """Publish now, or at ``publish_at`` (the publishing loop does it then). Emits ContentPublishedV1."""
    return await _publish(request, principal.tenant, "process", process_id, data or models.PublishIn())


@staff.post("/processes/{process_id}/unpublish", responses=answers(models.PublicationOut))
async def unpublish_process(request: Request, process_id: UUID, principal: Staff) -> Response:
    ctx = ctx_of(request)
    async with ctx.pool.acquire() as conn:
        return _jsonable(await publishing.unpublish(conn, principal.tenant, "process", process_id, ctx.clock.now()))


# -- staff: parts of a process -------------------------------------------------------------------------------


@staff.post("/processes/{process_id}/phases", status_code=201, responses=PART)
async def add_phase(request: Request, process_id: UUID, data: models.PhaseIn, principal: Staff) -> Response:
    async with ctx_of(request).pool.acquire() as conn:
        out = await repository.add_phase(conn, principal.tenant, process_id, data)
    return Response(reading.encode(out), status_code=201, media_type="application/json")


@staff.put("/phases/{phase_id}", responses=answers(models.PartOut))
async def update_phase(request: Request, phase_id: UUID, data: models.PhaseIn, principal: Staff) -> Response:
    async with ctx_of(request).pool.acquire() as conn:
        return _jsonable(await repository.update_phase(conn, principal.tenant, phase_id, data))


@staff.post("/processes/{process_id}/steps", status_code=201, responses=PART)
async def add_step(request: Request, process_id: UUID, data: models.StepIn, principal: Staff) -> Response:
    async with ctx_of(request).pool.acquire() as conn:
        out = await repository.add_step(conn, principal.tenant, process_id, data)
    return Response(reading.encode(out), status_code=201, media_type="application/json")


@staff.post("/processes/{process_id}/contacts", status_code=201, responses=PART)
async def add_contact(request: Request, process_id: UUID, data: models.ContactIn, principal: Staff) -> Response:
    async with ctx_of(request).pool.acquire() as conn:
        out = await repository.add_contact(conn, principal.tenant, process_id, data)
    return Response(reading.encode(out), status_code=201, media_type="application/json")


@staff.post("/processes/{process_id}/attachments", status_code=201, responses=PART)
async def add_attachment(request: Request, process_id: UUID, data: models.AttachmentIn, principal: Staff) -> Response:
    async with ctx_of(request).pool.acquire() as conn:
        out = await repository.add_attachment(conn, principal.tenant, process_id, data)
    return Response(reading.encode(out), status_code=201, media_type="application/json")


@staff.post("/processes/{process_id}/references", status_code=201, responses=PART)
async def add_reference(request: Request, process_id: UUID, data: models.RefIn, principal: Staff) -> Response:
    """Refer to a meeting (registration service) or survey (surveys service) by id; its live state follows."""
    async with ctx_of(request).pool.acquire() as conn:
        out = await repository.add_ref(conn, principal.tenant, process_id, data)
    return Response(reading.encode(out), status_code=201, media_type="application/json")


def _deleter(table: str, what: str) -> Any:
    async def delete(request: Request, part_id: UUID, principal: Staff) -> Response:
        async with ctx_of(request).pool.acquire() as conn:
            await repository.delete_part(conn, principal.tenant, table, part_id)
        return Response(status_code=204)

    delete.__name__ = f"delete_{what}"
    return delete


for _path, _table, _what in (
    ("phases", "phases", "phase"),
    ("steps", "steps", "step"),
    ("contacts", "contacts", "contact"),
    ("attachments", "attachments", "attachment"),
    ("references", "refs", "reference"),
):
    staff.add_api_route(
        f"/{_path}/{{part_id}}", _deleter(_table, _what), methods=["DELETE"], status_code=204, response_class=Response
    )


# -- staff: pages and news -----------------------------------------------------------------------------------


@staff.post(
    "/articles",
    status_code=201,
    responses=merge(answers(models.ArticleOut, 201), problems(404, 409)),
)
async def create_article(request: Request, data: models.ArticleIn, principal: Staff) -> Response:
    """A page or a news item in Markdown; stored with its sanitised HTML. A draft until published."""
    ctx = ctx_of(request)
    async with ctx.pool.acquire() as conn:
        out = await repository.create_article(conn, principal.tenant, data, ctx.clock.now())
    return Response(reading.encode(out), status_code=201, media_type="application/json")


@staff.get("/articles", responses=answers(models.ArticlesOut))
async def list_articles(request: Request, principal: Staff, kind: Literal["page", "news"] | None = None) -> Response:
    async with ctx_of(request).pool.acquire() as conn:
        return _jsonable({"items": await repository.list_articles(conn, principal.tenant, kind)})


@staff.get("/articles/{article_id}", responses=answers(models.ArticleOut))
async def get_article(request: Request, article_id: UUID, principal: Staff) -> Response:
    async with ctx_of(request).pool.acquire() as conn:
        return _jsonable(await repository.get_article(conn, principal.tenant, article_id))


@staff.patch("/articles/{article_id}", responses=merge(answers(models.ArticleOut), problems(409)))
async def update_article(request: Request, article_id: UUID, data: models.ArticlePatch, principal: Staff) -> Response:
    ctx = ctx_of(request)
    async with ctx.pool.acquire() as conn:
        return _jsonable(await repository.update_article(conn, principal.tenant, article_id, data, ctx.clock.now()))


@staff.post("/articles/{article_id}/publish", responses=PUBLISHED)
async def publish_article(
    request: Request, article_id: UUID, principal: Staff, data: models.PublishIn | None = None
) -> Response:
    return await _publish(request, principal.tenant, "article", article_id, data or models.PublishIn())


@staff.post("/articles/{article_id}/unpublish", responses=answers(models.PublicationOut))
async def unpublish_article(request: Request, article_id: UUID, principal: Staff) -> Response:
    ctx = ctx_of(request)
    async with ctx.pool.acquire() as conn:
        return _jsonable(await publishing.unpublish(conn, principal.tenant, "article", article_id, ctx.clock.now()))


@staff.delete("/articles/{article_id}", status_code=204)
async def delete_article(request: Request, article_id: UUID, principal: Staff) -> Response:
    async with ctx_of(request).pool.acquire() as conn:
        await repository.delete_part(conn, principal.tenant, "articles", article_id)
    return Response(status_code=204)


# -- staff: QR codes -----------------------------------------------------------------------------------------


def short_link(ctx: ServiceContext, code: str) -> str:
    return f"{ctx.settings.public_base_url.rstrip('/')}/q/{code}"


def _qr_out(ctx: ServiceContext, rec: dict[str, Any]) -> dict[str, Any]:
    return {**rec, "short_link": short_link(ctx, rec["code"])}


@staff.post("/qr-codes", status_code=201, responses=merge(answers(models.QrOut, 201), problems(503)))
async def create_qr(request: Request, data: models.QrIn, principal: Staff) -> Response:
    """A new short link ``/q/<code>`` leading to the target; print its PNG or SVG."""
    ctx = ctx_of(request)
    async with ctx.pool.acquire() as conn:
        for _ in range(5):
            rec = await repository.create_qr(conn, principal.tenant, qr.new_code(), data, ctx.clock.now())
            if rec:
                break
        else:
            raise Problem(503, "Service unavailable", detail="could not find a free code; try again")
    return Response(reading.encode(_qr_out(ctx, rec)), status_code=201, media_type="application/json")


@staff.get("/qr-codes", responses=answers(models.QrListOut))
async def list_qr(request: Request, principal: Staff) -> Response:
    ctx = ctx_of(request)
    async with ctx.pool.acquire() as conn:
        items = await repository.list_qr(conn, principal.tenant)
    return _jsonable({"items": [_qr_out(ctx, r) for r in items]})


@staff.get("/qr-codes/{code}", responses=answers(models.QrOut))
async def get_qr(request: Request, code: str, principal: Staff) -> Response:
    ctx = ctx_of(request)
    async with ctx.pool.acquire() as conn:
        return _jsonable(_qr_out(ctx, await repository.get_qr(conn, principal.tenant, code)))


@staff.patch("/qr-codes/{code}", responses=answers(models.QrOut))
async def update_qr(request: Request, code: str, data: models.QrPatch, principal: Staff) -> Response:
    """Change the target after printing: the printed code keeps working and leads to the new target."""
    ctx = ctx_of(request)
    async with ctx.pool.acquire() as conn:
        return _jsonable(_qr_out(ctx, await repository.update_qr(conn, principal.tenant, code, data, ctx.clock.now())))


@staff.get("/qr-codes/{code}/scans", responses=answers(models.ScansOut))
async def qr_scans(
    request: Request, code: str, principal: Staff, since: date | None = None, until: date | None = None
) -> Response:
    """Scans per day (Europe/Berlin) of one code."""
    async with ctx_of(request).pool.acquire() as conn:
        days = await repository.qr_scan_days(conn, principal.tenant, code, since, until)
    return _jsonable({"code": code, "days": days, "total": sum(d["scans"] for d in days)})


@staff.get("/qr-codes/{code}/image.{fmt}", response_class=Response, responses=media("image/png", "image/svg+xml"))
async def qr_image(
    request: Request,
    code: str,
    fmt: Literal["png", "svg"],
    principal: Staff,
    size: Annotated[Literal["s", "m", "l", "xl"], Query(description="poster size (PNG: 354-2362 px)")] = "l",
    ec: Annotated[
        Literal["L", "M", "Q", "H"] | None, Query(description="error correction; default: the code's")
    ] = None,
) -> Response:
    ctx = ctx_of(request)
    async with ctx.pool.acquire() as conn:
        rec = await repository.get_qr(conn, principal.tenant, code)
    level = ec or rec["error_correction"]
    link = short_link(ctx, code)
    if fmt == "png":
        return Response(qr.png(link, ec=level, size=qr.SIZES[size]), media_type="image/png")
    size_mm = {"s": 30, "m": 60, "l": 100, "xl": 200}[size]
    return Response(qr.svg(link, ec=level, size_mm=size_mm), media_type="image/svg+xml")


# -- public --------------------------------------------------------------------------------------------------


@public.get("/{tenant}/processes", responses=merge(answers(models.PageOut), NOT_MODIFIED))
async def public_processes(
    request: Request, tenant: Tenant, lang: LangQ = "de", page: PageQ = 1, per_page: PerPageQ = 20
) -> Response:
    async with ctx_of(request).pool.acquire() as conn:
        body = await reading.list_processes(conn, tenant, lang, page, per_page)
    return cached(request, body)


@public.get("/{tenant}/processes/{slug}", responses=merge(answers(models.PublicProcessOut), NOT_MODIFIED))
async def public_process(
    request: Request,
    tenant: Tenant,
    slug: Annotated[str, Path(max_length=100)],
    lang: LangQ = "de",
    news_page: PageQ = 1,
    news_per_page: PerPageQ = 5,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The process page in one request: phases, current phase, steps, contacts (e-mail obfuscated), pages,
    news (paginated) and the live state of referenced meetings and surveys. ETag + If-None-Match -> 304.

    A conditional request whose ETag this process produced for the page's current version (one small query,
    ``reading.page_version``) is answered 304 without building the page again."""
    ctx = ctx_of(request)
    key = (tenant, slug, lang, news_page, news_per_page)
    memo = _versions(request)
    now = ctx.clock.now()
    async with ctx.pool.acquire() as conn:
        version = await reading.page_version(conn, tenant, slug, now)
        if version is None:
            raise Problem(404, "Not found", type_="not-found", detail="no published process with this slug")
        known = memo.get(key)
        if known is not None and known[0] == version and domain.etag_matches(if_none_match, known[1]):
            return Response(status_code=304, headers={"ETag": known[1], "Cache-Control": PUBLIC_CACHE})
        body = await reading.process_page(conn, tenant, slug, lang, now, news_page, news_per_page)
    if body is None:
        raise Problem(404, "Not found", type_="not-found", detail="no published process with this slug")
    response = cached(request, body)
    memo.put(key, (version, response.headers["etag"]))
    return response


class VersionMemo:
    """Which ETag a page had at which version, for the most recently served pages of this process."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._items: OrderedDict[tuple[object, ...], tuple[object, str]] = OrderedDict()

    def get(self, key: tuple[object, ...]) -> tuple[object, str] | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: tuple[object, ...], value: tuple[object, str]) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


def _versions(request: Request) -> VersionMemo:
    memo: VersionMemo | None = getattr(request.app.state, "content_page_versions", None)
    if memo is None:
        memo = request.app.state.content_page_versions = VersionMemo()
    return memo


@public.get("/{tenant}/news", responses=merge(answers(models.PageOut), NOT_MODIFIED))
async def public_news(
    request: Request,
    tenant: Tenant,
    lang: LangQ = "de",
    page: PageQ = 1,
    per_page: PerPageQ = 10,
    process_id: UUID | None = None,
) -> Response:
    async with ctx_of(request).pool.acquire() as conn:
        body = await reading.news_page(conn, tenant, process_id, lang, page, per_page)
    return cached(request, body)


@public.get("/{tenant}/{kind}/{slug}", responses=merge(answers(models.PublicArticleOut), NOT_MODIFIED))
async def public_article(
    request: Request,
    tenant: Tenant,
    kind: Literal["pages", "news"],
    slug: Annotated[str, Path(max_length=100)],
    lang: LangQ = "de",
) -> Response:
    async with ctx_of(request).pool.acquire() as conn:
        body = await reading.article(conn, tenant, "page" if kind == "pages" else "news", slug, lang)
    if body is None:
        raise Problem(404, "Not found", type_="not-found", detail=f"no published {kind[:-1]} with this slug")
    return cached(request, body)


router.include_router(staff)
router.include_router(public)

# -- the short link, at the root -----------------------------------------------------------------------------

short_links = APIRouter(tags=["content short links"])
_NO_TRACE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


@short_links.get(
    "/q/{code}",
    status_code=302,
    responses={302: {"description": "to the code's current target; an unknown code to CIVIC_LINK_SHORT_LINK_MISSING"}},
)
async def follow(request: Request, code: Annotated[str, Path(max_length=32)]) -> Response:
    """Count the scan (per code and day; no IP address, user agent or cookie is stored) and redirect."""
    ctx = ctx_of(request)
    day = domain.berlin_today(ctx.clock.now())
    async with ctx.pool.acquire() as conn:
        target = await repository.scan(conn, code, day)
    if target is None:
        # A person scanned a poster: a page saying the code leads nowhere (any more), not a JSON body.
        missing = link(ctx.settings.links, ctx.settings.public_base_url, "short_link_missing", code=code)
        return Response(status_code=302, headers={"Location": missing, **_NO_TRACE})
    return Response(status_code=302, headers={"Location": target, **_NO_TRACE})


# -- links between operations (OpenAPI; shared/http/openapi.py) ----------------------------------------------

_PROCESS = {"process_id": "$response.body#/id"}
_PART = {"part_id": "$response.body#/id"}
_ARTICLE = {"article_id": "$response.body#/id"}
_CODE = {"code": "$response.body#/code"}
LINKS = {
    "content.create_process": {
        f"content.{op}": _PROCESS
        for op in (
            "get_process",
            "update_process",
            "delete_process",
            "publish_process",
            "unpublish_process",
            "add_phase",
            "add_step",
            "add_contact",
            "add_attachment",
            "add_reference",
        )
    },
    "content.add_phase": {"content.update_phase": {"phase_id": "$response.body#/id"}, "content.delete_phase": _PART},
    "content.add_step": {"content.delete_step": _PART},
    "content.add_contact": {"content.delete_contact": _PART},
    "content.add_attachment": {"content.delete_attachment": _PART},
    "content.add_reference": {"content.delete_reference": _PART},
    "content.create_article": {
        f"content.{op}": _ARTICLE
        for op in ("get_article", "update_article", "publish_article", "unpublish_article", "delete_article")
    },
    "content.create_qr": {f"content.{op}": _CODE for op in ("get_qr", "update_qr", "qr_scans", "qr_image")},
}
