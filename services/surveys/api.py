"""HTTP API under /api/surveys/: staff endpoints (``Staff``) and public ones (``/public/{tenant}/...``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from services.surveys import domain, export, qr, redaction
from services.surveys.config import SurveysConfig
from services.surveys.schemas import (
    AccessCodeIn,
    AccessCodeOut,
    CodesOut,
    DraftOut,
    DraftSectionIn,
    ReceiptOut,
    RemovalIn,
    RemovalOut,
    ResponseIn,
    ResultsOut,
    SurveyIn,
    SurveyOut,
    TextsOut,
    TokensIn,
)
from services.surveys.store import Survey, Surveys, lock_key
from shared.http import ratelimit
from shared.http.auth import Staff
from shared.http.openapi import XLSX, answers, media, merge, problems
from shared.http.problems import Problem
from shared.service import ServiceContext, context_of

_instances: dict[int, tuple[ServiceContext, Surveys, ratelimit.Rule]] = {}


def surveys_of(ctx: ServiceContext, config: SurveysConfig) -> tuple[Surveys, ratelimit.Rule]:
    """The use cases and response throttle of one running service (one per context, made on first use)."""
    found = _instances.get(id(ctx))
    if found is None or found[0] is not ctx:
        rule = ratelimit.Rule("survey-responses", burst=config.throttle_burst, per_hour=config.throttle_per_hour)
        found = (ctx, Surveys(ctx, config), rule)
        _instances[id(ctx)] = found
    return found[1], found[2]


def _view(
    s: Survey, url: str, now: datetime, definition: dict[str, Any] | None = None, staff: bool = False
) -> dict[str, Any]:
    status = domain.window_status(s.state, s.opens_at, s.closes_at, now) if s.state != "draft" else "draft"
    out: dict[str, Any] = {
        "id": str(s.id),
        "slug": s.slug,
        "title": s.title,
        "introduction": s.introduction,
        "estimated_minutes": s.estimated_minutes,
        "opens_at": s.opens_at.isoformat(),
        "closes_at": s.closes_at.isoformat(),
        "state": s.state,
        # By time, so a page shows the right thing also in the moment before the clock loop flips the state.
        "status": status,
        "access": s.access,
        "results_public": s.results_public,
        "results_available": s.results_public and status == "closed",
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


DraftCode = Annotated[str, Path(min_length=1, max_length=64, description="the draft's resume code")]
#: Drafts are a person's answers: no cache on the way may keep them.
NO_STORE = {"Cache-Control": "no-store"}


async def throttled(request: Request, tenant: str, ref: str, rule: ratelimit.Rule) -> None:
    """429 when this client has written too often to this survey (responses, drafts, access-code checks).

    Per survey and client address: one survey's flood does not block the next, nor another survey."""
    ctx = context_of(request, "surveys")
    await ratelimit.enforce(request, ctx, (rule, f"{tenant}/{ref}|{ratelimit.client(request, ctx.settings)}"))


def _draft_view(
    s: Survey, qn: domain.Questionnaire, answers: dict[str, Any], code: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"survey_id": str(s.id), "expires_at": s.closes_at.isoformat()}
    if code is not None:
        out["resume_code"] = code
    return out | {"answers": answers, **domain.draft_summary(qn, answers)}


QrFormat = Annotated[Literal["png", "svg"], Query(alias="format")]
QrSize = Annotated[int, Query(ge=qr.MIN_SIZE, le=qr.MAX_SIZE, description="edge in pixels")]
QrEcc = Annotated[Literal["L", "M", "Q", "H"], Query(description="error correction level")]
After = Annotated[UUID | None, Query(description="the next_after of the previous page")]
Limit = Annotated[int, Query(ge=1, le=500)]
QR = media("image/png", "image/svg+xml")


def make_router(config: SurveysConfig) -> APIRouter:
    router = APIRouter(tags=["surveys"])

    def use(request: Request) -> tuple[Surveys, ratelimit.Rule]:
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
        return _view(s, svc.url(s), svc.ctx.clock.now(), body.definition(), staff=True)

    @router.get("/surveys", summary="The tenant's surveys", responses=answers(list[SurveyOut]))
    async def list_surveys(request: Request, who: Staff) -> list[dict[str, Any]]:
        svc, _ = use(request)
        return [_view(s, svc.url(s), svc.ctx.clock.now(), staff=True) for s in await svc.all(who.tenant)]

    @router.get("/surveys/{survey_id}", summary="A survey with its questions", responses=answers(SurveyOut))
    async def get_survey(request: Request, survey_id: UUID, who: Staff) -> dict[str, Any]:
        svc, _ = use(request)
        s = await svc.get(who.tenant, survey_id)
        return _view(s, svc.url(s), svc.ctx.clock.now(), await svc.definition(s), staff=True)

    @router.put(
        "/surveys/{survey_id}",
        summary="Replace a draft (409 once published)",
        responses=merge(answers(SurveyOut), problems(409)),
    )
    async def replace(request: Request, survey_id: UUID, body: SurveyIn, who: Staff) -> dict[str, Any]:
        svc, _ = use(request)
        s = await svc.replace(who.tenant, survey_id, body)
        return _view(s, svc.url(s), svc.ctx.clock.now(), body.definition(), staff=True)

    @router.post(
        "/surveys/{survey_id}/publish",
        summary="Freeze the draft; it opens and closes on time",
        responses=merge(answers(SurveyOut), problems(409)),
    )
    async def publish(request: Request, survey_id: UUID, who: Staff) -> dict[str, Any]:
        svc, _ = use(request)
        s = await svc.publish(who.tenant, survey_id)
        return _view(s, svc.url(s), svc.ctx.clock.now(), staff=True)

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

    @router.post(
        "/surveys/{survey_id}/texts/{text_id}/removal",
        summary="Remove a free text (or its whole response); results stay consistent, a record is kept",
        responses=merge(answers(RemovalOut), problems(409)),
    )
    async def remove_text(
        request: Request, survey_id: UUID, text_id: UUID, body: RemovalIn, who: Staff
    ) -> dict[str, Any]:
        svc, _ = use(request)
        s = await svc.get(who.tenant, survey_id)
        qn = await svc.questionnaire(s)
        async with svc.pool.acquire() as conn, conn.transaction():
            # Exclusive against responses (which hold the lock shared): counters and rows change together.
            await conn.execute("select pg_advisory_xact_lock($1)", lock_key(s.id))
            return await redaction.remove(
                conn, qn, tenant=who.tenant, survey_id=s.id, text_id=text_id, scope=body.scope,
                reason=body.reason, by=who.subject, now=svc.ctx.clock.now(),
            )  # fmt: skip

    @router.get(
        "/surveys/{survey_id}/removals",
        summary="Which free texts and responses staff removed, and why",
        responses=answers(list[RemovalOut]),
    )
    async def list_removals(request: Request, survey_id: UUID, who: Staff) -> list[dict[str, Any]]:
        svc, _ = use(request)
        s = await svc.get(who.tenant, survey_id)
        async with svc.pool.acquire() as conn:
            return await redaction.removals(conn, who.tenant, s.id)

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
        return _view(s, svc.url(s), svc.ctx.clock.now(), await svc.definition(s))

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
        await throttled(request, tenant, ref, throttle)
        replayed, receipt = await svc.submit(tenant, ref, body, idempotency_key)
        if replayed:
            return JSONResponse(receipt, 200, headers={"Idempotent-Replayed": "true"})
        return JSONResponse(receipt, 201)

    # --- public: before answering, and drafts (save and resume) --------------------------------------

    @router.post(
        "/public/{tenant}/{ref}/access-code",
        summary="Check a letter's access code (known and unused; it is used up only by the submission)",
        responses=merge(answers(AccessCodeOut), problems(403)),
    )
    async def check_access_code(request: Request, tenant: str, ref: str, body: AccessCodeIn) -> dict[str, Any]:
        svc, throttle = use(request)
        await throttled(request, tenant, ref, throttle)
        await svc.check_code(tenant, ref, body.code)
        return {"valid": True}

    @router.post(
        "/public/{tenant}/{ref}/drafts",
        status_code=201,
        summary="Start a draft; its resume code is shown only in this answer",
        responses=merge(answers(DraftOut, 201), problems(409)),
    )
    async def start_draft(request: Request, tenant: str, ref: str) -> JSONResponse:
        svc, throttle = use(request)
        await throttled(request, tenant, ref, throttle)
        s, code, answers = await svc.start_draft(tenant, ref)
        view = _draft_view(s, await svc.questionnaire(s), answers, code)
        return JSONResponse(view, 201, headers=NO_STORE)

    @router.get(
        "/public/{tenant}/{ref}/drafts/{code}",
        summary="A draft's answers and where it stands",
        responses=answers(DraftOut),
    )
    async def read_draft(request: Request, tenant: str, ref: str, code: DraftCode) -> JSONResponse:
        svc, _ = use(request)
        s, answers = await svc.read_draft(tenant, ref, code)
        return JSONResponse(_draft_view(s, await svc.questionnaire(s), answers), headers=NO_STORE)

    @router.put(
        "/public/{tenant}/{ref}/drafts/{code}/sections/{section_id}",
        summary="Save one section's answers into the draft (checked; 422 lists every bad answer)",
        responses=merge(answers(DraftOut), problems(409)),
    )
    async def save_draft_section(
        request: Request, tenant: str, ref: str, code: DraftCode, section_id: str, body: DraftSectionIn
    ) -> JSONResponse:
        svc, _ = use(request)
        s, answers = await svc.save_draft_section(tenant, ref, code, section_id, body.answers, partial=body.partial)
        return JSONResponse(_draft_view(s, await svc.questionnaire(s), answers), headers=NO_STORE)

    @router.delete("/public/{tenant}/{ref}/drafts/{code}", status_code=204, summary="Delete a draft")
    async def delete_draft(request: Request, tenant: str, ref: str, code: DraftCode) -> Response:
        svc, _ = use(request)
        await svc.delete_draft(tenant, ref, code)
        return Response(status_code=204)

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
