"""HTTP API under /api/registration/: public routes for citizens, staff routes under /staff/ (bearer token)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import ValidationError

from services.registration import domain, exports
from services.registration.domain import Applicant, Channel
from services.registration.schemas import (
    AttendanceOut,
    CallbackOut,
    CancelIn,
    CheckinIn,
    CheckinOut,
    DataExportOut,
    DoorHitOut,
    ErasureIn,
    ErasureOut,
    MeetingIn,
    MeetingOut,
    MeetingPatch,
    RegistrationIn,
    RegistrationOut,
    RevokedOut,
    StaffRegistrationIn,
)
from services.registration.settings import settings_of
from services.registration.store import Store
from services.registration.use_cases import callbacks, checkin, meetings, privacy, registrations
from services.registration.use_cases.common import Urls
from services.registration.views import registration_view
from shared.calendar import meeting_ics, venue_line
from shared.http import ratelimit
from shared.http.auth import Principal, Staff, require
from shared.http.lean import LeanRoute, documented, json_body
from shared.http.openapi import XLSX, answers, media, merge, problems
from shared.http.problems import Problem, problem_of
from shared.service import ServiceContext, context_of
from shared.unit_of_work import UnitsOfWork

router = APIRouter(tags=["registration"])

CheckinStaff = Annotated[Principal, Depends(require("checkin", "staff"))]


async def ctx_of(request: Request) -> ServiceContext:
    return context_of(request, "registration")


Ctx = Annotated[ServiceContext, Depends(ctx_of)]


def units(ctx: ServiceContext) -> UnitsOfWork[Store]:
    return ctx.uows(Store)


@contextmanager
def retry_when_busy() -> Iterator[None]:
    """The meeting's lock not had in time: 503 with ``Retry-After`` (a header, so here and not in the use case)."""
    try:
        yield
    except domain.Busy as exc:
        problem = problem_of(exc)
        problem.headers = {"Retry-After": "1"}
        raise problem from None


def applicant_of(body: RegistrationIn, channel: Channel = "online") -> Applicant:
    """The form as submitted; the use case checks and normalises the contact."""
    return Applicant(
        name=body.name,
        email=str(body.email) if body.email else None,
        phone=body.phone or None,
        privacy_consent=body.privacy_consent,
        companions=body.companions,
        answers=body.answers,
        attestations=body.attestations,
        slot_id=body.slot_id,
        age=body.age,
        guardian_consent=body.guardian_consent,
        locale=body.locale,
        channel=channel,
        accessibility_needs=body.accessibility_needs,
    )


def outcome_response(urls: Urls, out: registrations.Outcome) -> Response:
    reg = out.registration
    view = registration_view(reg, position=out.position, manage_url=urls.manage(reg["secret"]))
    view["secret"] = reg["secret"]
    # orjson writes UUIDs and datetimes as jsonable_encoder would (asyncpg's own UUIDs through ``str``), at a
    # fraction of its cost: this answers every registration of a rush.
    return Response(
        orjson.dumps(view, default=str), status_code=201 if out.created else 200, media_type="application/json"
    )


REGISTERED = merge(
    answers(RegistrationOut, 201, "Registered: confirmed or on the waiting list"),
    answers(RegistrationOut, 200, "This person was registered already: that registration"),
    problems(409, 503),
)
CSV = media("text/csv")

# --- public ------------------------------------------------------------------------------------------------------


# Public writes, per client address and per target mailbox (shared/http/ratelimit.py). A class registering
# one by one from a school's address fits in the burst; 5,000 registrations from one client or to one inbox
# (``+tag`` addresses are one inbox) do not.
REGISTER_PER_CLIENT = ratelimit.Rule("registration-client", burst=100, per_hour=600)
REGISTER_PER_MAILBOX = ratelimit.Rule("registration-mailbox", burst=10, per_hour=10)
MANAGE_PER_CLIENT = ratelimit.Rule("registration-manage-client", burst=60, per_hour=300)


async def register(request: Request, meeting_id: UUID) -> Response:
    """Register without an account. 201 for a new registration, 200 when this person was already registered."""
    ctx = context_of(request, "registration")
    body = await json_body(request, RegistrationIn)
    checks = [(REGISTER_PER_CLIENT, ratelimit.CLIENT)]
    if body.email:
        checks.append((REGISTER_PER_MAILBOX, ratelimit.mailbox(str(body.email))))
    await ratelimit.enforce(request, ctx, *checks)
    urls = Urls.of(ctx.settings)
    with retry_when_busy():
        out = await registrations.register(units(ctx), meeting_id, applicant_of(body), now=ctx.clock.now(), urls=urls)
    return outcome_response(urls, out)


# The route a rush hits, lean (shared/http/lean.py): no dependencies resolved, the body validated from its bytes;
# first in the router, since a request is matched against the routes in order.
router.add_api_route(
    "/meetings/{meeting_id:uuid}/registrations",
    register,
    methods=["POST"],
    status_code=201,
    openapi_extra=documented(RegistrationIn),
    responses=REGISTERED,
    route_class_override=LeanRoute,
)


@router.get("/meetings", responses=answers(list[MeetingOut]))
async def list_published(ctx: Ctx, tenant: Annotated[str, Query(min_length=1, max_length=63)]) -> list[dict[str, Any]]:
    return await meetings.published(units(ctx), tenant)


@router.get("/meetings/{meeting_id}", responses=answers(MeetingOut))
async def get_meeting(ctx: Ctx, meeting_id: UUID) -> dict[str, Any]:
    return await meetings.public_view(units(ctx), meeting_id)


@router.get(
    "/meetings/{meeting_id}/calendar.ics",
    response_class=Response,
    responses=media("text/calendar", description="the meeting as an iCalendar file"),
)
async def meeting_calendar(ctx: Ctx, meeting_id: UUID) -> Response:
    """The meeting for a calendar (Europe/Berlin times); cancelled meetings as a cancelled event."""
    m = await meetings.public_meeting(units(ctx), meeting_id)
    body = meeting_ics(
        uid=f"{m.id}@civic",
        title=m.title,
        starts_at=m.starts_at,
        ends_at=m.ends_at,
        location=venue_line(m.venue),
        url=Urls.of(ctx.settings).meeting(m.tenant, m.id),
        stamp=ctx.clock.now(),
        cancelled=m.status == "cancelled",
    )
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="termin.ics"'},
    )


@router.get("/registrations/{secret}", responses=answers(RegistrationOut))
async def own_registration(ctx: Ctx, secret: str) -> dict[str, Any]:
    reg, position, m = await registrations.own_registration(units(ctx), secret)
    view = registration_view(reg, position=position, manage_url=Urls.of(ctx.settings).manage(secret))
    view["meeting"] = {
        "id": m.id,
        "title": m.title,
        "starts_at": m.starts_at,
        "ends_at": m.ends_at,
        "venue": m.venue,
        "status": m.status,
    }
    return view


@router.delete("/registrations/{secret}", responses=answers(RegistrationOut))
async def cancel_own(ctx: Ctx, request: Request, secret: str) -> dict[str, Any]:
    await ratelimit.enforce(request, ctx, (MANAGE_PER_CLIENT, ratelimit.CLIENT))
    with retry_when_busy():
        reg = await registrations.cancel(
            units(ctx)(), by="citizen", secret=secret, now=ctx.clock.now(), urls=Urls.of(ctx.settings)
        )
    return registration_view(reg, position=None, manage_url=None)


# --- check-in (staff at the door) --------------------------------------------------------------------------------


@router.post("/meetings/{meeting_id}/checkins", responses=merge(answers(CheckinOut), problems(409)))
async def check_in(ctx: Ctx, who: CheckinStaff, meeting_id: UUID, body: CheckinIn) -> dict[str, Any]:
    """A ticket (scanned or typed), or a registration found by name; the same nonce again is the same check-in.
    Refusals ``already_checked_in`` and ``revoked`` name the registration (``registration_id``, ``name``,
    ``companions``)."""
    if body.registration_id is not None:
        return await checkin.check_in_registration(
            units(ctx)(), who.tenant, meeting_id, body.registration_id, body.nonce, now=ctx.clock.now()
        )
    assert body.ticket is not None
    return await checkin.check_in(units(ctx)(), who.tenant, meeting_id, body.ticket, body.nonce, now=ctx.clock.now())


@router.get("/meetings/{meeting_id}/checkins/search", responses=answers(list[DoorHitOut]))
async def door_search(
    ctx: Ctx, who: CheckinStaff, meeting_id: UUID, q: Annotated[str, Query(min_length=1, max_length=100)]
) -> list[dict[str, Any]]:
    """Registrations by name for the door (every word in the name, case ignored; at most 50): no contact, no
    ticket, so the ``checkin`` role may read it."""
    return await checkin.search(units(ctx), who.tenant, meeting_id, q)


@router.get("/meetings/{meeting_id}/revoked", responses=answers(RevokedOut))
async def revoked(ctx: Ctx, who: CheckinStaff, meeting_id: UUID) -> dict[str, Any]:
    """The revocation list for scanners that verify tickets offline: cancelled registrations of the meeting."""
    return await meetings.revoked(units(ctx), who.tenant, meeting_id)


# --- staff -------------------------------------------------------------------------------------------------------


@router.post("/staff/meetings", status_code=201, responses=answers(MeetingOut, 201))
async def create_meeting(ctx: Ctx, who: Staff, body: MeetingIn) -> dict[str, Any]:
    return await meetings.create(units(ctx)(), who.tenant, body, now=ctx.clock.now())


@router.get("/staff/meetings", responses=answers(list[MeetingOut]))
async def list_meetings(ctx: Ctx, who: Staff) -> list[dict[str, Any]]:
    return await meetings.staff_meetings(units(ctx), who.tenant)


@router.get("/staff/meetings/{meeting_id}", responses=answers(MeetingOut))
async def staff_meeting(ctx: Ctx, who: Staff, meeting_id: UUID) -> dict[str, Any]:
    return await meetings.staff_view(units(ctx), who.tenant, meeting_id)


@router.patch("/staff/meetings/{meeting_id}", responses=merge(answers(MeetingOut), problems(409)))
async def edit_meeting(ctx: Ctx, who: Staff, meeting_id: UUID, body: MeetingPatch) -> dict[str, Any]:
    """Change any fields; the merged meeting is validated as a whole, bad fields listed."""
    current = await meetings.staff_meeting(units(ctx), who.tenant, meeting_id)
    merged = meetings.as_input(current)
    merged.update({k: getattr(body, k) for k in body.model_fields_set})
    try:
        full = MeetingIn.model_validate(merged)
    except ValidationError as exc:
        raise Problem(
            422,
            "Invalid request",
            type_="validation",
            detail="Some fields are missing or invalid.",
            errors=[
                {
                    "in": "body",
                    "pointer": "/" + "/".join(str(p) for p in e["loc"]),
                    "detail": e["msg"],
                    "code": e["type"],
                }
                for e in exc.errors()
            ],
        ) from None
    with retry_when_busy():
        return await meetings.update(
            units(ctx)(), who.tenant, meeting_id, full, now=ctx.clock.now(), urls=Urls.of(ctx.settings)
        )


@router.post("/staff/meetings/{meeting_id}/publish", responses=merge(answers(MeetingOut), problems(409)))
async def publish_meeting(ctx: Ctx, who: Staff, meeting_id: UUID) -> dict[str, Any]:
    with retry_when_busy():
        return await meetings.publish(
            units(ctx)(), who.tenant, meeting_id, now=ctx.clock.now(), urls=Urls.of(ctx.settings)
        )


@router.post("/staff/meetings/{meeting_id}/cancel", responses=merge(answers(MeetingOut), problems(409)))
async def cancel_meeting(ctx: Ctx, who: Staff, meeting_id: UUID, body: CancelIn) -> dict[str, Any]:
    with retry_when_busy():
        return await meetings.cancel(units(ctx)(), who.tenant, meeting_id, body.reason, now=ctx.clock.now())


def staff_view(reg: dict[str, Any], position: int | None) -> dict[str, Any]:
    return {**registration_view(reg, position=position, manage_url=None), "checked_in_at": reg.get("checked_in_at")}


@router.get("/staff/meetings/{meeting_id}/registrations", responses=answers(list[RegistrationOut]))
async def list_registrations(
    ctx: Ctx, who: Staff, meeting_id: UUID, q: Annotated[str | None, Query(max_length=200)] = None
) -> list[dict[str, Any]]:
    """The meeting's registrations in order, each with ``checked_in_at``; ``q``: those whose name contains it
    (case ignored)."""
    name = q.strip() if q else None
    found = await registrations.registrations_of(units(ctx), who.tenant, meeting_id, name=name or None)
    return [staff_view(reg, position) for reg, position in found]


@router.get("/staff/registrations/{registration_id}", responses=answers(RegistrationOut))
async def staff_registration(ctx: Ctx, who: Staff, registration_id: UUID) -> dict[str, Any]:
    reg, position = await registrations.staff_registration(units(ctx), who.tenant, registration_id)
    return staff_view(reg, position)


@router.post(
    "/staff/registrations/{registration_id}/promote", responses=merge(answers(RegistrationOut), problems(409, 503))
)
async def staff_promote(ctx: Ctx, who: Staff, registration_id: UUID) -> dict[str, Any]:
    """Move a waiting registration up by hand, whatever its place (409 when it is not waiting or its seats are
    not free); the same events as an automatic promotion, and a call to make when it has no e-mail address."""
    with retry_when_busy():
        reg = await registrations.promote_by_hand(
            units(ctx)(), who.tenant, registration_id, now=ctx.clock.now(), urls=Urls.of(ctx.settings)
        )
    return registration_view(reg, position=None, manage_url=None)


@router.get("/staff/callbacks", responses=answers(list[CallbackOut]))
async def list_callbacks(
    ctx: Ctx,
    who: Staff,
    state: Annotated[Literal["open", "done"], Query()] = "open",
    meeting_id: Annotated[UUID | None, Query()] = None,
) -> list[dict[str, Any]]:
    """The call-back list: people without an e-mail address whose registration changed by itself (promoted,
    the meeting moved or cancelled). Open calls oldest first; done calls latest first."""
    return await callbacks.listed(units(ctx), who.tenant, done=state == "done", meeting_id=meeting_id)


@router.post("/staff/callbacks/{callback_id}/done", responses=answers(CallbackOut))
async def callback_done(ctx: Ctx, who: Staff, callback_id: UUID) -> dict[str, Any]:
    """Mark the call made; again, it keeps when and by whom it was first marked."""
    return await callbacks.mark_done(units(ctx)(), who.tenant, callback_id, by=who.subject, now=ctx.clock.now())


@router.post(
    "/staff/meetings/{meeting_id}/registrations",
    status_code=201,
    responses=REGISTERED,
)
async def staff_register(ctx: Ctx, who: Staff, meeting_id: UUID, body: StaffRegistrationIn) -> Response:
    """Register someone who called, wrote or came by; the channel is recorded."""
    urls = Urls.of(ctx.settings)
    with retry_when_busy():
        out = await registrations.register(
            units(ctx),
            meeting_id,
            applicant_of(body, body.channel),
            now=ctx.clock.now(),
            urls=urls,
            tenant=who.tenant,
            ignore_window=body.ignore_window,
        )
    return outcome_response(urls, out)


@router.post("/staff/registrations/{registration_id}/cancel", responses=answers(RegistrationOut))
async def staff_cancel(ctx: Ctx, who: Staff, registration_id: UUID) -> dict[str, Any]:
    with retry_when_busy():
        reg = await registrations.cancel(
            units(ctx)(),
            by="staff",
            registration_id=registration_id,
            tenant=who.tenant,
            now=ctx.clock.now(),
            urls=Urls.of(ctx.settings),
        )
    return registration_view(reg, position=None, manage_url=None)


@router.get("/staff/meetings/{meeting_id}/stats", responses=answers(AttendanceOut))
async def stats(ctx: Ctx, who: CheckinStaff, meeting_id: UUID) -> dict[str, Any]:
    """Seats and door figures; ``no_shows`` and ``attendance_rate`` are null until the meeting starts."""
    return await checkin.attendance(units(ctx), who.tenant, meeting_id, now=ctx.clock.now())


def _csv(ctx: ServiceContext, m: domain.Meeting, *, attendance: bool) -> StreamingResponse:
    name = "attendance" if attendance else "registrations"
    return StreamingResponse(
        exports.csv_chunks(meetings.export_rows(units(ctx), m, attendance=attendance)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}-{m.id}.csv"'},
    )


@router.get("/staff/meetings/{meeting_id}/registrations.csv", response_class=Response, responses=CSV)
async def export_csv(ctx: Ctx, who: Staff, meeting_id: UUID) -> Response:
    return _csv(ctx, await meetings.staff_meeting(units(ctx), who.tenant, meeting_id), attendance=False)


@router.get("/staff/meetings/{meeting_id}/attendance.csv", response_class=Response, responses=CSV)
async def export_attendance_csv(ctx: Ctx, who: Staff, meeting_id: UUID) -> Response:
    return _csv(ctx, await meetings.staff_meeting(units(ctx), who.tenant, meeting_id), attendance=True)


@router.get(
    "/staff/meetings/{meeting_id}/registrations.xlsx",
    response_class=Response,
    responses=media(XLSX),
)
async def export_xlsx(ctx: Ctx, who: Staff, meeting_id: UUID) -> Response:
    m = await meetings.staff_meeting(units(ctx), who.tenant, meeting_id)
    return Response(
        await exports.xlsx_bytes(meetings.export_rows(units(ctx), m, attendance=False)),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="registrations-{m.id}.xlsx"'},
    )


@router.post("/staff/erasures", responses=answers(ErasureOut))
async def erase(ctx: Ctx, who: Staff, body: ErasureIn) -> dict[str, Any]:
    """Erase a person's data across all registrations of the tenant, found by e-mail and/or phone."""
    email, phone = domain.person(str(body.email) if body.email else None, body.phone)
    return await privacy.erase_person(
        units(ctx)(), who.tenant, email=email, phone=phone, now=ctx.clock.now(), secret=ctx.settings.privacy_secret
    )


@router.post("/staff/data-exports", status_code=202, responses=answers(DataExportOut, 202))
async def request_data_export(ctx: Ctx, who: Staff, body: ErasureIn) -> dict[str, Any]:
    """Ask every service for what it holds about a person (GDPR Art. 15); poll the export until complete."""
    email, phone = domain.person(str(body.email) if body.email else None, body.phone)
    return await privacy.request_export(
        units(ctx)(),
        who.tenant,
        email=email,
        phone=phone,
        retention=timedelta(hours=settings_of(ctx).export_retention_hours),
        now=ctx.clock.now(),
        secret=ctx.settings.privacy_secret,
    )


@router.get("/staff/data-exports/{export_id}", responses=answers(DataExportOut))
async def data_export_status(ctx: Ctx, who: Staff, export_id: UUID) -> dict[str, Any]:
    return await privacy.export_status(units(ctx), who.tenant, export_id)


@router.get(
    "/staff/data-exports/{export_id}/export.zip",
    response_class=Response,
    responses=merge(media("application/zip"), problems(409)),
)
async def data_export_zip(ctx: Ctx, who: Staff, export_id: UUID) -> Response:
    doc = await privacy.export_document(units(ctx), who.tenant, export_id)
    return Response(
        exports.zip_bytes(doc),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="auskunft-{export_id}.zip"'},
    )


# --- links between operations (OpenAPI; shared/http/openapi.py) ---------------------------------------------------

_MEETING = {"meeting_id": "$response.body#/id"}
_REGISTRATION = {"registration_id": "$response.body#/id"}
_OWN = {"secret": "$response.body#/secret"}

LINKS = {
    "registration.create_meeting": {
        f"registration.{op}": _MEETING
        for op in (
            "staff_meeting",
            "edit_meeting",
            "publish_meeting",
            "cancel_meeting",
            "list_registrations",
            "staff_register",
            "stats",
            "export_csv",
            "export_attendance_csv",
            "export_xlsx",
            "revoked",
            "get_meeting",
            "door_search",
        )
    },
    "registration.publish_meeting": {
        f"registration.{op}": _MEETING
        for op in ("register", "get_meeting", "staff_register", "edit_meeting", "cancel_meeting", "check_in")
    },
    "registration.register": {
        "registration.own_registration": _OWN,
        "registration.cancel_own": _OWN,
        "registration.staff_cancel": _REGISTRATION,
        "registration.staff_registration": _REGISTRATION,
        "registration.staff_promote": _REGISTRATION,
    },
    "registration.staff_register": {
        "registration.own_registration": _OWN,
        "registration.cancel_own": _OWN,
        "registration.staff_cancel": _REGISTRATION,
        "registration.staff_registration": _REGISTRATION,
        "registration.staff_promote": _REGISTRATION,
    },
}
