"""The staff console's meeting pages under ``/verwaltung/{tenant}/veranstaltungen`` (role ``staff``): the list,
creating and editing a meeting one section per page, publishing, cancelling, its registrations (table with search,
CSV and XLSX), the entry form for registrations taken by phone, e-mail or in person, the waiting list, staff
cancelling a registration, and the attendance figures.

Everything comes from the registration API's staff routes with the signed-in person's token; the web client keeps
nothing: the name search is the API's (``?q=``), the check-in time comes with each listed registration, a single
registration is read by its id, and staff move a waiting registration up by hand (``…/promote``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from web import i18n
from web.client import ApiProblem
from web.console import meeting_form as mf
from web.console import spreadsheets
from web.console.calls import StaffCalls
from web.console.session import console_session, service_token
from web.i18n import BERLIN
from web.pages import registration_form as rf
from web.pages.common import check_tenant, lang_of, now, see_other, settings_of
from web.problems import FormErrors, form_errors
from web.rendering import render
from web.security import checked_form

router = APIRouter(prefix="/verwaltung/{tenant}/veranstaltungen", include_in_schema=False)

API = "/api/registration/staff"

i18n.english(
    {
        "Veranstaltungen": "Events",
        "Neue Veranstaltung": "New event",
        "Anstehend": "Upcoming",
        "Vergangen": "Past",
        "Keine Veranstaltungen.": "No events.",
        "Entwurf": "Draft",
        "Veröffentlicht": "Published",
        "Abgesagt": "Cancelled",
        "Zustand": "State",
        "Belegt": "Taken",
        "Warteliste": "Waiting list",
        "unbegrenzt": "unlimited",
        "{taken} von {capacity}": "{taken} of {capacity}",
        "Veranstaltung anlegen": "Create event",
        "Speichern": "Save",
        "Abbrechen": "Cancel",
        "Ändern": "Change",
        "Entfernen": "Remove",
        "Hinzufügen": "Add",
        "Zurück zur Veranstaltung": "Back to the event",
        "Zu den Veranstaltungen": "To the events",
        "Die Veranstaltung ist als Entwurf angelegt. Bürgerinnen und Bürger sehen sie erst, wenn Sie sie "
        "veröffentlichen.": "The event has been created as a draft. Citizens see it only once you publish it.",
        "Gespeichert.": "Saved.",
        "Veröffentlichen": "Publish",
        "Die Veranstaltung ist veröffentlicht.": "The event is published.",
        "Veranstaltung absagen": "Cancel event",
        "Möchten Sie „{title}“ wirklich absagen?": "Do you really want to cancel “{title}”?",
        "Alle {n} Anmeldungen werden abgesagt. Wer eine E-Mail-Adresse angegeben hat, erhält eine Nachricht. "
        "Das lässt sich nicht rückgängig machen.": "All {n} registrations are cancelled. Everyone who gave an "
        "e-mail address gets a message. This cannot be undone.",
        "Grund der Absage": "Reason for cancelling",
        "Steht in der Nachricht an die Angemeldeten und auf der Seite der Veranstaltung.": "Appears in the "
        "message to those registered and on the event's page.",
        "Ja, Veranstaltung absagen": "Yes, cancel the event",
        "Nein, zurück": "No, go back",
        "Die Veranstaltung ist abgesagt.": "The event is cancelled.",
        "Anmeldungen": "Registrations",
        "Anmeldung aufnehmen": "Take a registration",
        "Anmeldung per Telefon, E-Mail oder vor Ort": "Registration by phone, e-mail or in person",
        "Teilnahme": "Attendance",
        "Angemeldet": "Registered",
        "Eingecheckt": "Checked in",
        "Nicht erschienen": "No-shows",
        "wird nach Beginn der Veranstaltung gezählt": "counted once the event has started",
        "Personen ({seats} Plätze)": "people ({seats} seats)",
        "Nicht festgelegt": "Not set",
        "keine": "none",
        "ja": "yes",
        "nein": "no",
        "Fragen": "Questions",
        "Bestätigungen": "Confirmations",
        "Zeitfenster": "Time slots",
        "Name": "Name",
        "Kanal": "Channel",
        "Status": "Status",
        "Kontakt": "Contact",
        "Angemeldet am": "Registered on",
        "Aktion": "Action",
        "online": "online",
        "E-Mail": "e-mail",
        "Telefon": "phone",
        "vor Ort": "in person",
        "bestätigt": "confirmed",
        "Warteliste, Platz {position}": "waiting list, number {position}",
        "abgesagt": "cancelled",
        "eingecheckt {time}": "checked in {time}",
        "Suche nach Namen": "Search by name",
        "Suchen": "Search",
        "Alle anzeigen": "Show all",
        "{n} von {total} Anmeldungen": "{n} of {total} registrations",
        "Keine Anmeldung gefunden.": "No registration found.",
        "Noch keine Anmeldungen.": "No registrations yet.",
        "Herunterladen: CSV (Excel)": "Download: CSV (Excel)",
        "Herunterladen: XLSX": "Download: XLSX",
        "Absagen": "Cancel",
        "Anmeldung von {name} absagen": "Cancel the registration of {name}",
        "Möchten Sie die Anmeldung von {name} wirklich absagen?": "Do you really want to cancel the registration "
        "of {name}?",
        "Der Platz geht an die nächste Person auf der Warteliste. Das lässt sich nicht rückgängig machen.": "The "
        "seat goes to the next person on the waiting list. This cannot be undone.",
        "Ja, Anmeldung absagen": "Yes, cancel the registration",
        "Die Anmeldung von {name} ist abgesagt.": "The registration of {name} is cancelled.",
        "Nachgerückt: {names}.": "Moved up from the waiting list: {names}.",
        "Ohne E-Mail-Adresse, bitte anrufen: {names}.": "Without an e-mail address, please call: {names}.",
        "Niemand wartet auf einen Platz.": "Nobody is waiting for a seat.",
        "Nachrücken": "Move up",
        "{name} ist nachgerückt und hat jetzt einen Platz.": "{name} has moved up and now has a seat.",
        "Die Bestätigung geht per E-Mail an die Person.": "The confirmation goes to the person by e-mail.",
        "Ohne E-Mail-Adresse: Die Person steht auf der Rückrufliste; bitte rufen Sie sie an.": "Without an e-mail "
        "address: the person is on the call-back list; please call them.",
        "Zur Rückrufliste": "To the call-back list",
        "Dafür ist kein Platz frei.": "There is no free seat for this.",
        "Diese Anmeldung steht nicht mehr auf der Warteliste.": "This registration is no longer on the waiting list.",
        "Nachrücken war nicht möglich": "Could not move up",
        "Freie Plätze: {n}. Mit „Nachrücken“ geben Sie einer Person einen freien Platz, auch außer der Reihe.": "Free "
        "seats: {n}. “Move up” gives a person a free seat, also out of turn.",
        "Platz": "Number",
        "Wird ein Platz frei, rückt die erste Person der Warteliste automatisch nach; wer eine E-Mail-Adresse "
        "angegeben hat, erhält eine Nachricht. Personen ohne E-Mail-Adresse rufen Sie bitte an.": "When a seat "
        "becomes free, the first person on the waiting list moves up automatically; those with an e-mail address "
        "get a message. Please call those without one.",
        "Wie kam die Anmeldung?": "How did the registration come in?",
        "per Telefon": "by phone",
        "per E-Mail oder Brief": "by e-mail or letter",
        "Name der Person": "Name of the person",
        "Bei Anmeldungen per Telefon freiwillig. Ohne Adresse erhält die Person keine Nachricht.": "Optional for "
        "registrations by phone. Without an address the person gets no message.",
        "Für Rückfragen, und damit Sie die Person erreichen, wenn sie nachrückt.": "For questions, and to reach "
        "the person when they move up.",
        "Die Person ist mit der Verarbeitung ihrer Angaben für diese Anmeldung einverstanden (Datenschutzhinweise "
        "vorgelesen oder zugeschickt).": "The person agrees to their details being processed for this registration "
        "(privacy notice read out or sent).",
        "Auch außerhalb der Anmeldefrist annehmen": "Accept outside the registration period too",
        "Die Anmeldefrist ist nicht offen. Eine Anmeldung per Telefon oder Brief können Sie trotzdem "
        "aufnehmen.": "The registration period is not open. You can still take a registration by phone or letter.",
        "Bitte geben Sie den Namen der Person an.": "Please enter the person's name.",
        "Bitte geben Sie die Telefonnummer an.": "Please enter the phone number.",
        "Bitte geben Sie die E-Mail-Adresse an.": "Please enter the e-mail address.",
        "Bitte geben Sie eine E-Mail-Adresse oder eine Telefonnummer an.": "Please enter an e-mail address or a "
        "phone number.",
        "Bitte bestätigen Sie, dass die Person einverstanden ist.": "Please confirm that the person agrees.",
        "Bitte wählen Sie, wie die Anmeldung kam.": "Please choose how the registration came in.",
        "Anmeldung aufgenommen": "Registration taken",
        "{name} ist angemeldet.": "{name} is registered.",
        "{name} steht auf Platz {position} der Warteliste.": "{name} is number {position} on the waiting list.",
        "{name} war schon angemeldet; das ist die bestehende Anmeldung.": "{name} was registered already; this is "
        "the existing registration.",
        "Ohne E-Mail-Adresse erhält die Person keine Nachricht: Bitte sagen Sie ihr das Ergebnis jetzt am "
        "Telefon.": "Without an e-mail address the person gets no message: please tell them the result on the "
        "phone now.",
        "Die Bestätigung geht per E-Mail an {email}.": "The confirmation goes by e-mail to {email}.",
        "Noch eine Anmeldung aufnehmen": "Take another registration",
        "Zu den Anmeldungen": "To the registrations",
        "Diese Veranstaltung ist abgesagt.": "This event is cancelled.",
        "Sie ist noch ein Entwurf: Anmeldungen sind erst nach dem Veröffentlichen möglich.": "It is still a "
        "draft: registrations are possible once it is published.",
        "Veranstaltung": "Event",
        "Begleitpersonen": "Companions",
        "Plätze": "Seats",
        "Bedarf": "Needs",
        "Bestätigt am": "Confirmed on",
        "Abgesagt am": "Cancelled on",
        "Eingecheckt am": "Checked in on",
        "Platz auf der Warteliste": "Number on the waiting list",
        "Frage hinzufügen": "Add a question",
        "Bestätigung hinzufügen": "Add a confirmation",
        "Zeitfenster hinzufügen": "Add a time slot",
        "Eine Antwortmöglichkeit je Zeile; nur für „Eine Antwort aus mehreren“ und „Mehrere Antworten "
        "möglich“.": "One option per line; only for “One answer of several” and “Several answers possible”.",
        "Noch keine Fragen.": "No questions yet.",
        "Noch keine Bestätigungen.": "No confirmations yet.",
        "Noch keine Zeitfenster.": "No time slots yet.",
        "Leer lassen für unbegrenzt.": "Leave empty for unlimited.",
        "Leer lassen: ab Veröffentlichung.": "Leave empty: from publication.",
        "Leer lassen: bis zum Beginn.": "Leave empty: until the start.",
        "Personen auf die Warteliste setzen, wenn alle Plätze vergeben sind": "Put people on the waiting list when "
        "all seats are taken",
        "Teilnehmende unter 18 Jahren brauchen das Einverständnis einer erziehungsberechtigten Person": "Participants "
        "under 18 need the consent of a parent or guardian",
        "Leer lassen: keine Grenze.": "Leave empty: no limit.",
        "Die Veranstaltung hat Zeitfenster: Die Plätze gelten je Zeitfenster.": "The event has time slots: seats "
        "are per slot.",
        "Zum Beispiel: Stufenloser Zugang, Aufzug, Induktionsschleife, barrierefreies WC.": "For example: step-free "
        "access, lift, induction loop, accessible toilet.",
        "Anmeldungen gesamt": "Registrations in all",
        "Entwurf: Nur Sie sehen die Veranstaltung.": "Draft: only staff see the event.",
        "Seite für Bürgerinnen und Bürger": "Page for citizens",
        "Fehler:": "Error:",
        "ab {when}": "from {when}",
        "bis {when}": "until {when}",
        "{lo} bis {hi} Jahre": "{lo} to {hi} years",
        "ab {lo} Jahren": "{lo} years and over",
        "bis {hi} Jahre": "up to {hi} years",
        "Pflicht": "required",
        "Angaben": "Details",
        "Alter": "Age",
    }
)

CHANNELS = {"online": "online", "phone": "Telefon", "email": "E-Mail", "in_person": "vor Ort"}
STAFF_CHANNELS = (("phone", "per Telefon"), ("email", "per E-Mail oder Brief"), ("in_person", "vor Ort"))
STATE_TEXTS = {"draft": "Entwurf", "published": "Veröffentlicht", "cancelled": "Abgesagt"}


def stamp(value: str | None) -> str:
    """``01.12.2026 18:04``: a time in Berlin, short, for tables and sheets."""
    return datetime.fromisoformat(value).astimezone(BERLIN).strftime("%d.%m.%Y %H:%M") if value else ""


# -- calling the API as the signed-in person -----------------------------------------------------------------------


@dataclass
class Console(StaffCalls):
    """One request of a signed-in staff person: their session and the registration API with their token."""

    api_base = API

    def page(self, template: str, context: dict[str, Any], status: int = 200) -> Response:
        return render(
            self.request,
            f"console/meetings/{template}",
            {"session": self.session, "base": f"/verwaltung/{self.tenant}/veranstaltungen", "stamp": stamp, **context},
            status=status,
            tenant=self.tenant,
        )


async def staff(request: Request, tenant: str) -> Console:
    check_tenant(tenant)
    session = await console_session(request, tenant, "staff")
    return Console(request, tenant, session, service_token(session, settings_of(request)))


async def _meeting(c: Console, meeting_id: UUID) -> dict[str, Any]:
    m: dict[str, Any] = await c.get(f"/meetings/{meeting_id}")
    return m


def _form(form: Any) -> dict[str, list[str]]:
    return {k: [v for v in form.getlist(k) if isinstance(v, str)] for k in form}


def _started(request: Request, m: Mapping[str, Any]) -> bool:
    return now(request) >= datetime.fromisoformat(m["starts_at"])


# -- list, create, overview ------------------------------------------------------------------------------------------


@router.get("")
async def meeting_list(request: Request, tenant: str) -> Response:
    c = await staff(request, tenant)
    found: list[dict[str, Any]] = await c.get("/meetings")
    current = now(request)
    upcoming = sorted(
        (m for m in found if datetime.fromisoformat(m["ends_at"]) >= current), key=lambda m: m["starts_at"]
    )
    past = sorted(
        (m for m in found if datetime.fromisoformat(m["ends_at"]) < current),
        key=lambda m: m["starts_at"],
        reverse=True,
    )
    return c.page("list.html", {"upcoming": upcoming, "past": past, "states": STATE_TEXTS})


@router.get("/neu")
async def new_form(request: Request, tenant: str) -> Response:
    c = await staff(request, tenant)
    return c.page(
        "section.html", {"section": mf.SECTIONS["grunddaten"], "m": None, "values": {}, "errors": FormErrors()}
    )


@router.post("/neu")
async def create(request: Request, tenant: str) -> Response:
    c = await staff(request, tenant)
    form = _form(await checked_form(request))
    lang = lang_of(request)
    section = mf.SECTIONS["grunddaten"]
    read = mf.read_section(section, form, lang)
    context: dict[str, Any] = {"section": section, "m": None, "values": read.values}
    if read.errors:
        return c.page("section.html", {**context, "errors": read.errors}, status=422)
    try:
        m = await c.post("/meetings", {k: v for k, v in read.body.items() if v is not None})
    except ApiProblem as problem:
        errors = mf.api_errors(problem, section.labels, lang, order=section.fields)
        return c.page("section.html", {**context, "errors": errors}, status=problem.status)
    return see_other(f"/verwaltung/{tenant}/veranstaltungen/{m['id']}?angelegt=1")


@router.get("/{meeting_id}")
async def overview(request: Request, tenant: str, meeting_id: UUID) -> Response:
    c = await staff(request, tenant)
    m = await _meeting(c, meeting_id)
    stats = await c.get(f"/meetings/{meeting_id}/stats")
    return c.page(
        "meeting.html",
        {
            "m": m,
            "stats": stats,
            "started": _started(request, m),
            "states": STATE_TEXTS,
            "kinds": mf.QUESTION_KINDS,
            "created": request.query_params.get("angelegt") == "1",
            "notice": request.query_params.get("hinweis", ""),
        },
    )


@router.post("/{meeting_id}/veroeffentlichen")
async def publish(request: Request, tenant: str, meeting_id: UUID) -> Response:
    c = await staff(request, tenant)
    await checked_form(request)
    await c.post(f"/meetings/{meeting_id}/publish")
    return see_other(f"/verwaltung/{tenant}/veranstaltungen/{meeting_id}?hinweis=veroeffentlicht")


@router.get("/{meeting_id}/absagen")
async def cancel_confirm(request: Request, tenant: str, meeting_id: UUID) -> Response:
    c = await staff(request, tenant)
    m = await _meeting(c, meeting_id)
    if m["status"] == "cancelled":
        return see_other(f"/verwaltung/{tenant}/veranstaltungen/{meeting_id}")
    stats = await c.get(f"/meetings/{meeting_id}/stats")
    return c.page("cancel.html", {"m": m, "affected": stats["confirmed"] + stats["waitlisted"], "errors": FormErrors()})


@router.post("/{meeting_id}/absagen")
async def cancel(request: Request, tenant: str, meeting_id: UUID) -> Response:
    c = await staff(request, tenant)
    form = _form(await checked_form(request))
    reason = (form.get("reason") or [""])[0].strip()
    await c.post(f"/meetings/{meeting_id}/cancel", {"reason": reason or None})
    return see_other(f"/verwaltung/{tenant}/veranstaltungen/{meeting_id}?hinweis=abgesagt")


# -- editing, one section per page -------------------------------------------------------------------------------


def _section(slug: str) -> mf.Section:
    section = mf.SECTIONS.get(slug)
    if section is None:
        raise HTTPException(404)
    return section


@router.get("/{meeting_id}/bearbeiten/{slug}")
async def edit_form(request: Request, tenant: str, meeting_id: UUID, slug: str) -> Response:
    c = await staff(request, tenant)
    section = _section(slug)
    m = await _meeting(c, meeting_id)
    return c.page("section.html", {"section": section, "m": m, "values": mf.values_of(m), "errors": FormErrors()})


@router.post("/{meeting_id}/bearbeiten/{slug}")
async def edit(request: Request, tenant: str, meeting_id: UUID, slug: str) -> Response:
    c = await staff(request, tenant)
    section = _section(slug)
    form = _form(await checked_form(request))
    m = await _meeting(c, meeting_id)
    lang = lang_of(request)
    read = mf.read_section(section, form, lang, has_slots=bool(m["slots"]))
    context: dict[str, Any] = {"section": section, "m": m, "values": read.values}
    if read.errors:
        return c.page("section.html", {**context, "errors": read.errors}, status=422)
    try:
        await c.patch(f"/meetings/{meeting_id}", read.body)
    except ApiProblem as problem:
        errors = mf.api_errors(problem, section.labels, lang, order=section.fields)
        return c.page("section.html", {**context, "errors": errors}, status=problem.status)
    return see_other(f"/verwaltung/{tenant}/veranstaltungen/{meeting_id}?hinweis=gespeichert")


# -- registrations -------------------------------------------------------------------------------------------------


async def _registrations(c: Console, meeting_id: UUID, query: str = "") -> list[dict[str, Any]]:
    """The meeting's registrations (each with ``checked_in_at``); ``query``: those whose name contains it, searched
    by the service."""
    regs: list[dict[str, Any]] = await c.get(f"/meetings/{meeting_id}/registrations", {"q": query} if query else None)
    return regs


def status_text(reg: Mapping[str, Any], lang: i18n.Language) -> str:
    _ = i18n.gettext(lang)
    if reg.get("checked_in_at"):
        return _("eingecheckt {time}").format(time=i18n.time_of(reg["checked_in_at"], lang))
    if reg["status"] == "waitlisted":
        return _("Warteliste, Platz {position}").format(position=reg.get("position"))
    return _({"confirmed": "bestätigt", "cancelled": "abgesagt"}.get(reg["status"], reg["status"]))


@router.get("/{meeting_id}/anmeldungen")
async def registrations(request: Request, tenant: str, meeting_id: UUID) -> Response:
    c = await staff(request, tenant)
    m = await _meeting(c, meeting_id)
    query = request.query_params.get("suche", "").strip()[:200]
    shown = await _registrations(c, meeting_id, query)
    stats = await c.get(f"/meetings/{meeting_id}/stats")
    # After a cancellation (redirect-after-POST): whom it concerned and who moved up, each read by its id.
    cancelled = await _listed_one(c, meeting_id, request.query_params.get("abgesagt", ""))
    promoted = [
        r
        for i in request.query_params.get("nachgerueckt", "").split(",")
        if (r := await _listed_one(c, meeting_id, i)) is not None
    ]
    context = {
        "m": m,
        "regs": shown,
        "total": stats["confirmed"] + stats["waitlisted"] + stats["cancelled"],
        "query": query,
        "channels": CHANNELS,
        "status_text": lambda r: status_text(r, lang_of(request)),
        "cancelled": cancelled,
        "promoted": promoted,
        "call_back": [r for r in promoted if not r.get("email")],
    }
    return c.page("registrations.html", context)


def _table(
    m: Mapping[str, Any], regs: Sequence[Mapping[str, Any]], lang: i18n.Language
) -> tuple[list[str], list[list[Any]]]:
    """The registrations as a sheet: German headers, Berlin times, one column per question."""
    _ = i18n.gettext(lang)
    questions = m.get("questions") or []
    slots = {str(s["id"]): s for s in m.get("slots") or []}
    header = [
        _("Name"),
        _("E-Mail"),
        _("Telefon"),
        _("Kanal"),
        _("Status"),
        _("Platz auf der Warteliste"),
        _("Plätze"),
        _("Begleitpersonen"),
    ]
    if slots:
        header.append(_("Zeitfenster"))
    header += [q["label"] for q in questions]
    header += [
        _("Bestätigungen"),
        _("Bedarf"),
        _("Angemeldet am"),
        _("Bestätigt am"),
        _("Abgesagt am"),
        _("Eingecheckt am"),
    ]

    def answer(value: Any) -> str:
        if isinstance(value, bool):
            return _("ja") if value else _("nein")
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return "" if value is None else str(value)

    rows: list[list[Any]] = []
    for r in regs:
        status = (
            "eingecheckt"
            if r.get("checked_in_at")
            else {"confirmed": "bestätigt", "waitlisted": "Warteliste", "cancelled": "abgesagt"}.get(
                r["status"], r["status"]
            )
        )
        row: list[Any] = [
            r.get("name") or "",
            r.get("email") or "",
            r.get("phone") or "",
            _(CHANNELS.get(r["channel"], r["channel"])),
            _(status),
            r.get("position") or "",
            r["seats"],
            r["companions"],
        ]
        if slots:
            slot = slots.get(str(r.get("slot_id")))
            row.append(stamp(slot["starts_at"]) if slot else "")
        answers = r.get("answers") or {}
        row += [answer(answers.get(q["id"])) for q in questions]
        row += [
            ", ".join(r.get("attestations") or []),
            r.get("accessibility_needs") or "",
            stamp(r.get("created_at")),
            stamp(r.get("confirmed_at")),
            stamp(r.get("cancelled_at")),
            stamp(r.get("checked_in_at")),
        ]
        rows.append(row)
    return header, rows


def _download(content: bytes, media_type: str, filename: str) -> Response:
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


@router.get("/{meeting_id}/anmeldungen.csv")
async def registrations_csv(request: Request, tenant: str, meeting_id: UUID) -> Response:
    c = await staff(request, tenant)
    m = await _meeting(c, meeting_id)
    header, rows = _table(m, await _registrations(c, meeting_id), lang_of(request))
    return _download(spreadsheets.excel_csv(header, rows), "text/csv; charset=utf-8", f"anmeldungen-{meeting_id}.csv")


@router.get("/{meeting_id}/anmeldungen.xlsx")
async def registrations_xlsx(request: Request, tenant: str, meeting_id: UUID) -> Response:
    c = await staff(request, tenant)
    m = await _meeting(c, meeting_id)
    header, rows = _table(m, await _registrations(c, meeting_id), lang_of(request))
    return _download(
        spreadsheets.xlsx(i18n.gettext(lang_of(request))("Anmeldungen"), header, rows),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        f"anmeldungen-{meeting_id}.xlsx",
    )


async def _waiting_page(
    c: Console, meeting_id: UUID, *, promoted: dict[str, Any] | None = None, refusal: str = "", status: int = 200
) -> Response:
    m = await _meeting(c, meeting_id)
    regs: list[dict[str, Any]] = await c.get(f"/meetings/{meeting_id}/registrations")
    waiting = sorted((r for r in regs if r["status"] == "waitlisted"), key=lambda r: r.get("position") or 0)
    context = {
        "m": m,
        "waiting": waiting,
        "channels": CHANNELS,
        "seats_left": m.get("seats_left"),
        "promoted": promoted,
        "refusal": refusal,
    }
    return c.page("waiting_list.html", context, status=status)


@router.get("/{meeting_id}/warteliste")
async def waiting_list(request: Request, tenant: str, meeting_id: UUID) -> Response:
    c = await staff(request, tenant)
    promoted = await _listed_one(c, meeting_id, request.query_params.get("nachgerueckt", ""))
    return await _waiting_page(c, meeting_id, promoted=promoted)


@router.post("/{meeting_id}/warteliste/{registration_id}/nachruecken")
async def promote(request: Request, tenant: str, meeting_id: UUID, registration_id: UUID) -> Response:
    """Move one waiting registration up by hand, whatever its place, into free seats (the service refuses
    otherwise: the page then says why)."""
    c = await staff(request, tenant)
    await checked_form(request)
    await _registration(c, meeting_id, registration_id)
    try:
        await c.post(f"/registrations/{registration_id}/promote")
    except ApiProblem as problem:
        if problem.status != 409:
            raise
        kind = str(problem.body.get("type", "")).rsplit("/", 1)[-1]
        return await _waiting_page(c, meeting_id, refusal=kind, status=409)
    return see_other(f"/verwaltung/{tenant}/veranstaltungen/{meeting_id}/warteliste?nachgerueckt={registration_id}")


# -- taking a registration by phone, e-mail or in person ------------------------------------------------------------


def _entry_page(
    c: Console, m: dict[str, Any], values: dict[str, Any], errors: FormErrors, status: int = 200
) -> Response:
    lang = lang_of(c.request)
    state = rf.registration_state(m, now(c.request))
    has_age = m.get("min_age") is not None or m.get("max_age") is not None
    context = {
        "m": m,
        "state": state,
        "values": values,
        "errors": errors,
        "channels": STAFF_CHANNELS,
        "age_hint": rf.age_hint(m, lang) if has_age else "",
    }
    return c.page("entry.html", context, status=status)


def read_entry(form: Mapping[str, Sequence[str]], m: Mapping[str, Any], lang: i18n.Language) -> rf.Submitted:
    """The citizen form's fields, plus the channel; staff wording for the person's own fields."""
    _ = i18n.gettext(lang)
    sub = rf.read(form, m, lang)
    channel = (form.get("channel") or [""])[0]
    sub.values["channel"] = channel
    sub.values["ignore_window"] = (form.get("ignore_window") or [""])[0] == "on"
    either = _("Bitte geben Sie eine E-Mail-Adresse oder eine Telefonnummer an.")
    # The citizen form's own findings, except those that read differently when staff fill the form in.
    kept = [
        f
        for f in sub.errors.fields
        if f.name not in ("name", "privacy_consent") and not (f.name == "email" and f.message == either)
    ]
    email, phone = sub.body.get("email"), sub.body.get("phone")
    errors = FormErrors()
    if channel not in ("phone", "email", "in_person"):
        errors.add("channel", _("Bitte wählen Sie, wie die Anmeldung kam."))
    if not sub.values["name"]:
        errors.add("name", _("Bitte geben Sie den Namen der Person an."))
    for f in kept:
        errors.add(f.name, f.message)
    if channel == "phone" and not phone:
        errors.add("phone", _("Bitte geben Sie die Telefonnummer an."))
    elif channel == "email" and not email:
        errors.add("email", _("Bitte geben Sie die E-Mail-Adresse an."))
    elif not email and not phone:
        errors.add("email", either)
    if not sub.body["privacy_consent"]:
        errors.add("privacy_consent", _("Bitte bestätigen Sie, dass die Person einverstanden ist."))
    order = ["channel", *rf.field_names(m)]
    rank = {n: i for i, n in enumerate(order)}
    errors.fields.sort(key=lambda f: rank.get(f.name, len(rank)))
    sub.errors = errors
    sub.body["channel"] = channel
    sub.body["ignore_window"] = sub.values["ignore_window"]
    return sub


def entry_labels(m: Mapping[str, Any], lang: i18n.Language) -> dict[str, str]:
    _ = i18n.gettext(lang)
    return {**rf.labels(m, lang), "name": _("Name der Person"), "channel": _("Wie kam die Anmeldung?")}


@router.get("/{meeting_id}/anmeldungen/neu")
async def entry_form(request: Request, tenant: str, meeting_id: UUID) -> Response:
    c = await staff(request, tenant)
    m = await _meeting(c, meeting_id)
    return _entry_page(c, m, {"channel": "phone", "companions": "0"}, FormErrors())


@router.post("/{meeting_id}/anmeldungen/neu")
async def entry(request: Request, tenant: str, meeting_id: UUID) -> Response:
    c = await staff(request, tenant)
    form = _form(await checked_form(request))
    m = await _meeting(c, meeting_id)
    lang = lang_of(request)
    sub = read_entry(form, m, lang)
    if sub.errors:
        return _entry_page(c, m, sub.values, sub.errors, status=422)
    try:
        out = await c.post(f"/meetings/{meeting_id}/registrations", sub.body)
    except ApiProblem as problem:
        if problem.status == 404:
            raise
        errors = form_errors(problem, entry_labels(m, lang), lang, ["channel", *rf.field_names(m)])
        if errors.fields:
            errors.summary = ""
        return _entry_page(c, await _meeting(c, meeting_id), sub.values, errors, status=problem.status)
    return see_other(f"/verwaltung/{tenant}/veranstaltungen/{meeting_id}/anmeldungen/{out['id']}/ergebnis")


async def _registration(c: Console, meeting_id: UUID, registration_id: UUID) -> dict[str, Any]:
    """One registration of this meeting, read by its id (another meeting's: 404)."""
    try:
        found: dict[str, Any] = await c.get(f"/registrations/{registration_id}")
    except ApiProblem as problem:
        if problem.status == 404:
            raise HTTPException(404) from None
        raise
    if str(found["meeting_id"]) != str(meeting_id):
        raise HTTPException(404)
    return found


async def _listed_one(c: Console, meeting_id: UUID, registration_id: str) -> dict[str, Any] | None:
    """A registration named in a page's address (after a POST), or None if the address names none of the
    meeting's."""
    try:
        wanted = UUID(registration_id)
    except ValueError:
        return None
    try:
        return await _registration(c, meeting_id, wanted)
    except HTTPException:
        return None


@router.get("/{meeting_id}/anmeldungen/{registration_id}/ergebnis")
async def entry_result(request: Request, tenant: str, meeting_id: UUID, registration_id: UUID) -> Response:
    c = await staff(request, tenant)
    m = await _meeting(c, meeting_id)
    reg = await _registration(c, meeting_id, registration_id)
    return c.page("entry_result.html", {"m": m, "reg": reg})


@router.get("/{meeting_id}/anmeldungen/{registration_id}/absagen")
async def registration_cancel_confirm(
    request: Request, tenant: str, meeting_id: UUID, registration_id: UUID
) -> Response:
    c = await staff(request, tenant)
    m = await _meeting(c, meeting_id)
    reg = await _registration(c, meeting_id, registration_id)
    if reg["status"] == "cancelled":
        return see_other(f"/verwaltung/{tenant}/veranstaltungen/{meeting_id}/anmeldungen")
    return c.page("registration_cancel.html", {"m": m, "reg": reg})


@router.post("/{meeting_id}/anmeldungen/{registration_id}/absagen")
async def registration_cancel(request: Request, tenant: str, meeting_id: UUID, registration_id: UUID) -> Response:
    """Cancel as staff; the page then names who moved up (and whom to call: they have no e-mail address)."""
    c = await staff(request, tenant)
    await checked_form(request)
    await _registration(c, meeting_id, registration_id)
    before = {str(r["id"]): r for r in await c.get(f"/meetings/{meeting_id}/registrations")}
    await c.post(f"/registrations/{registration_id}/cancel")
    after: list[dict[str, Any]] = await c.get(f"/meetings/{meeting_id}/registrations")
    promoted = [
        r for r in after if r["status"] == "confirmed" and before.get(str(r["id"]), {}).get("status") == "waitlisted"
    ]
    ids = ",".join(str(r["id"]) for r in promoted)
    return see_other(
        f"/verwaltung/{tenant}/veranstaltungen/{meeting_id}/anmeldungen?abgesagt={registration_id}&nachgerueckt={ids}"
    )


# Last: ``/{meeting_id}/{slug}`` would match every other path of a meeting.
# -- questions, attestations, time slots: lists edited one item at a time ------------------------------------------


LISTS = {
    "fragen": ("questions", mf.QUESTION_LABELS, "questions.html"),
    "bestaetigungen": ("attestations", mf.ATTESTATION_LABELS, "attestations.html"),
    "zeitfenster": ("slots", mf.SLOT_LABELS, "slots.html"),
}


def _list(slug: str) -> tuple[str, dict[str, str], str]:
    found = LISTS.get(slug)
    if found is None:
        raise HTTPException(404)
    return found


def _as_input(key: str, items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A list from the API in the shape the API takes it back (slots without their counters)."""
    if key == "slots":
        return [
            {"id": s["id"], "starts_at": s["starts_at"], "ends_at": s["ends_at"], "capacity": s["capacity"]}
            for s in items
        ]
    return [dict(i) for i in items]


@router.get("/{meeting_id}/{slug}")
async def list_form(request: Request, tenant: str, meeting_id: UUID, slug: str) -> Response:
    c = await staff(request, tenant)
    _key, _labels, template = _list(slug)
    m = await _meeting(c, meeting_id)
    context = {"m": m, "values": {"kind": "text"}, "errors": FormErrors(), "kinds": mf.QUESTION_KINDS}
    return c.page(template, context)


@router.post("/{meeting_id}/{slug}")
async def list_add(request: Request, tenant: str, meeting_id: UUID, slug: str) -> Response:
    c = await staff(request, tenant)
    key, labels, template = _list(slug)
    form = _form(await checked_form(request))
    m = await _meeting(c, meeting_id)
    lang = lang_of(request)
    items = _as_input(key, m[key])
    if key == "questions":
        read = mf.read_question(form, items, lang)
        new = read.body["question"]
    elif key == "attestations":
        read = mf.read_attestation(form, items, lang)
        new = read.body["attestation"]
    else:
        read = mf.read_slot(form, lang)
        new = read.body["slot"]
    context: dict[str, Any] = {"m": m, "values": read.values, "kinds": mf.QUESTION_KINDS}
    if read.errors:
        return c.page(template, {**context, "errors": read.errors}, status=422)
    try:
        await c.patch(f"/meetings/{meeting_id}", {key: [*items, new]})
    except ApiProblem as problem:
        errors = mf.api_errors(problem, labels, lang, item=f"{key}/{len(items)}", order=list(labels))
        return c.page(template, {**context, "errors": errors}, status=problem.status)
    return see_other(f"/verwaltung/{tenant}/veranstaltungen/{meeting_id}/{slug}")


@router.post("/{meeting_id}/{slug}/{item_id}/entfernen")
async def list_remove(request: Request, tenant: str, meeting_id: UUID, slug: str, item_id: str) -> Response:
    c = await staff(request, tenant)
    key, _labels, template = _list(slug)
    await checked_form(request)
    m = await _meeting(c, meeting_id)
    items = [i for i in _as_input(key, m[key]) if str(i["id"]) != item_id]
    try:
        await c.patch(f"/meetings/{meeting_id}", {key: items})
    except ApiProblem as problem:
        errors = mf.api_errors(problem, {}, lang_of(request))
        context = {"m": m, "values": {"kind": "text"}, "errors": errors, "kinds": mf.QUESTION_KINDS}
        return c.page(template, context, status=problem.status)
    return see_other(f"/verwaltung/{tenant}/veranstaltungen/{meeting_id}/{slug}")
