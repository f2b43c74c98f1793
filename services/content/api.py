"""HTTP API under /api/content/: staff endpoints (a ``staff`` or ``editor`` token, tenant from the token) and
public reads; the short link ``/q/<code>`` at the root. Routes only: each parses the request, calls one use case
and renders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response

from services.content import domain, pages, schemas, use_cases
from services.content.short_links import SIZES, SIZES_MM, PosterSize
from services.content.store import Store
from shared import qr
from shared.http.auth import Principal, require
from shared.http.lean import shortcut_route
from shared.http.openapi import answers, media, merge, problems
from shared.links import link
from shared.service import ServiceContext, context_of
from shared.unit_of_work import PostgresUnitOfWork, Reading

NAME = "content"
router = APIRouter(tags=["content"])
public = APIRouter(prefix="/public", tags=["content public"])

PUBLISHED = merge(answers(schemas.PublicationOut), problems(409))
PART = merge(answers(schemas.PartOut, 201), problems(409))
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the client's copy (If-None-Match) is current"}
}

#: Short enough that a seat count is at most this stale in a shared cache; long enough to absorb bursts.
PUBLIC_CACHE = "public, max-age=30"

#: Content is edited by staff and by editors (the console's role for content only).
Editor = Annotated[Principal, Depends(require("staff", "editor"))]


async def _pages_follow_writes(request: Request, principal: Editor) -> AsyncIterator[None]:
    """After a staff write that succeeded, this process's cached pages of the tenant are dropped before the
    answer goes out (``scope="function"``): a page read right after the edit shows it, though the edit's
    notification reaches the process a moment later."""
    yield
    if request.method != "GET":
        pages.page_cache(ctx_of(request)).changed(principal.tenant)


staff = APIRouter(
    prefix="/staff", tags=["content staff"], dependencies=[Depends(_pages_follow_writes, scope="function")]
)

Tenant = Annotated[str, Path(min_length=1, max_length=63, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]
LangQ = Annotated[Literal["de", "en"], Query(description="language; missing translations fall back to de")]
PageQ = Annotated[int, Query(ge=1, le=10_000)]
PerPageQ = Annotated[int, Query(ge=1, le=50)]


def ctx_of(request: Request) -> ServiceContext:
    return context_of(request, NAME)


def uow(request: Request) -> PostgresUnitOfWork[Store]:
    """A unit of work for one command."""
    return ctx_of(request).uows(Store)()


def reading(request: Request) -> Reading[Store]:
    """The store on a pooled connection, for one query."""
    return ctx_of(request).uows(Store).reading()


def links(ctx: ServiceContext) -> use_cases.Links:
    return use_cases.Links(ctx.settings.public_base_url, ctx.settings.links)


def json_response(body: Any, status_code: int = 200) -> Response:
    return Response(use_cases.encode(body), status_code=status_code, media_type="application/json")


def cached(request: Request, data: bytes, etag: str) -> Response:
    """JSON bytes with their ETag; 304 without a body when the client has them already."""
    headers = {"ETag": etag, "Cache-Control": PUBLIC_CACHE}
    if domain.etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(content=data, media_type="application/json", headers=headers)


def cached_body(request: Request, body: Any) -> Response:
    data = use_cases.encode(body)
    return cached(request, data, domain.etag_of(data))


# -- staff: processes ----------------------------------------------------------------------------------------


@staff.post("/processes", status_code=201, responses=merge(answers(schemas.ProcessOut, 201), problems(409)))
async def create_process(request: Request, data: schemas.ProcessIn, principal: Editor) -> Response:
    now = ctx_of(request).clock.now()
    p = await use_cases.create_process(uow(request), principal.tenant, schemas.fields(data), now)
    return json_response(p, 201)


@staff.get("/processes", responses=answers(schemas.ProcessesOut))
async def list_processes(request: Request, principal: Editor) -> Response:
    async with reading(request) as store:
        return json_response(await use_cases.processes(store, principal.tenant))


@staff.get("/processes/{process_id}", responses=answers(schemas.ProcessFullOut))
async def get_process(request: Request, process_id: UUID, principal: Editor) -> Response:
    """All languages, drafts included, contact e-mail addresses in clear."""
    async with reading(request) as store:
        return json_response(await use_cases.process_for_staff(store, principal.tenant, process_id))


@staff.patch("/processes/{process_id}", responses=merge(answers(schemas.ProcessOut), problems(409)))
async def update_process(request: Request, process_id: UUID, data: schemas.ProcessPatch, principal: Editor) -> Response:
    now = ctx_of(request).clock.now()
    changes = schemas.changes(data)
    return json_response(await use_cases.update_process(uow(request), principal.tenant, process_id, changes, now))


@staff.delete("/processes/{process_id}", status_code=204)
async def delete_process(request: Request, process_id: UUID, principal: Editor) -> Response:
    await use_cases.delete_process(uow(request), principal.tenant, process_id)
    return Response(status_code=204)


async def _publish(request: Request, tenant: str, what: str, id_: UUID, data: schemas.PublishIn) -> Response:
    ctx = ctx_of(request)
    out = await use_cases.publish(
        uow(request), tenant, what, id_, at=data.publish_at, now=ctx.clock.now(), links=links(ctx)
    )
    return json_response(out)


@staff.post("/processes/{process_id}/publish", responses=PUBLISHED)
async def publish_process(
    request: Request, process_id: UUID, principal: Editor, data: schemas.PublishIn | None = None
) -> Response:
    """Publish now, or at ``publish_at`` (the publishing loop does it then). Emits ContentPublishedV1."""
    return await _publish(request, principal.tenant, "process", process_id, data or schemas.PublishIn())


@staff.post("/processes/{process_id}/unpublish", responses=answers(schemas.PublicationOut))
async def unpublish_process(request: Request, process_id: UUID, principal: Editor) -> Response:
    now = ctx_of(request).clock.now()
    return json_response(await use_cases.unpublish(uow(request), principal.tenant, "process", process_id, now))


# -- staff: parts of a process -------------------------------------------------------------------------------


@staff.post("/processes/{process_id}/phases", status_code=201, responses=PART)
async def add_phase(request: Request, process_id: UUID, data: schemas.PhaseIn, principal: Editor) -> Response:
    out = await use_cases.add_phase(uow(request), principal.tenant, process_id, schemas.fields(data))
    return json_response(out, 201)


@staff.put("/phases/{phase_id}", responses=answers(schemas.PartOut))
async def update_phase(request: Request, phase_id: UUID, data: schemas.PhaseIn, principal: Editor) -> Response:
    return json_response(await use_cases.update_phase(uow(request), principal.tenant, phase_id, schemas.fields(data)))


@staff.post("/processes/{process_id}/steps", status_code=201, responses=PART)
async def add_step(request: Request, process_id: UUID, data: schemas.StepIn, principal: Editor) -> Response:
    out = await use_cases.add_step(uow(request), principal.tenant, process_id, schemas.fields(data))
    return json_response(out, 201)


@staff.post("/processes/{process_id}/contacts", status_code=201, responses=PART)
async def add_contact(request: Request, process_id: UUID, data: schemas.ContactIn, principal: Editor) -> Response:
    out = await use_cases.add_contact(uow(request), principal.tenant, process_id, schemas.fields(data))
    return json_response(out, 201)


@staff.post("/processes/{process_id}/attachments", status_code=201, responses=PART)
async def add_attachment(request: Request, process_id: UUID, data: schemas.AttachmentIn, principal: Editor) -> Response:
    out = await use_cases.add_attachment(uow(request), principal.tenant, process_id, schemas.fields(data))
    return json_response(out, 201)


@staff.post("/processes/{process_id}/references", status_code=201, responses=PART)
async def add_reference(request: Request, process_id: UUID, data: schemas.RefIn, principal: Editor) -> Response:
    """Refer to a meeting (registration service) or survey (surveys service) by id; its live state follows."""
    out = await use_cases.add_reference(
        uow(request), principal.tenant, process_id, data.kind, data.ref_id, data.position
    )
    return json_response(out, 201)


def _deleter(table: str, what: str) -> Any:
    async def delete(request: Request, part_id: UUID, principal: Editor) -> Response:
        await use_cases.delete_part(uow(request), principal.tenant, table, part_id)
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
    responses=merge(answers(schemas.ArticleOut, 201), problems(404, 409)),
)
async def create_article(request: Request, data: schemas.ArticleIn, principal: Editor) -> Response:
    """A page or a news item in Markdown; stored with its sanitised HTML. A draft until published."""
    now = ctx_of(request).clock.now()
    out = await use_cases.create_article(uow(request), principal.tenant, schemas.fields(data), now)
    return json_response(out, 201)


@staff.get("/articles", responses=answers(schemas.ArticlesOut))
async def list_articles(request: Request, principal: Editor, kind: Literal["page", "news"] | None = None) -> Response:
    async with reading(request) as store:
        return json_response(await use_cases.articles(store, principal.tenant, kind))


@staff.get("/articles/{article_id}", responses=answers(schemas.ArticleOut))
async def get_article(request: Request, article_id: UUID, principal: Editor) -> Response:
    async with reading(request) as store:
        return json_response(await use_cases.article(store, principal.tenant, article_id))


@staff.patch("/articles/{article_id}", responses=merge(answers(schemas.ArticleOut), problems(409)))
async def update_article(request: Request, article_id: UUID, data: schemas.ArticlePatch, principal: Editor) -> Response:
    now = ctx_of(request).clock.now()
    changes = schemas.changes(data)
    return json_response(await use_cases.update_article(uow(request), principal.tenant, article_id, changes, now))


@staff.post("/preview", responses=answers(schemas.PreviewOut))
async def preview_markdown(data: schemas.PreviewIn, principal: Editor) -> Response:
    """The HTML a Markdown body becomes when stored (same renderer and sanitiser); nothing is stored."""
    return json_response(use_cases.preview(data.body))


@staff.post("/articles/{article_id}/publish", responses=PUBLISHED)
async def publish_article(
    request: Request, article_id: UUID, principal: Editor, data: schemas.PublishIn | None = None
) -> Response:
    return await _publish(request, principal.tenant, "article", article_id, data or schemas.PublishIn())


@staff.post("/articles/{article_id}/unpublish", responses=answers(schemas.PublicationOut))
async def unpublish_article(request: Request, article_id: UUID, principal: Editor) -> Response:
    now = ctx_of(request).clock.now()
    return json_response(await use_cases.unpublish(uow(request), principal.tenant, "article", article_id, now))


@staff.delete("/articles/{article_id}", status_code=204)
async def delete_article(request: Request, article_id: UUID, principal: Editor) -> Response:
    await use_cases.delete_part(uow(request), principal.tenant, "articles", article_id)
    return Response(status_code=204)


# -- staff: QR codes -----------------------------------------------------------------------------------------


def short_link(ctx: ServiceContext, code: str) -> str:
    return f"{ctx.settings.public_base_url.rstrip('/')}/q/{code}"


def _qr_out(ctx: ServiceContext, rec: dict[str, Any]) -> dict[str, Any]:
    return {**rec, "short_link": short_link(ctx, rec["code"])}


@staff.post("/qr-codes", status_code=201, responses=merge(answers(schemas.QrOut, 201), problems(503)))
async def create_qr(request: Request, data: schemas.QrIn, principal: Editor) -> Response:
    """A new short link ``/q/<code>`` leading to the target; print its PNG or SVG."""
    ctx = ctx_of(request)
    rec = await use_cases.create_qr(uow(request), principal.tenant, schemas.fields(data), ctx.clock.now())
    return json_response(_qr_out(ctx, rec), 201)


@staff.get("/qr-codes", responses=answers(schemas.QrListOut))
async def list_qr(request: Request, principal: Editor) -> Response:
    ctx = ctx_of(request)
    async with reading(request) as store:
        items = await use_cases.qr_codes(store, principal.tenant)
    return json_response({"items": [_qr_out(ctx, r) for r in items]})


@staff.get("/qr-codes/{code}", responses=answers(schemas.QrOut))
async def get_qr(request: Request, code: str, principal: Editor) -> Response:
    ctx = ctx_of(request)
    async with reading(request) as store:
        return json_response(_qr_out(ctx, await use_cases.qr(store, principal.tenant, code)))


@staff.patch("/qr-codes/{code}", responses=answers(schemas.QrOut))
async def update_qr(request: Request, code: str, data: schemas.QrPatch, principal: Editor) -> Response:
    """Change the target after printing: the printed code keeps working and leads to the new target."""
    ctx = ctx_of(request)
    rec = await use_cases.retarget_qr(uow(request), principal.tenant, code, schemas.changes(data), ctx.clock.now())
    return json_response(_qr_out(ctx, rec))


@staff.get("/qr-codes/{code}/scans", responses=answers(schemas.ScansOut))
async def qr_scans(
    request: Request, code: str, principal: Editor, since: date | None = None, until: date | None = None
) -> Response:
    """Scans per day (Europe/Berlin) of one code."""
    async with reading(request) as store:
        return json_response(await use_cases.qr_scans(store, principal.tenant, code, since, until))


@staff.get("/qr-codes/{code}/image.{fmt}", response_class=Response, responses=media("image/png", "image/svg+xml"))
async def qr_image(
    request: Request,
    code: str,
    fmt: Literal["png", "svg"],
    principal: Editor,
    size: Annotated[PosterSize, Query(description="poster size (PNG: 354-2362 px)")] = "l",
    ec: Annotated[
        Literal["L", "M", "Q", "H"] | None, Query(description="error correction; default: the code's")
    ] = None,
) -> Response:
    ctx = ctx_of(request)
    async with reading(request) as store:
        rec = await use_cases.qr(store, principal.tenant, code)
    level = ec or rec["error_correction"]
    target = short_link(ctx, code)
    if fmt == "png":
        return Response(qr.png(target, ec=level, size=SIZES[size]), media_type="image/png")
    return Response(qr.svg(target, ec=level, size=SIZES_MM[size]), media_type="image/svg+xml")


# -- public --------------------------------------------------------------------------------------------------


@public.get("/{tenant}/processes", responses=merge(answers(schemas.PageOut), NOT_MODIFIED))
async def public_processes(
    request: Request, tenant: Tenant, lang: LangQ = "de", page: PageQ = 1, per_page: PerPageQ = 20
) -> Response:
    async with reading(request) as store:
        body = await use_cases.public_processes(store, tenant, lang, page, per_page)
    return cached_body(request, body)


def _raw_key(request: Request) -> tuple[str, str, bytes]:
    """The process page asked for, as the request spells it: path parameters and query string unparsed."""
    params = request.path_params
    return params["tenant"], params["slug"], request.scope["query_string"]


def _cached_page(request: Request) -> Response | None:
    """The process page from this process's cache by the raw request, before any parameter is parsed; None
    when the cache cannot answer it without PostgreSQL (the endpoint then does)."""
    ctx = ctx_of(request)
    page = pages.page_cache(ctx).fresh(_raw_key(request), ctx.clock.now())
    return None if page is None else cached(request, page.body, page.etag)


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

    The page is built once per version of what it shows and kept in the process: while nothing it shows
    changes (PostgreSQL notifies every change) a repeated or conditional request costs no query at all."""
    ctx = ctx_of(request)
    page = await use_cases.process_page(
        reading(request),
        pages.page_cache(ctx),
        tenant,
        slug,
        lang,
        ctx.clock.now(),
        news_page,
        news_per_page,
        also=[_raw_key(request)],
    )
    return cached(request, page.body, page.etag)


# A repeated or conditional request is answered from the cache before FastAPI parses its parameters.
public.add_api_route(
    "/{tenant}/processes/{slug}",
    public_process,
    methods=["GET"],
    responses=merge(answers(schemas.PublicProcessOut), NOT_MODIFIED),
    route_class_override=shortcut_route(_cached_page),
)


@public.get("/{tenant}/news", responses=merge(answers(schemas.PageOut), NOT_MODIFIED))
async def public_news(
    request: Request,
    tenant: Tenant,
    lang: LangQ = "de",
    page: PageQ = 1,
    per_page: PerPageQ = 10,
    process_id: UUID | None = None,
) -> Response:
    async with reading(request) as store:
        body = await use_cases.public_news(store, tenant, process_id, lang, page, per_page)
    return cached_body(request, body)


@public.get("/{tenant}/{kind}/{slug}", responses=merge(answers(schemas.PublicArticleOut), NOT_MODIFIED))
async def public_article(
    request: Request,
    tenant: Tenant,
    kind: Literal["pages", "news"],
    slug: Annotated[str, Path(max_length=100)],
    lang: LangQ = "de",
) -> Response:
    async with reading(request) as store:
        body = await use_cases.public_article(store, tenant, "page" if kind == "pages" else "news", slug, lang)
    return cached_body(request, body)


# Public reads first: a request is matched against the routes in order, and the citizens' pages are what a
# crowd asks for (the prefixes keep the two apart, so the order changes nothing else).
router.include_router(public)
router.include_router(staff)

# -- the short link, at the root -----------------------------------------------------------------------------

root_router = APIRouter(tags=["content short links"])
_NO_TRACE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


@root_router.get(
    "/q/{code}",
    status_code=302,
    responses={302: {"description": "to the code's current target; an unknown code to CIVIC_LINK_SHORT_LINK_MISSING"}},
)
async def follow(request: Request, code: Annotated[str, Path(max_length=32)]) -> Response:
    """Count the scan (per code and day; no IP address, user agent or cookie is stored) and redirect."""
    ctx = ctx_of(request)
    async with reading(request) as store:
        target = await use_cases.follow(store, code, ctx.clock.now())
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
