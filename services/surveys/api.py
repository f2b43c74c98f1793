"""HTTP API under /api/surveys/: staff endpoints (``Staff``) and public ones (``/public/{tenant}/...``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from services.surveys import export, qr
from services.surveys.config import SurveysConfig
from services.surveys.schemas import (
    CodesOut,
    ReceiptOut,
    ResponseIn,
    ResultsOut,
    SurveyIn,
    SurveyOut,
    TextsOut,
    TokensIn,
)
from services.surveys.store import Survey, Surveys
from services.surveys.throttle import Throttle
from shared.http.auth import Staff
from shared.http.openapi import XLSX, answers, media, merge, problems
from shared.http.problems import Problem
from shared.service import ServiceContext, context_of

_instances: dict[int, tuple[ServiceContext, Surveys, Throttle]] = {}


def surveys_of(ctx: ServiceContext, config: SurveysConfig) -> tuple[Surveys, Throttle]:
    """The use cases and throttle of one running service (one per context, made on first use)."""
    found = _instances.get(id(ctx))
    if found is None or found[0] is not ctx:
        throttle = Throttle(
            ctx.redis,
            ctx.keys.prefix,
            limit=config.throttle_limit,
            window_seconds=config.throttle_window_seconds,
            clock=ctx.clock,
        )
        found = (ctx, Surveys(ctx, config), throttle)
        _instances[id(ctx)] = found
    return found[1], found[2]


def _view(s: Survey, url: str, definition: dict[str, Any] | None = None, staff: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(s.id),
        "slug": s.slug,
        "title": s.title,
        "introduction": s.introduction,
        "estimated_minutes": s.estimated_minutes,
        "opens_at": s.opens_at.isoformat(),
        "closes_at": s.closes_at.isoformat(),
        "state": s.state,
        "access": s.access,
        "results_public": s.results_public,
        "process_id": str(s.process_id) if s.process_id else None,
        "url": url,
    }
    if staff:
        out |= {
            "tenant": s.tenant,
            "reminder_offsets_hours": [o // 3600 for o in s.reminder_offsets],
            "created_at": s.created_at.isoformat(),
            "updated_at": s.updated_at.isoformat(),
            "published_at": s.published_at.isoformat() if s.published_at else None,
            "opened_at": s.opened_at.isoformat() if s.opened_at else None,
            "closed_at": s.closed_at.isoformat() if s.closed_at else None,
        }
    if definition is not None:
        out["sections"] = definition["sections"]
    return out


QrFormat = Annotated[Literal["png", "svg"], Query(alias="format")]
QrSize = Annotated[int, Query(ge=qr.MIN_SIZE, le=qr.MAX_SIZE, description="edge in pixels")]
QrEcc = Annotated[Literal["L", "M", "Q", "H"], Query(description="error correction level")]
After = Annotated[UUID | None, Query(description="the next_after of the previous page")]
Limit = Annotated[int, Query(ge=1, le=500)]
QR = media("image/png", "image/svg+xml")


def make_router(config: SurveysConfig) -> APIRouter:
    router = APIRouter(tags=["surveys"])

    def use(request: Request) -> tuple[Surveys, Throttle]:
        return surveys_of(context_of(request, "surveys"), config)

    def qr_response(url: str, fmt: str, size: int, ecc: str) -> Response:
        content, media = qr.render(url, fmt=fmt, size=size, ecc=ecc)
        return Response(content, media_type=media, headers={"Cache-Control": "public, max-age=3600"})

    # --- staff -----------------------------------------------------------------------------------

    @router.post(
        "/surveys",
        status_code=201,
        summary="Create a survey as a draft",
        responses=merge(answers(SurveyOut, 201), problems(409)),
    )
    async def create(request: Request, body: SurveyIn, who: Staff) -> dict[str, Any]:
        svc, _ = use(request)
        s = await svc.create(who.tenant, body)
        return _view(s, svc.url(s), body.definition(), staff=True)

    @router.get("/surveys", summary="The tenant's surveys", responses=answers(list[SurveyOut]))
    async def list_surveys(request: Request, who: Staff) -> list[dict[str, Any]]:
        svc, _ = use(request)
        return [_view(s, svc.url(s), staff=True) for s in await svc.all(who.tenant)]

    @router.get("/surveys/{survey_id}", summary="A survey with its questions", responses=answers(SurveyOut))
    async def get_survey(request: Request, survey_id: UUID, who: Staff) -> dict[str, Any]:
        svc, _ = use(request)
        s = await svc.get(who.tenant, survey_id)
        return _view(s, svc.url(s), await svc.definition(s), staff=True)

    @router.put(
        "/surveys/{survey_id}",
        summary="Replace a draft (409 once published)",
        responses=merge(answers(SurveyOut), problems(409)),
    )
    async def replace(request: Request, survey_id: UUID, body: SurveyIn, who: Staff) -> dict[str, Any]:
        svc, _ = use(request)
        s = await svc.replace(who.tenant, survey_id, body)
        return _view(s, svc.url(s), body.definition(), staff=True)

    @router.post(
        "/surveys/{survey_id}/publish",
        summary="Freeze the draft; it opens and closes on time",
        responses=merge(answers(SurveyOut), problems(409)),
    )
    async def publish(request: Request, survey_id: UUID, who: Staff) -> dict[str, Any]:
        svc, _ = use(request)
        s = await svc.publish(who.tenant, survey_id)
        return _view(s, svc.url(s), staff=True)

    @router.post(
        "/surveys/{survey_id}/tokens",
        status_code=201,
        summary="Issue single-use access codes (shown only in this answer)",
        response_class=Response,
        responses=merge(answers(CodesOut, 201), media("text/csv", status=201), problems(409)),
    )
    async def tokens(
        request: Request,
        survey_id: UUID,
        body: TokensIn,
        who: Staff,
        format: Annotated[Literal["json", "csv"], Query()] = "json",
    ) -> Response:
        svc, _ = use(request)
        if body.count > config.max_tokens_per_request:
            raise Problem(422, "Invalid request", type_="too-many-tokens", detail="too many codes in one request")
        codes = await svc.issue_codes(who.tenant, survey_id, body.count)
        headers = {"Cache-Control": "no-store"}
        if format == "csv":
            return Response("code\n" + "\n".join(codes) + "\n", 201, media_type="text/csv", headers=headers)
        return JSONResponse({"count": len(codes), "codes": codes}, 201, headers=headers)

    @router.get("/surveys/{survey_id}/results", summary="Live results", responses=answers(ResultsOut))
    async def staff_results(request: Request, survey_id: UUID, who: Staff) -> dict[str, Any]:
        svc, _ = use(request)
        return await svc.results(await svc.get(who.tenant, survey_id))

    @router.get(
        "/surveys/{survey_id}/questions/{question_id}/texts",
        summary="Free-text answers, a page",
        responses=answers(TextsOut),
    )
    async def staff_texts(
        request: Request, survey_id: UUID, question_id: str, who: Staff, after: After = None, limit: Limit = 50
    ) -> dict[str, Any]:
        svc, _ = use(request)
        return await svc.texts(await svc.get(who.tenant, survey_id), question_id, after, limit)

    @router.get(
        "/surveys/{survey_id}/export",
        summary="Raw responses as CSV or XLSX, streamed",
        response_class=Response,
        responses=media("text/csv", XLSX),
    )
    async def export_responses(
        request: Request,
        survey_id: UUID,
        who: Staff,
        format: Annotated[Literal["csv", "xlsx"], Query()] = "csv",
    ) -> StreamingResponse:
        svc, _ = use(request)
        s = await svc.get(who.tenant, survey_id)
        qn = await svc.questionnaire(s)
        name = f"survey-{s.slug}.{format}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        if format == "xlsx":
            media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            return StreamingResponse(export.xlsx_stream(svc.pool, s, qn), media_type=media, headers=headers)
        return StreamingResponse(
            export.csv_stream(svc.pool, s, qn), media_type="text/csv; charset=utf-8", headers=headers
        )

    @router.get(
        "/surveys/{survey_id}/qr",
        summary="QR code of the public link (drafts too, for printing early)",
        response_class=Response,
        responses=QR,
    )
    async def staff_qr(
        request: Request, survey_id: UUID, who: Staff, fmt: QrFormat = "png", size: QrSize = 1200, ecc: QrEcc = "M"
    ) -> Response:
        svc, _ = use(request)
        return qr_response(svc.url(await svc.get(who.tenant, survey_id)), fmt, size, ecc)

    # --- public ----------------------------------------------------------------------------------

    @router.get(
        "/public/{tenant}/{ref}",
        summary="The questionnaire, by slug or id",
        responses=answers(SurveyOut),
    )
    async def public_survey(request: Request, tenant: str, ref: str) -> dict[str, Any]:
        svc, _ = use(request)
        s = await svc.find(tenant, ref)
        return _view(s, svc.url(s), await svc.definition(s))

    @router.post(
        "/public/{tenant}/{ref}/responses",
        status_code=201,
        summary="Answer the survey (anonymous; idempotent by Idempotency-Key or submission_key)",
        responses=merge(
            answers(ReceiptOut, 201, "Recorded"),
            answers(ReceiptOut, 200, "Recorded before with this key: the first receipt"),
            problems(403, 409),
        ),
    )
    async def respond(
        request: Request,
        tenant: str,
        ref: str,
        body: ResponseIn,
        idempotency_key: Annotated[str | None, Header(min_length=8, max_length=200)] = None,
    ) -> JSONResponse:
        svc, throttle = use(request)
        allowed, retry_after = await throttle.allow(request.client.host if request.client else "unknown")
        if not allowed:
            raise Problem(
                429,
                "Too many requests",
                type_="throttled",
                detail="too many responses from here; try again shortly",
                headers={"Retry-After": str(retry_after)},
            )
        replayed, receipt = await svc.submit(tenant, ref, body, idempotency_key)
        if replayed:
            return JSONResponse(receipt, 200, headers={"Idempotent-Replayed": "true"})
        return JSONResponse(receipt, 201)

    async def public_visible(request: Request, tenant: str, ref: str) -> tuple[Surveys, Survey]:
        svc, _ = use(request)
        s = await svc.find(tenant, ref)
        if not s.results_public:
            raise Problem(403, "Forbidden", type_="results-not-public", detail="this survey's results are not public")
        if s.state != "closed":
            raise Problem(
                409,
                "Results not yet available",
                type_="results-after-closing",
                detail=f"results are published after the survey closes at {s.closes_at.isoformat()}",
                closes_at=s.closes_at.isoformat(),
            )
        return svc, s

    @router.get(
        "/public/{tenant}/{ref}/results",
        summary="Results, after closing, if the survey makes them public",
        responses=merge(answers(ResultsOut), problems(403, 409)),
    )
    async def public_results(request: Request, tenant: str, ref: str) -> dict[str, Any]:
        svc, s = await public_visible(request, tenant, ref)
        return await svc.results(s)

    @router.get(
        "/public/{tenant}/{ref}/questions/{question_id}/texts",
        summary="Public free-text answers, a page",
        responses=merge(answers(TextsOut), problems(403, 409)),
    )
    async def public_texts(
        request: Request, tenant: str, ref: str, question_id: str, after: After = None, limit: Limit = 50
    ) -> dict[str, Any]:
        svc, s = await public_visible(request, tenant, ref)
        return await svc.texts(s, question_id, after, limit)

    @router.get(
        "/public/{tenant}/{ref}/qr",
        summary="QR code of the public link (PNG or SVG, poster sizes)",
        response_class=Response,
        responses=QR,
    )
    async def public_qr(
        request: Request, tenant: str, ref: str, fmt: QrFormat = "png", size: QrSize = 1200, ecc: QrEcc = "M"
    ) -> Response:
        svc, _ = use(request)
        return qr_response(svc.url(await svc.find(tenant, ref)), fmt, size, ecc)

    return router


# Links between operations (OpenAPI; shared/http/openapi.py): what a client can call next with an answer's values.
_SURVEY = {"survey_id": "$response.body#/id"}
_PUBLIC = {"tenant": "$response.body#/tenant", "ref": "$response.body#/slug"}
LINKS = {
    "surveys.create": {
        f"surveys.{op}": _SURVEY
        for op in ("get_survey", "replace", "publish", "tokens", "staff_results", "export_responses", "staff_qr")
    }
    | {"surveys.public_survey": _PUBLIC},
    # A published survey's public operations (its staff ones are linked from creating it).
    "surveys.publish": {f"surveys.{op}": _PUBLIC for op in ("public_survey", "respond", "public_results", "public_qr")},
}
