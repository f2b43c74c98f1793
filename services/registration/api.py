"""HTTP API under /api/registration/: public routes for citizens, staff routes under /staff/ (bearer token)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from services.registration import checkin, commands, data_export, domain, exports, meetings, privacy, store
from services.registration.schemas import (
    AttendanceOut,
    CancelIn,
    CheckinIn,
    CheckinOut,
    DataExportOut,
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
from services.registration.views import meeting_view, registration_view
from shared.calendar import meeting_ics, venue_line
from shared.http import ratelimit
from shared.http.auth import Principal, Staff, require
from shared.http.lean import LeanRoute, documented, json_body
from shared.http.openapi import XLSX, answers, media, merge, problems
from shared.http.problems import Problem
from shared.service import ServiceContext, context_of

router = APIRouter(tags=["registration"])

CheckinStaff = Annotated[Principal, Depends(require("checkin", "staff"))]


async def ctx_of(request: Request) -> ServiceContext:
    return context_of(request, "registration")


Ctx = Annotated[ServiceContext, Depends(ctx_of)]


def applicant_of(body: RegistrationIn, channel: commands.Channel = "online") -> commands.Applicant:
    errors: list[domain.FieldError] = []
    phone = None
    if body.phone:
        try:
            phone = domain.normalise_phone(body.phone)
        except domain.InvalidPhone as exc:
            errors.append(domain.FieldError("/phone", f"not a phone number we can call: {exc}", "phone"))
    if not body.privacy_consent:
        errors.append(domain.FieldError("/privacy_consent", "consent to the privacy notice is required", "missing"))
    if errors:
        raise commands.invalid(errors)
    return commands.Applicant(
        name=body.name.strip(),
        email=domain.normalise_email(str(body.email)) if body.email else None,
        phone=phone,
        privacy_consent=body.privacy_consent,
        companions=body.companions,
        answers=body.answers,
        attestations=body.attestations,
        slot_id=body.slot_id,
        age=body.age,
        guardian_consent=body.guardian_consent,
        locale=body.locale,
        channel=channel,
        accessibility_needs=(body.accessibility_needs or "").strip() or None,
    )


def outcome_response(ctx: ServiceContext, out: commands.Outcome) -> Response:
    reg = out.registration
    view = registration_view(reg, position=out.position, manage_url=commands.manage_url(ctx, reg["secret"]))
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
    out = await commands.register(ctx, meeting_id, applicant_of(body))
    return outcome_response(ctx, out)


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
    async with ctx.pool.acquire() as conn:
        found = await store.meetings(conn, tenant, statuses=("published",))
        return [await meeting_view(conn, m) for m in found]


@router.get("/meetings/{meeting_id}", responses=answers(MeetingOut))
async def get_meeting(ctx: Ctx, meeting_id: UUID) -> dict[str, Any]:
    async with ctx.pool.acquire() as conn:
        m = await store.meeting(conn, meeting_id)
        if m is None or m.status == "draft":
            raise Problem(404, "Not found", detail="no such meeting")
        return await meeting_view(conn, m)


@router.get(
    "/meetings/{meeting_id}/calendar.ics",
    response_class=Response,
    responses=media("text/calendar", description="the meeting as an iCalendar file"),
)
async def meeting_calendar(ctx: Ctx, meeting_id: UUID) -> Response:
    """The meeting for a calendar (Europe/Berlin times); cancelled meetings as a cancelled event."""
    async with ctx.pool.acquire() as conn:
        m = await store.meeting(conn, meeting_id)
    if m is None or m.status == "draft":
        raise Problem(404, "Not found", detail="no such meeting")
    body = meeting_ics(
        uid=f"{m.id}@civic",
        title=m.title,
        starts_at=m.starts_at,
        ends_at=m.ends_at,
        location=venue_line(m.venue),
        url=meetings.meeting_url(ctx, m.tenant, m.id),
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
    async with ctx.pool.acquire() as conn:
        reg = await store.registration_by_secret(conn, secret)
        if reg is None:
            raise Problem(404, "Not found", detail="no such registration")
        position = await store.waitlist_position(conn, reg)
        m = await store.meeting(conn, reg["meeting_id"])
        assert m is not None
        view = registration_view(reg, position=position, manage_url=commands.manage_url(ctx, secret))
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
    reg = await commands.cancel(ctx, by="citizen", secret=secret)
    return registration_view(reg, position=None, manage_url=None)


# --- check-in (staff at the door) --------------------------------------------------------------------------------


@router.post("/meetings/{meeting_id}/checkins", responses=merge(answers(CheckinOut), problems(409)))
async def check_in(ctx: Ctx, who: CheckinStaff, meeting_id: UUID, body: CheckinIn) -> dict[str, Any]:
    return await checkin.check_in(ctx, who.tenant, meeting_id, body.ticket, body.nonce)


@router.get("/meetings/{meeting_id}/revoked", responses=answers(RevokedOut))
async def revoked(ctx: Ctx, who: CheckinStaff, meeting_id: UUID) -> dict[str, Any]:
    """The revocation list for scanners that verify tickets offline: cancelled registrations of the meeting."""
    async with ctx.pool.acquire() as conn:
        m = await store.meeting(conn, meeting_id, tenant=who.tenant)
        if m is None:
            raise Problem(404, "Not found", detail="no such meeting")
        rows = await conn.fetch(
            "select id from registrations where meeting_id = $1 and status = 'cancelled' and ticket_code is not null",
            meeting_id,
        )
        return {"meeting_id": meeting_id, "public_key": m.public_key.hex(), "revoked": [r["id"] for r in rows]}


# --- staff -------------------------------------------------------------------------------------------------------


@router.post("/staff/meetings", status_code=201, responses=answers(MeetingOut, 201))
async def create_meeting(ctx: Ctx, who: Staff, body: MeetingIn) -> dict[str, Any]:
    m = await meetings.create(ctx, who.tenant, body)
    async with ctx.pool.acquire() as conn:
        return await meeting_view(conn, m, staff=True)


@router.get("/staff/meetings", responses=answers(list[MeetingOut]))
async def list_meetings(ctx: Ctx, who: Staff) -> list[dict[str, Any]]:
    async with ctx.pool.acquire() as conn:
        found = await store.meetings(conn, who.tenant, statuses=("draft", "published", "cancelled"))
        return [await meeting_view(conn, m, staff=True) for m in found]


async def _staff_meeting(ctx: ServiceContext, who: Principal, meeting_id: UUID) -> store.Meeting:
    async with ctx.pool.acquire() as conn:
        m = await store.meeting(conn, meeting_id, tenant=who.tenant)
    if m is None:
        raise Problem(404, "Not found", detail="no such meeting")
    return m


@router.get("/staff/meetings/{meeting_id}", responses=answers(MeetingOut))
async def staff_meeting(ctx: Ctx, who: Staff, meeting_id: UUID) -> dict[str, Any]:
    m = await _staff_meeting(ctx, who, meeting_id)
    async with ctx.pool.acquire() as conn:
        return await meeting_view(conn, m, staff=True)


@router.patch("/staff/meetings/{meeting_id}", responses=merge(answers(MeetingOut), problems(409)))
async def edit_meeting(ctx: Ctx, who: Staff, meeting_id: UUID, body: MeetingPatch) -> dict[str, Any]:
    """Change any fields; the merged meeting is validated as a whole, bad fields listed."""
    current = await _staff_meeting(ctx, who, meeting_id)
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
    m = await meetings.update(ctx, who.tenant, meeting_id, full)
    async with ctx.pool.acquire() as conn:
        return await meeting_view(conn, m, staff=True)


@router.post("/staff/meetings/{meeting_id}/publish", responses=merge(answers(MeetingOut), problems(409)))
async def publish_meeting(ctx: Ctx, who: Staff, meeting_id: UUID) -> dict[str, Any]:
    m = await meetings.publish(ctx, who.tenant, meeting_id)
    async with ctx.pool.acquire() as conn:
        return await meeting_view(conn, m, staff=True)


@router.post("/staff/meetings/{meeting_id}/cancel", responses=merge(answers(MeetingOut), problems(409)))
async def cancel_meeting(ctx: Ctx, who: Staff, meeting_id: UUID, body: CancelIn) -> dict[str, Any]:
    m = await meetings.cancel(ctx, who.tenant, meeting_id, body.reason)
    async with ctx.pool.acquire() as conn:
        return await meeting_view(conn, m, staff=True)


@router.get("/staff/meetings/{meeting_id}/registrations", responses=answers(list[RegistrationOut]))
async def list_registrations(ctx: Ctx, who: Staff, meeting_id: UUID) -> list[dict[str, Any]]:
    await _staff_meeting(ctx, who, meeting_id)
    async with ctx.pool.acquire() as conn:
        rows = await conn.fetch(
            f"select {store.REGISTRATION_COLUMNS} from registrations where meeting_id = $1 and tenant = $2 "
            "order by seq",
            meeting_id,
            who.tenant,
        )
        out = []
        for r in rows:
            reg = store.registration_dict(r)
            out.append(registration_view(reg, position=await store.waitlist_position(conn, reg), manage_url=None))
        return out


@router.post(
    "/staff/meetings/{meeting_id}/registrations",
    status_code=201,
    responses=REGISTERED,
)
async def staff_register(ctx: Ctx, who: Staff, meeting_id: UUID, body: StaffRegistrationIn) -> Response:
    """Register someone who called, wrote or came by; the channel is recorded."""
    out = await commands.register(
        ctx, meeting_id, applicant_of(body, body.channel), tenant=who.tenant, ignore_window=body.ignore_window
    )
    return outcome_response(ctx, out)


@router.post("/staff/registrations/{registration_id}/cancel", responses=answers(RegistrationOut))
async def staff_cancel(ctx: Ctx, who: Staff, registration_id: UUID) -> dict[str, Any]:
    reg = await commands.cancel(ctx, by="staff", registration_id=registration_id, tenant=who.tenant)
    return registration_view(reg, position=None, manage_url=None)


@router.get("/staff/meetings/{meeting_id}/stats", responses=answers(AttendanceOut))
async def stats(ctx: Ctx, who: CheckinStaff, meeting_id: UUID) -> dict[str, Any]:
    return await checkin.attendance(ctx, who.tenant, meeting_id)


@router.get("/staff/meetings/{meeting_id}/registrations.csv", response_class=Response, responses=CSV)
async def export_csv(ctx: Ctx, who: Staff, meeting_id: UUID) -> Response:
    m = await _staff_meeting(ctx, who, meeting_id)
    return exports.csv_response(ctx, m, attendance=False)


@router.get("/staff/meetings/{meeting_id}/attendance.csv", response_class=Response, responses=CSV)
async def export_attendance_csv(ctx: Ctx, who: Staff, meeting_id: UUID) -> Response:
    m = await _staff_meeting(ctx, who, meeting_id)
    return exports.csv_response(ctx, m, attendance=True)


@router.get(
    "/staff/meetings/{meeting_id}/registrations.xlsx",
    response_class=Response,
    responses=media(XLSX),
)
async def export_xlsx(ctx: Ctx, who: Staff, meeting_id: UUID) -> Response:
    m = await _staff_meeting(ctx, who, meeting_id)
    return await exports.xlsx_response(ctx, m)


@router.post("/staff/erasures", responses=answers(ErasureOut))
async def erase(ctx: Ctx, who: Staff, body: ErasureIn) -> dict[str, Any]:
    """Erase a person's data across all registrations of the tenant, found by e-mail and/or phone."""
    email, phone = _person(body)
    return await privacy.erase_person(ctx, who.tenant, email=email, phone=phone)


@router.post("/staff/data-exports", status_code=202, responses=answers(DataExportOut, 202))
async def request_data_export(ctx: Ctx, who: Staff, body: ErasureIn) -> dict[str, Any]:
    """Ask every service for what it holds about a person (GDPR Art. 15); poll the export until complete."""
    email, phone = _person(body)
    retention = timedelta(hours=privacy.RetentionSettings().export_retention_hours)
    return await data_export.request_export(ctx, who.tenant, email=email, phone=phone, retention=retention)


@router.get("/staff/data-exports/{export_id}", responses=answers(DataExportOut))
async def data_export_status(ctx: Ctx, who: Staff, export_id: UUID) -> dict[str, Any]:
    found = await data_export.status(ctx, who.tenant, export_id)
    if found is None:
        raise Problem(404, "Not found", detail="no such data export (or it expired)")
    return found


@router.get(
    "/staff/data-exports/{export_id}/export.zip",
    response_class=Response,
    responses=merge(media("application/zip"), problems(409)),
)
async def data_export_zip(ctx: Ctx, who: Staff, export_id: UUID) -> Response:
    doc = await data_export.document(ctx, who.tenant, export_id)
    if doc is None:
        found = await data_export.status(ctx, who.tenant, export_id)
        if found is None:
            raise Problem(404, "Not found", detail="no such data export (or it expired)")
        raise Problem(
            409, "Not complete", type_="export-pending", detail="waiting for: " + ", ".join(found["waiting_for"])
        )
    return Response(
        data_export.zip_bytes(doc),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="auskunft-{export_id}.zip"'},
    )


def _person(body: ErasureIn) -> tuple[str | None, str | None]:
    """The normalised e-mail address and phone number a staff request names (at least one)."""
    errors: list[domain.FieldError] = []
    phone = None
    if not body.email and not body.phone:
        errors.append(domain.FieldError("/email", "give an e-mail address or a phone number", "missing"))
    if body.phone:
        try:
            phone = domain.normalise_phone(body.phone)
        except domain.InvalidPhone as exc:
            errors.append(domain.FieldError("/phone", str(exc), "phone"))
    if errors:
        raise commands.invalid(errors)
    email = domain.normalise_email(str(body.email)) if body.email else None
    return email, phone


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
    },
    "registration.staff_register": {
        "registration.own_registration": _OWN,
        "registration.cancel_own": _OWN,
        "registration.staff_cancel": _REGISTRATION,
    },
}
