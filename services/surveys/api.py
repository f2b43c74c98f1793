"""HTTP API under /api/surveys/: staff endpoints (``Staff``) and public ones (``/public/{tenant}/...``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import StringConstraints, TypeAdapter

from services.surveys import domain, export
from services.surveys.domain import Survey
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
from services.surveys.settings import settings_of
from services.surveys.store import Store
from services.surveys.use_cases import drafts, removals, responses, results, surveys
from services.surveys.use_cases import tokens as access_codes
from services.surveys.use_cases.common import Units
from services.surveys.use_cases.drafts import Draft
from services.surveys.use_cases.surveys import SurveyCommand
from shared import qr
from shared.http import ratelimit
from shared.http.auth import Staff
from shared.http.lean import LeanRoute, documented, header, json_body
from shared.http.openapi import XLSX, answers, media, merge, problems
from shared.links import link
from shared.service import ServiceContext, context_of

NAME = "surveys"
router = APIRouter(tags=["surveys"])


def _use(request: Request) -> tuple[ServiceContext, Units]:
    ctx = context_of(request, NAME)
    return ctx, ctx.uows(Store)


def _url(ctx: ServiceContext) -> Callable[[Survey], str]:
    def url(s: Survey) -> str:
        return link(ctx.settings.links, ctx.settings.public_base_url, "survey", tenant=s.tenant, slug=s.slug)

    return url


def _command(body: SurveyIn) -> SurveyCommand:
    return SurveyCommand(**body.model_dump(exclude={"sections"}), definition=body.definition())


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


async def throttled(request: Request, ctx: ServiceContext, tenant: str, ref: str) -> None:
    """429 when this client has written too often to this survey (responses, drafts, access-code checks).

    Per survey and client address: one survey's flood does not block the next, nor another survey."""
    own = settings_of(ctx)
    rule = ratelimit.Rule("survey-responses", burst=own.throttle_burst, per_hour=own.throttle_per_hour)
    await ratelimit.enforce(request, ctx, (rule, f"{tenant}/{ref}|{ratelimit.client(request, ctx.settings)}"))


def _draft_view(d: Draft) -> dict[str, Any]:
    out: dict[str, Any] = {"survey_id": str(d.survey.id), "expires_at": d.survey.closes_at.isoformat()}
    if d.code is not None:
        out["resume_code"] = d.code
    return out | {"answers": d.answers, **domain.draft_summary(d.questionnaire, d.answers)}


QrFormat = Annotated[Literal["png", "svg"], Query(alias="format")]
#: From a phone screen to a poster.
QR_MIN_SIZE, QR_MAX_SIZE = 100, 8000
QrSize = Annotated[int, Query(ge=QR_MIN_SIZE, le=QR_MAX_SIZE, description="edge in pixels")]
QrEcc = Annotated[Literal["L", "M", "Q", "H"], Query(description="error correction level")]
After = Annotated[UUID | None, Query(description="the next_after of the previous page")]
Limit = Annotated[int, Query(ge=1, le=500)]
QR = media("image/png", "image/svg+xml")


def _qr(url: str, fmt: str, size: int, ecc: qr.ErrorCorrection) -> Response:
    if fmt == "svg":
        content, media_type = qr.svg(url, size=str(size), ec=ecc), "image/svg+xml"
    else:
        content, media_type = qr.png(url, size=size, ec=ecc), "image/png"
    return Response(content, media_type=media_type, headers={"Cache-Control": "public, max-age=3600"})


# --- public: the answer itself ------------------------------------------------------------------


#: The Idempotency-Key header as the route documents and checks it.
IDEMPOTENCY_KEY = TypeAdapter(Annotated[str, StringConstraints(min_length=8, max_length=200)])


async def respond(request: Request, tenant: str, ref: str) -> JSONResponse:
    """Answer the survey (anonymous; idempotent by Idempotency-Key or submission_key)."""
    body = await json_body(request, ResponseIn)
    idempotency_key = header(request, "idempotency-key", IDEMPOTENCY_KEY)
    ctx, uows = _use(request)
    await throttled(request, ctx, tenant, ref)
    replayed, receipt = await responses.submit(
        uows, tenant, ref, answers=dict(body.answers), token=body.token, draft=body.draft,
        key=idempotency_key or body.submission_key, now=ctx.clock.now(), shards=settings_of(ctx).counter_shards,
    )  # fmt: skip
    if replayed:
        return JSONResponse(receipt, 200, headers={"Idempotent-Replayed": "true"})
    return JSONResponse(receipt, 201)


# The route a poster's flood hits, lean (shared/http/lean.py): no dependencies resolved, the body validated from
# its bytes; first in the router, since a request is matched against the routes in order (no other route takes
# a POST of this shape).
router.add_api_route(
    "/public/{tenant}/{ref}/responses",
    respond,
    methods=["POST"],
    status_code=201,
    summary="Answer the survey (anonymous; idempotent by Idempotency-Key or submission_key)",
    openapi_extra=documented(ResponseIn)
    | {
        "parameters": [
            {
                "name": "idempotency-key",
                "in": "header",
                "required": False,
                "schema": IDEMPOTENCY_KEY.json_schema() | {"title": "Idempotency-Key"},
            }
        ]
    },
    responses=merge(
        answers(ReceiptOut, 201, "Recorded"),
        answers(ReceiptOut, 200, "Recorded before with this key: the first receipt"),
        problems(403, 409),
    ),
    route_class_override=LeanRoute,
)


# --- staff ---------------------------------------------------------------------------------------


@router.post(
    "/surveys",
    status_code=201,
    summary="Create a survey as a draft",
    responses=merge(answers(SurveyOut, 201), problems(409)),
)
async def create(request: Request, body: SurveyIn, who: Staff) -> dict[str, Any]:
    ctx, uows = _use(request)
    now = ctx.clock.now()
    reminders = settings_of(ctx).reminder_offsets_hours
    s = await surveys.create(uows, who.tenant, _command(body), now=now, default_reminders=reminders)
    return _view(s, _url(ctx)(s), ctx.clock.now(), body.definition(), staff=True)


@router.get("/surveys", summary="The tenant's surveys", responses=answers(list[SurveyOut]))
async def list_surveys(request: Request, who: Staff) -> list[dict[str, Any]]:
    ctx, uows = _use(request)
    url, now = _url(ctx), ctx.clock.now()
    return [_view(s, url(s), now, staff=True) for s in await surveys.all_surveys(uows, who.tenant)]


@router.get("/surveys/{survey_id}", summary="A survey with its questions", responses=answers(SurveyOut))
async def get_survey(request: Request, survey_id: UUID, who: Staff) -> dict[str, Any]:
    ctx, uows = _use(request)
    s, definition = await surveys.staff_survey_with_questions(uows, who.tenant, survey_id)
    return _view(s, _url(ctx)(s), ctx.clock.now(), definition, staff=True)


@router.put(
    "/surveys/{survey_id}",
    summary="Replace a draft (409 once published)",
    responses=merge(answers(SurveyOut), problems(409)),
)
async def replace(request: Request, survey_id: UUID, body: SurveyIn, who: Staff) -> dict[str, Any]:
    ctx, uows = _use(request)
    reminders = settings_of(ctx).reminder_offsets_hours
    s = await surveys.replace(
        uows, who.tenant, survey_id, _command(body), now=ctx.clock.now(), default_reminders=reminders
    )
    return _view(s, _url(ctx)(s), ctx.clock.now(), body.definition(), staff=True)


@router.post(
    "/surveys/{survey_id}/publish",
    summary="Freeze the draft; it opens and closes on time",
    responses=merge(answers(SurveyOut), problems(409)),
)
async def publish(request: Request, survey_id: UUID, who: Staff) -> dict[str, Any]:
    ctx, uows = _use(request)
    url = _url(ctx)
    s = await surveys.publish(uows, who.tenant, survey_id, now=ctx.clock.now(), url=url)
    return _view(s, url(s), ctx.clock.now(), staff=True)


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
    ctx, uows = _use(request)
    most = settings_of(ctx).max_tokens_per_request
    codes = await access_codes.issue_codes(uows, who.tenant, survey_id, body.count, most=most)
    headers = {"Cache-Control": "no-store"}
    if format == "csv":
        return Response("code\n" + "\n".join(codes) + "\n", 201, media_type="text/csv", headers=headers)
    return JSONResponse({"count": len(codes), "codes": codes}, 201, headers=headers)


@router.get("/surveys/{survey_id}/results", summary="Live results", responses=answers(ResultsOut))
async def staff_results(request: Request, survey_id: UUID, who: Staff) -> dict[str, Any]:
    _, uows = _use(request)
    return await results.staff_results(uows, who.tenant, survey_id)


@router.get(
    "/surveys/{survey_id}/questions/{question_id}/texts",
    summary="Free-text answers, a page",
    responses=answers(TextsOut),
)
async def staff_texts(
    request: Request, survey_id: UUID, question_id: str, who: Staff, after: After = None, limit: Limit = 50
) -> dict[str, Any]:
    _, uows = _use(request)
    return await results.staff_texts(uows, who.tenant, survey_id, question_id, after, limit)


@router.post(
    "/surveys/{survey_id}/texts/{text_id}/removal",
    summary="Remove a free text (or its whole response); results stay consistent, a record is kept",
    responses=merge(answers(RemovalOut), problems(409)),
)
async def remove_text(request: Request, survey_id: UUID, text_id: UUID, body: RemovalIn, who: Staff) -> dict[str, Any]:
    ctx, uows = _use(request)
    return await removals.remove(
        uows, who.tenant, survey_id, text_id, scope=body.scope, reason=body.reason, by=who.subject,
        now=ctx.clock.now(),
    )  # fmt: skip


@router.get(
    "/surveys/{survey_id}/removals",
    summary="Which free texts and responses staff removed, and why",
    responses=answers(list[RemovalOut]),
)
async def list_removals(request: Request, survey_id: UUID, who: Staff) -> list[dict[str, Any]]:
    _, uows = _use(request)
    return await removals.removals(uows, who.tenant, survey_id)


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
    _, uows = _use(request)
    s, qn, rows = await results.export(uows, who.tenant, survey_id)
    name = f"survey-{s.slug}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if format == "xlsx":
        media_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        return StreamingResponse(export.xlsx_stream(rows, qn), media_type=media_type, headers=headers)
    return StreamingResponse(export.csv_stream(rows, qn), media_type="text/csv; charset=utf-8", headers=headers)


@router.get(
    "/surveys/{survey_id}/qr",
    summary="QR code of the public link (drafts too, for printing early)",
    response_class=Response,
    responses=QR,
)
async def staff_qr(
    request: Request, survey_id: UUID, who: Staff, fmt: QrFormat = "png", size: QrSize = 1200, ecc: QrEcc = "M"
) -> Response:
    ctx, uows = _use(request)
    return _qr(_url(ctx)(await surveys.staff_survey(uows, who.tenant, survey_id)), fmt, size, ecc)


# --- public --------------------------------------------------------------------------------------


@router.get(
    "/public/{tenant}/{ref}",
    summary="The questionnaire, by slug or id",
    responses=answers(SurveyOut),
)
async def public_survey(request: Request, tenant: str, ref: str) -> dict[str, Any]:
    ctx, uows = _use(request)
    s, definition = await surveys.public_survey_with_questions(uows, tenant, ref)
    return _view(s, _url(ctx)(s), ctx.clock.now(), definition)


# --- public: before answering, and drafts (save and resume) --------------------------------------


@router.post(
    "/public/{tenant}/{ref}/access-code",
    summary="Check a letter's access code (known and unused; it is used up only by the submission)",
    responses=merge(answers(AccessCodeOut), problems(403)),
)
async def check_access_code(request: Request, tenant: str, ref: str, body: AccessCodeIn) -> dict[str, Any]:
    ctx, uows = _use(request)
    await throttled(request, ctx, tenant, ref)
    await access_codes.check_code(uows, tenant, ref, body.code, now=ctx.clock.now())
    return {"valid": True}


@router.post(
    "/public/{tenant}/{ref}/drafts",
    status_code=201,
    summary="Start a draft; its resume code is shown only in this answer",
    responses=merge(answers(DraftOut, 201), problems(409)),
)
async def start_draft(request: Request, tenant: str, ref: str) -> JSONResponse:
    ctx, uows = _use(request)
    await throttled(request, ctx, tenant, ref)
    draft = await drafts.start_draft(uows, tenant, ref, now=ctx.clock.now())
    return JSONResponse(_draft_view(draft), 201, headers=NO_STORE)


@router.get(
    "/public/{tenant}/{ref}/drafts/{code}",
    summary="A draft's answers and where it stands",
    responses=answers(DraftOut),
)
async def read_draft(request: Request, tenant: str, ref: str, code: DraftCode) -> JSONResponse:
    ctx, uows = _use(request)
    draft = await drafts.read_draft(uows, tenant, ref, code, now=ctx.clock.now())
    return JSONResponse(_draft_view(draft), headers=NO_STORE)


@router.put(
    "/public/{tenant}/{ref}/drafts/{code}/sections/{section_id}",
    summary="Save one section's answers into the draft (checked; 422 lists every bad answer)",
    responses=merge(answers(DraftOut), problems(409)),
)
async def save_draft_section(
    request: Request, tenant: str, ref: str, code: DraftCode, section_id: str, body: DraftSectionIn
) -> JSONResponse:
    ctx, uows = _use(request)
    draft = await drafts.save_draft_section(
        uows, tenant, ref, code, section_id, body.answers, partial=body.partial, now=ctx.clock.now()
    )
    return JSONResponse(_draft_view(draft), headers=NO_STORE)


@router.delete("/public/{tenant}/{ref}/drafts/{code}", status_code=204, summary="Delete a draft")
async def delete_draft(request: Request, tenant: str, ref: str, code: DraftCode) -> Response:
    _, uows = _use(request)
    await drafts.delete_draft(uows, tenant, ref, code)
    return Response(status_code=204)


@router.get(
    "/public/{tenant}/{ref}/results",
    summary="Results, after closing, if the survey makes them public",
    responses=merge(answers(ResultsOut), problems(403, 409)),
)
async def public_results(request: Request, tenant: str, ref: str) -> dict[str, Any]:
    _, uows = _use(request)
    return await results.public_results(uows, tenant, ref)


@router.get(
    "/public/{tenant}/{ref}/questions/{question_id}/texts",
    summary="Public free-text answers, a page",
    responses=merge(answers(TextsOut), problems(403, 409)),
)
async def public_texts(
    request: Request, tenant: str, ref: str, question_id: str, after: After = None, limit: Limit = 50
) -> dict[str, Any]:
    _, uows = _use(request)
    return await results.public_texts(uows, tenant, ref, question_id, after, limit)


@router.get(
    "/public/{tenant}/{ref}/qr",
    summary="QR code of the public link (PNG or SVG, poster sizes)",
    response_class=Response,
    responses=QR,
)
async def public_qr(
    request: Request, tenant: str, ref: str, fmt: QrFormat = "png", size: QrSize = 1200, ecc: QrEcc = "M"
) -> Response:
    ctx, uows = _use(request)
    return _qr(_url(ctx)(await surveys.public(uows, tenant, ref)), fmt, size, ecc)


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
