"""The staff console's content pages under ``/verwaltung/{tenant}/inhalte`` (roles ``staff`` and ``editor``):
participation processes with their phases, steps, funding, contact persons, documents and references; pages and
news in Markdown with a preview rendered by the content service (the same renderer the citizen pages' texts come
from); publishing and withdrawing; QR short links with their target, retargeting, PNG/SVG downloads and the
daily scans as a chart with a table beside it.

Every page calls the content API's staff routes with the signed-in person's token; the web client keeps nothing.
Page logic (forms to API bodies, error messages, the chart) is in ``content_form.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from web import i18n
from web.client import ApiProblem
from web.console import content_form as cf
from web.console.calls import StaffCalls
from web.console.forms import Read, one
from web.console.session import console_session, service_token
from web.i18n import BERLIN
from web.pages.common import api, check_tenant, lang_of, now, see_other, settings_of
from web.problems import FormErrors
from web.rendering import render
from web.security import checked_form

router = APIRouter(prefix="/verwaltung/{tenant}/inhalte", include_in_schema=False)

API = "/api/content/staff"

i18n.english(
    {
        "Inhalte": "Content",
        "Beteiligungsverfahren": "Participation processes",
        "Seiten": "Pages",
        "Neuigkeiten": "News",
        "QR-Codes": "QR codes",
        "Neues Verfahren": "New process",
        "Neue Seite": "New page",
        "Neue Neuigkeit": "New news item",
        "Neuer QR-Code": "New QR code",
        "Noch keine Verfahren.": "No processes yet.",
        "Noch keine Seiten.": "No pages yet.",
        "Noch keine Neuigkeiten.": "No news yet.",
        "Noch keine QR-Codes.": "No QR codes yet.",
        "Entwurf": "Draft",
        "Geplant": "Scheduled",
        "Veröffentlicht": "Published",
        "Zustand": "State",
        "Geändert": "Changed",
        "Verfahren anlegen": "Create process",
        "Speichern": "Save",
        "Abbrechen": "Cancel",
        "Ändern": "Change",
        "Entfernen": "Remove",
        "Veröffentlichen": "Publish",
        "Zurückziehen": "Withdraw",
        "Vorschau": "Preview",
        "Grunddaten ändern": "Change the basics",
        "Phase ändern": "Change the phase",
        "Zur Übersicht der Inhalte": "To the content overview",
        "Zum Verfahren": "To the process",
        "Gespeichert.": "Saved.",
        "Angelegt als Entwurf. Bürgerinnen und Bürger sehen es erst nach dem Veröffentlichen.": "Created as a "
        "draft. Citizens see it only once it is published.",
        "Veröffentlicht: Bürgerinnen und Bürger sehen es jetzt.": "Published: citizens see it now.",
        "Zurückgezogen: wieder ein Entwurf.": "Withdrawn: a draft again.",
        "Entfernt.": "Removed.",
        "Noch keine Einträge.": "No entries yet.",
        "Seite für Bürgerinnen und Bürger": "Page for citizens",
        "Fehler:": "Error:",
        "Vorschau: So sehen Bürgerinnen und Bürger den Text": "Preview: how citizens see the text",
        "Die Vorschau ist noch nicht gespeichert.": "The preview has not been saved yet.",
        "Neuigkeit": "News item",
        "Seite": "Page",
        "Zu welchem Verfahren?": "Which process?",
        "Neuigkeiten eines Verfahrens stehen auch auf dessen Seite.": "News of a process also appear on its page.",
        "Artikel anlegen": "Create",
        "Kurzlink": "Short link",
        "Ziel": "Target",
        "Scans": "Scans",
        "Ziel ändern": "Change target",
        "Das Ziel ist geändert. Der gedruckte Code führt ab jetzt dorthin.": "The target has changed. The printed "
        "code leads there from now on.",
        "Gedruckte Codes behalten ihren Kurzlink; nur das Ziel dahinter ändert sich.": "Printed codes keep their "
        "short link; only the target behind it changes.",
        "Herunterladen": "Download",
        "PNG für den Druck (10 cm)": "PNG for print (10 cm)",
        "SVG (beliebig groß)": "SVG (any size)",
        "Scans je Tag": "Scans per day",
        "Tag": "Day",
        "Gezählt wird nur, wie oft der Kurzlink je Tag aufgerufen wurde; keine Adressen, keine Cookies.": "Only "
        "how often the short link was opened per day is counted; no addresses, no cookies.",
        "QR-Code anlegen": "Create QR code",
        "Der QR-Code ist angelegt.": "The QR code has been created.",
        "Bezeichnung": "Label",
        "ohne Bezeichnung": "no label",
        "Möchten Sie „{title}“ wirklich entfernen?": "Do you really want to remove “{title}”?",
        "Teile des Verfahrens": "Parts of the process",
        "Betrag": "Amount",
        "Inhalt": "Content",
        "Verweise auf Veranstaltungen und Umfragen zeigen deren aktuellen Stand auf der Seite des Verfahrens.": (
            "References to events and surveys show their current state on the process's page."
        ),
    }
)

STATES = {"draft": "Entwurf", "scheduled": "Geplant", "published": "Veröffentlicht"}
KINDS = {"news": "Neuigkeit", "page": "Seite"}
#: What the citizen pages call the article kinds in their addresses.
PUBLIC_PATH = {"news": "neuigkeiten", "page": "seiten"}
NOTICES = {
    "angelegt": "Angelegt als Entwurf. Bürgerinnen und Bürger sehen es erst nach dem Veröffentlichen.",
    "gespeichert": "Gespeichert.",
    "veroeffentlicht": "Veröffentlicht: Bürgerinnen und Bürger sehen es jetzt.",
    "zurueckgezogen": "Zurückgezogen: wieder ein Entwurf.",
    "entfernt": "Entfernt.",
    "qr": "Der QR-Code ist angelegt.",
    "ziel": "Das Ziel ist geändert. Der gedruckte Code führt ab jetzt dorthin.",
}


@dataclass
class Console(StaffCalls):
    """One request of a signed-in staff or editor person: their session and the content API with their token."""

    api_base = API

    @property
    def base(self) -> str:
        return f"/verwaltung/{self.tenant}/inhalte"

    def page(self, template: str, context: dict[str, Any], status: int = 200) -> Response:
        notice = NOTICES.get(self.request.query_params.get("hinweis", ""), "")
        return render(
            self.request,
            f"console/content/{template}",
            {
                "session": self.session,
                "base": self.base,
                "states": STATES,
                "kinds": KINDS,
                "notice": notice,
                "stamp": stamp,
                "parts_table": cf.PARTS,
                **context,
            },
            status=status,
            tenant=self.tenant,
        )


def stamp(value: str | None) -> str:
    """``01.12.2026 18:04``: a time in Berlin, short, for tables."""
    return datetime.fromisoformat(value).astimezone(BERLIN).strftime("%d.%m.%Y %H:%M") if value else ""


async def editor(request: Request, tenant: str) -> Console:
    check_tenant(tenant)
    session = await console_session(request, tenant, "editor")
    return Console(request, tenant, session, service_token(session, settings_of(request)))


def _form(form: Any) -> dict[str, list[str]]:
    return {k: [v for v in form.getlist(k) if isinstance(v, str)] for k in form}


def _de(text: Mapping[str, str] | None) -> str:
    return (text or {}).get("de", "")


# -- overview --------------------------------------------------------------------------------------------------


@router.get("")
async def overview(request: Request, tenant: str) -> Response:
    c = await editor(request, tenant)
    processes = (await c.get("/processes"))["items"]
    articles = (await c.get("/articles"))["items"]
    codes = (await c.get("/qr-codes"))["items"]
    newest = sorted(articles, key=lambda a: a["updated_at"], reverse=True)
    return c.page(
        "overview.html",
        {
            "processes": processes,
            "news": [a for a in newest if a["kind"] == "news"],
            "pages": [a for a in newest if a["kind"] == "page"],
            "codes": codes,
            "de": _de,
        },
    )


# -- processes ---------------------------------------------------------------------------------------------------


@router.get("/verfahren/neu")
async def new_process(request: Request, tenant: str) -> Response:
    c = await editor(request, tenant)
    return c.page("process_form.html", {"p": None, "fields": cf.PROCESS_FIELDS, "values": {}, "errors": FormErrors()})


@router.post("/verfahren/neu")
async def create_process(request: Request, tenant: str) -> Response:
    c = await editor(request, tenant)
    form = _form(await checked_form(request))
    lang = lang_of(request)
    r = cf.read(cf.PROCESS_FIELDS, form, lang)
    context: dict[str, Any] = {"p": None, "fields": cf.PROCESS_FIELDS, "values": r.values}
    if r.errors:
        return c.page("process_form.html", {**context, "errors": r.errors}, status=422)
    try:
        p = await c.post("/processes", cf.present(r.body))
    except ApiProblem as problem:
        errors = cf.api_errors(problem, cf.PROCESS_FIELDS, lang)
        return c.page("process_form.html", {**context, "errors": errors}, status=problem.status)
    return see_other(f"{c.base}/verfahren/{p['id']}?hinweis=angelegt")


@router.get("/verfahren/{process_id}")
async def process(request: Request, tenant: str, process_id: UUID) -> Response:
    c = await editor(request, tenant)
    p = await c.get(f"/processes/{process_id}")
    return c.page("process.html", {"p": p, "parts": cf.PARTS, "de": _de})


@router.get("/verfahren/{process_id}/bearbeiten")
async def edit_process_form(request: Request, tenant: str, process_id: UUID) -> Response:
    c = await editor(request, tenant)
    p = await c.get(f"/processes/{process_id}")
    values = cf.values_of(cf.PROCESS_FIELDS, p)
    return c.page("process_form.html", {"p": p, "fields": cf.PROCESS_FIELDS, "values": values, "errors": FormErrors()})


@router.post("/verfahren/{process_id}/bearbeiten")
async def edit_process(request: Request, tenant: str, process_id: UUID) -> Response:
    c = await editor(request, tenant)
    form = _form(await checked_form(request))
    p = await c.get(f"/processes/{process_id}")
    lang = lang_of(request)
    r = cf.read(cf.PROCESS_FIELDS, form, lang, existing=p)
    context: dict[str, Any] = {"p": p, "fields": cf.PROCESS_FIELDS, "values": r.values}
    if r.errors:
        return c.page("process_form.html", {**context, "errors": r.errors}, status=422)
    try:
        await c.patch(f"/processes/{process_id}", r.body)
    except ApiProblem as problem:
        errors = cf.api_errors(problem, cf.PROCESS_FIELDS, lang)
        return c.page("process_form.html", {**context, "errors": errors}, status=problem.status)
    return see_other(f"{c.base}/verfahren/{process_id}?hinweis=gespeichert")


@router.post("/verfahren/{process_id}/veroeffentlichen")
async def publish_process(request: Request, tenant: str, process_id: UUID) -> Response:
    c = await editor(request, tenant)
    await checked_form(request)
    await _publish(c, f"/processes/{process_id}")
    return see_other(f"{c.base}/verfahren/{process_id}?hinweis=veroeffentlicht")


@router.post("/verfahren/{process_id}/zurueckziehen")
async def unpublish_process(request: Request, tenant: str, process_id: UUID) -> Response:
    c = await editor(request, tenant)
    await checked_form(request)
    await c.post(f"/processes/{process_id}/unpublish")
    return see_other(f"{c.base}/verfahren/{process_id}?hinweis=zurueckgezogen")


async def _publish(c: Console, path: str) -> None:
    try:
        await c.post(f"{path}/publish")
    except ApiProblem as problem:
        # Published already (a second click, another tab): the page shows it published, as asked.
        if problem.status != 409:
            raise


def _part(slug: str) -> cf.Part:
    part = cf.PARTS.get(slug)
    if part is None:
        raise HTTPException(404)
    return part


def _items(p: Mapping[str, Any], part: cf.Part) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = list(p.get(part.key) or [])
    if part.api == "funding":
        # Funding facts are a list inside the process: their position is their id.
        return [{**f, "id": str(i)} for i, f in enumerate(items)]
    return items


@router.get("/verfahren/{process_id}/{slug}")
async def part_page(request: Request, tenant: str, process_id: UUID, slug: str) -> Response:
    c = await editor(request, tenant)
    part = _part(slug)
    p = await c.get(f"/processes/{process_id}")
    return c.page("part.html", _part_context(p, part, {}, FormErrors()))


def _part_context(p: Mapping[str, Any], part: cf.Part, values: Mapping[str, Any], errors: FormErrors) -> dict[str, Any]:
    return {"p": p, "part": part, "items": _items(p, part), "values": values, "errors": errors, "de": _de}


@router.post("/verfahren/{process_id}/{slug}")
async def add_part(request: Request, tenant: str, process_id: UUID, slug: str) -> Response:
    c = await editor(request, tenant)
    part = _part(slug)
    form = _form(await checked_form(request))
    p = await c.get(f"/processes/{process_id}")
    lang = lang_of(request)
    r = cf.read(part.fields, form, lang)
    if r.errors:
        return c.page("part.html", _part_context(p, part, r.values, r.errors), status=422)
    try:
        if part.api == "funding":
            funding = list(p.get("funding") or [])
            await c.patch(f"/processes/{process_id}", {"funding": [*funding, cf.present(r.body)]})
        else:
            await c.post(f"/processes/{process_id}/{part.api}", cf.present(r.body))
    except ApiProblem as problem:
        item = f"funding/{len(p.get('funding') or [])}" if part.api == "funding" else None
        errors = cf.api_errors(problem, part.fields, lang, item=item)
        return c.page("part.html", _part_context(p, part, r.values, errors), status=problem.status)
    return see_other(f"{c.base}/verfahren/{process_id}/{slug}?hinweis=gespeichert")


def _phase(p: Mapping[str, Any], phase_id: UUID) -> dict[str, Any]:
    phase = next((ph for ph in p.get("phases") or [] if str(ph["id"]) == str(phase_id)), None)
    if phase is None:
        raise HTTPException(404)
    return dict(phase)


@router.get("/verfahren/{process_id}/phasen/{phase_id}/bearbeiten")
async def edit_phase_form(request: Request, tenant: str, process_id: UUID, phase_id: UUID) -> Response:
    c = await editor(request, tenant)
    p = await c.get(f"/processes/{process_id}")
    phase = _phase(p, phase_id)
    fields = cf.PARTS["phasen"].fields
    values = cf.values_of(fields, phase)
    return c.page(
        "phase_form.html", {"p": p, "phase": phase, "fields": fields, "values": values, "errors": FormErrors()}
    )


@router.post("/verfahren/{process_id}/phasen/{phase_id}/bearbeiten")
async def edit_phase(request: Request, tenant: str, process_id: UUID, phase_id: UUID) -> Response:
    c = await editor(request, tenant)
    form = _form(await checked_form(request))
    p = await c.get(f"/processes/{process_id}")
    phase = _phase(p, phase_id)
    fields = cf.PARTS["phasen"].fields
    lang = lang_of(request)
    r = cf.read(fields, form, lang, existing=phase)
    context: dict[str, Any] = {"p": p, "phase": phase, "fields": fields, "values": r.values}
    if r.errors:
        return c.page("phase_form.html", {**context, "errors": r.errors}, status=422)
    try:
        # PUT replaces the phase: its position is kept as it was.
        await c.put(f"/phases/{phase_id}", {**cf.present(r.body), "position": phase.get("position")})
    except ApiProblem as problem:
        errors = cf.api_errors(problem, fields, lang)
        return c.page("phase_form.html", {**context, "errors": errors}, status=problem.status)
    return see_other(f"{c.base}/verfahren/{process_id}/phasen?hinweis=gespeichert")


@router.post("/verfahren/{process_id}/{slug}/{item_id}/entfernen")
async def remove_part(request: Request, tenant: str, process_id: UUID, slug: str, item_id: str) -> Response:
    c = await editor(request, tenant)
    part = _part(slug)
    await checked_form(request)
    if part.api == "funding":
        p = await c.get(f"/processes/{process_id}")
        funding = list(p.get("funding") or [])
        if item_id.isdigit() and int(item_id) < len(funding):
            del funding[int(item_id)]
            await c.patch(f"/processes/{process_id}", {"funding": funding})
    else:
        try:
            UUID(item_id)
        except ValueError:
            raise HTTPException(404) from None
        await c.delete(f"/{part.api}/{item_id}")
    return see_other(f"{c.base}/verfahren/{process_id}/{slug}?hinweis=entfernt")


# -- pages and news -------------------------------------------------------------------------------------------


def _kind(value: str | None) -> str:
    return value if value in KINDS else "news"


async def _process_choices(c: Console) -> list[tuple[str, str]]:
    processes = (await c.get("/processes"))["items"]
    _ = i18n.gettext(lang_of(c.request))
    return [("", _("keinem Verfahren zugeordnet")), *((str(p["id"]), _de(p["title"])) for p in processes)]


@router.get("/artikel/neu")
async def new_article(request: Request, tenant: str, art: str = "news") -> Response:
    c = await editor(request, tenant)
    context: dict[str, Any] = {
        "a": None,
        "kind": _kind(art),
        "values": {},
        "errors": FormErrors(),
        "preview": None,
        "processes": await _process_choices(c),
    }
    return c.page("article_form.html", {**context, "fields": cf.ARTICLE_FIELDS})


@router.post("/artikel/neu")
async def create_article(request: Request, tenant: str) -> Response:
    c = await editor(request, tenant)
    form = _form(await checked_form(request))
    kind = _kind(one(form, "kind"))
    process_id = one(form, "process_id")
    lang = lang_of(request)
    r = cf.read(cf.ARTICLE_FIELDS, form, lang)
    r.values["process_id"] = process_id
    context: dict[str, Any] = {
        "a": None,
        "kind": kind,
        "values": r.values,
        "fields": cf.ARTICLE_FIELDS,
        "processes": await _process_choices(c),
        "preview": None,
    }
    if one(form, "aktion") == "vorschau":
        return c.page("article_form.html", {**context, **await _preview(c, r)})
    if r.errors:
        return c.page("article_form.html", {**context, "errors": r.errors}, status=422)
    body = {**cf.present(r.body), "kind": kind}
    if process_id and any(v == process_id for v, _ in context["processes"]):
        body["process_id"] = process_id
    try:
        a = await c.post("/articles", body)
    except ApiProblem as problem:
        errors = cf.api_errors(problem, cf.ARTICLE_FIELDS, lang)
        return c.page("article_form.html", {**context, "errors": errors}, status=problem.status)
    return see_other(f"{c.base}/artikel/{a['id']}?hinweis=angelegt")


async def _preview(c: Console, r: Read) -> dict[str, Any]:
    """The body rendered by the content service, as it will be stored; the form stays as typed, unsaved."""
    rendered = await c.post("/preview", {"body": r.values.get("body", "")})
    return {"preview": rendered["html"], "errors": FormErrors()}


@router.get("/artikel/{article_id}")
async def article(request: Request, tenant: str, article_id: UUID) -> Response:
    c = await editor(request, tenant)
    a = await c.get(f"/articles/{article_id}")
    public = f"/{tenant}/{PUBLIC_PATH[a['kind']]}/{a['slug']}"
    return c.page("article.html", {"a": a, "public": public, "de": _de})


@router.get("/artikel/{article_id}/bearbeiten")
async def edit_article_form(request: Request, tenant: str, article_id: UUID) -> Response:
    c = await editor(request, tenant)
    a = await c.get(f"/articles/{article_id}")
    values = cf.values_of(cf.ARTICLE_FIELDS[:3], a)
    values["body"] = _de(a.get("body_md"))
    context = {"a": a, "kind": a["kind"], "values": values, "errors": FormErrors(), "preview": None}
    return c.page("article_form.html", {**context, "fields": cf.ARTICLE_FIELDS, "processes": []})


@router.post("/artikel/{article_id}/bearbeiten")
async def edit_article(request: Request, tenant: str, article_id: UUID) -> Response:
    c = await editor(request, tenant)
    form = _form(await checked_form(request))
    a = await c.get(f"/articles/{article_id}")
    lang = lang_of(request)
    # The stored Markdown is ``body_md``; the API takes it back as ``body``.
    r = cf.read(cf.ARTICLE_FIELDS, form, lang, existing={**a, "body": a.get("body_md")})
    context: dict[str, Any] = {
        "a": a,
        "kind": a["kind"],
        "values": r.values,
        "fields": cf.ARTICLE_FIELDS,
        "processes": [],
        "preview": None,
    }
    if one(form, "aktion") == "vorschau":
        return c.page("article_form.html", {**context, **await _preview(c, r)})
    if r.errors:
        return c.page("article_form.html", {**context, "errors": r.errors}, status=422)
    try:
        await c.patch(f"/articles/{article_id}", r.body)
    except ApiProblem as problem:
        errors = cf.api_errors(problem, cf.ARTICLE_FIELDS, lang)
        return c.page("article_form.html", {**context, "errors": errors}, status=problem.status)
    return see_other(f"{c.base}/artikel/{article_id}?hinweis=gespeichert")


@router.post("/artikel/{article_id}/veroeffentlichen")
async def publish_article(request: Request, tenant: str, article_id: UUID) -> Response:
    c = await editor(request, tenant)
    await checked_form(request)
    await _publish(c, f"/articles/{article_id}")
    return see_other(f"{c.base}/artikel/{article_id}?hinweis=veroeffentlicht")


@router.post("/artikel/{article_id}/zurueckziehen")
async def unpublish_article(request: Request, tenant: str, article_id: UUID) -> Response:
    c = await editor(request, tenant)
    await checked_form(request)
    await c.post(f"/articles/{article_id}/unpublish")
    return see_other(f"{c.base}/artikel/{article_id}?hinweis=zurueckgezogen")


# -- QR short links ---------------------------------------------------------------------------------------------


_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def _code(code: str) -> str:
    """A short-link code as it may appear in a path (the demo's are words: ``didi-umfrage``)."""
    if not _CODE.match(code):
        raise HTTPException(404)
    return code


@router.get("/qr/neu")
async def new_qr(request: Request, tenant: str) -> Response:
    c = await editor(request, tenant)
    values = {"target_kind": "url", "error_correction": "M"}
    return c.page("qr_form.html", {"q": None, "fields": cf.QR_FIELDS, "values": values, "errors": FormErrors()})


@router.post("/qr/neu")
async def create_qr(request: Request, tenant: str) -> Response:
    c = await editor(request, tenant)
    form = _form(await checked_form(request))
    lang = lang_of(request)
    r = cf.read(cf.QR_FIELDS, form, lang)
    context: dict[str, Any] = {"q": None, "fields": cf.QR_FIELDS, "values": r.values}
    if r.errors:
        return c.page("qr_form.html", {**context, "errors": r.errors}, status=422)
    try:
        q = await c.post("/qr-codes", cf.present(r.body))
    except ApiProblem as problem:
        errors = cf.api_errors(problem, cf.QR_FIELDS, lang)
        return c.page("qr_form.html", {**context, "errors": errors}, status=problem.status)
    return see_other(f"{c.base}/qr/{q['code']}?hinweis=qr")


@router.get("/qr/{code}")
async def qr(request: Request, tenant: str, code: str) -> Response:
    c = await editor(request, tenant)
    q = await c.get(f"/qr-codes/{_code(code)}")
    today = now(request).astimezone(BERLIN).date()
    since = today - timedelta(days=cf.CHART_DAYS - 1)
    scans = await c.get(f"/qr-codes/{code}/scans", {"since": since.isoformat(), "until": today.isoformat()})
    chart = cf.scan_chart(scans["days"], today)
    targets = dict(cf.TARGET_KINDS)
    return c.page("qr.html", {"q": q, "chart": chart, "all_scans": scans["total"], "targets": targets})


@router.get("/qr/{code}/ziel")
async def retarget_form(request: Request, tenant: str, code: str) -> Response:
    c = await editor(request, tenant)
    q = await c.get(f"/qr-codes/{_code(code)}")
    values = cf.values_of(cf.RETARGET_FIELDS, q)
    return c.page("qr_form.html", {"q": q, "fields": cf.RETARGET_FIELDS, "values": values, "errors": FormErrors()})


@router.post("/qr/{code}/ziel")
async def retarget(request: Request, tenant: str, code: str) -> Response:
    c = await editor(request, tenant)
    form = _form(await checked_form(request))
    q = await c.get(f"/qr-codes/{_code(code)}")
    lang = lang_of(request)
    r = cf.read(cf.RETARGET_FIELDS, form, lang)
    context: dict[str, Any] = {"q": q, "fields": cf.RETARGET_FIELDS, "values": r.values}
    if r.errors:
        return c.page("qr_form.html", {**context, "errors": r.errors}, status=422)
    try:
        await c.patch(f"/qr-codes/{code}", r.body)
    except ApiProblem as problem:
        errors = cf.api_errors(problem, cf.RETARGET_FIELDS, lang)
        return c.page("qr_form.html", {**context, "errors": errors}, status=problem.status)
    return see_other(f"{c.base}/qr/{code}?hinweis=ziel")


@router.get("/qr/{code}/qr-code.{fmt}")
async def qr_image(request: Request, tenant: str, code: str, fmt: str) -> Response:
    c = await editor(request, tenant)
    if fmt not in ("png", "svg"):
        raise HTTPException(404)
    answer = await api(request).request(
        "GET", f"{API}/qr-codes/{_code(code)}/image.{fmt}", request=request, params={"size": "l"}, token=c.token
    )
    return Response(
        answer.content,
        media_type=answer.headers.get("content-type", "application/octet-stream"),
        headers={"Content-Disposition": f'attachment; filename="qr-{code}.{fmt}"', "Cache-Control": "no-store"},
    )
