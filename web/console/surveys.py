"""The staff console's survey pages under ``/verwaltung/{tenant}/umfragen`` (role ``staff``): the list, a survey's
page, creating it (basic data and its first question on one page), changing its basic data, adding, changing and
removing questions one per page (every kind, with a display condition and sections), publishing after a
confirmation, the QR poster (PDF and SVG, A4 and A3), letter codes as a CSV for a mail merge, live results with
server-drawn charts, free texts a page at a time, and the raw responses as CSV (for German Excel) and XLSX.

Everything comes from the surveys API's staff routes with the signed-in person's token; the web client keeps
nothing. A change is a ``PUT`` of the whole survey (the API's one way to change a draft): read, change one thing,
send it back.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from web import i18n
from web.client import ApiProblem
from web.console import posters, spreadsheets
from web.console import survey_form as sf
from web.console.calls import StaffCalls
from web.console.meeting_form import api_errors, slug_of
from web.console.session import console_session, service_token
from web.pages.common import check_tenant, lang_of, see_other, settings_of
from web.problems import FormErrors
from web.rendering import render
from web.security import checked_form
from web.surveys.pages import result_blocks

router = APIRouter(prefix="/verwaltung/{tenant}/umfragen", include_in_schema=False)

API = "/api/surveys/surveys"
TEXTS_PER_PAGE = 20
MOST_CODES = 5000

i18n.english(
    {
        "Umfragen": "Surveys",
        "Neue Umfrage": "New survey",
        "Noch keine Umfragen.": "No surveys yet.",
        "Umfrage": "Survey",
        "Zeitraum": "Period",
        "Zustand": "State",
        "Antworten": "Responses",
        "Entwurf": "Draft",
        "Veröffentlicht": "Published",
        "Läuft": "Open",
        "Beendet": "Closed",
        "Noch nicht begonnen": "Not yet open",
        "{start} bis {end}": "{start} to {end}",
        "Umfrage anlegen": "Create survey",
        "Erste Frage": "First question",
        "Die Umfrage ist als Entwurf angelegt. Bürgerinnen und Bürger sehen sie erst, wenn Sie sie "
        "veröffentlichen.": "The survey has been created as a draft. Citizens see it only once you publish it.",
        "Gespeichert.": "Saved.",
        "Die Umfrage ist veröffentlicht.": "The survey is published.",
        "Grunddaten ändern": "Change basic data",
        "Grunddaten": "Basic data",
        "Fragen": "Questions",
        "Frage hinzufügen": "Add a question",
        "Frage ändern": "Change question",
        "Abschnitt ändern": "Change section",
        "Ändern": "Change",
        "Entfernen": "Remove",
        "Speichern": "Save",
        "Abbrechen": "Cancel",
        "Pflicht": "required",
        "Veröffentlichen": "Publish",
        "Umfrage veröffentlichen": "Publish survey",
        "Möchten Sie „{title}“ veröffentlichen?": "Do you want to publish “{title}”?",
        "Danach lassen sich Fragen und Zeitraum nicht mehr ändern. Die Umfrage beginnt und endet von selbst zu den "
        "angegebenen Zeiten.": "After that, questions and period can no longer be changed. The survey opens and "
        "closes by itself at the times given.",
        "Ja, veröffentlichen": "Yes, publish",
        "Nein, zurück": "No, go back",
        "Zugang": "Access",
        "Alle mit dem Link": "Everyone with the link",
        "Mit Zugangscode aus einem Schreiben": "With an access code from a letter",
        "Ergebnisse öffentlich": "Results public",
        "nach dem Ende": "after closing",
        "nein": "no",
        "Link für Bürgerinnen und Bürger": "Link for citizens",
        "Plakat mit QR-Code": "Poster with QR code",
        "Zum Ausdrucken und Aushängen: Titel, Ende der Umfrage, QR-Code und der Link zum Abtippen.": "To print and "
        "put up: title, closing date, QR code and the link to type.",
        "PDF, A4": "PDF, A4",
        "PDF, A3": "PDF, A3",
        "SVG, A4": "SVG, A4",
        "SVG, A3": "SVG, A3",
        "Zugangscodes für Schreiben": "Access codes for letters",
        "Zugangscodes erzeugen": "Generate access codes",
        "Anzahl der Codes": "Number of codes",
        "Jeder Code gilt für eine Teilnahme. Sie erhalten eine CSV-Datei für den Serienbrief: je Zeile ein Code und "
        "der persönliche Link. Die Codes werden nur dieses eine Mal gezeigt; gespeichert wird nur ein nicht "
        "umkehrbarer Prüfwert.": "Each code is good for one response. You get a CSV file for a mail merge: one code "
        "and its personal link per line. The codes are shown this once only; only a non-reversible check value is "
        "stored.",
        "Bitte geben Sie eine Anzahl von 1 bis {most} an.": "Please enter a number from 1 to {most}.",
        "Codes erzeugen und herunterladen": "Generate and download codes",
        "Zugangscode": "Access code",
        "Persönlicher Link": "Personal link",
        # The results' own words (Antwort, Anzahl, Durchschnitt…) are the citizen results page's, translated in
        # web/surveys/pages.py: one wording for both.
        "Ergebnisse": "Results",
        "Live-Ergebnisse": "Live results",
        "{n} Antworten auf diese Frage.": "{n} answers to this question.",
        "Antworten in eigenen Worten lesen": "Read the answers in their own words",
        "Noch keine Antworten.": "No answers yet.",
        "Weitere Antworten": "More answers",
        "Text entfernen": "Remove text",
        "Entfernen Sie einen Text, der eine Person nennt oder erkennbar macht. Die Zahlen der Ergebnisse werden "
        "berichtigt; festgehalten wird nur, wer wann warum entfernt hat.": "Remove a text that names a person or "
        "makes one recognisable. The results' figures are corrected; only who removed what kind of thing, when "
        "and why is recorded.",
        "Was soll entfernt werden?": "What is to be removed?",
        "Nur dieser Text": "This text only",
        "Die ganze Antwort der Person (alle ihre Angaben)": "The person's whole response (all their answers)",
        "Grund": "Reason",
        "Ja, entfernen": "Yes, remove",
        "Der Text ist entfernt.": "The text is removed.",
        "Genau diesen Text haben mehrere Personen geschrieben: Entfernen Sie nur den Text.": "Several people wrote "
        "exactly this text: remove the text only.",
        "Zurück zu den Ergebnissen": "Back to the results",
        "Zur Umfrage": "To the survey",
        "Zu den Umfragen": "To the surveys",
        "Antworten herunterladen": "Download the responses",
        "CSV (Excel)": "CSV (Excel)",
        "XLSX": "XLSX",
        "Nur zeigen, wenn": "Show only if",
        "immer gezeigt": "always shown",
        "Noch keine Fragen.": "No questions yet.",
        "Die Umfrage ist veröffentlicht: Fragen und Zeitraum lassen sich nicht mehr ändern.": "The survey is "
        "published: questions and period can no longer be changed.",
        "Diese Frage kann nicht entfernt werden: Von ihr hängt ab, ob „{other}“ gezeigt wird.": "This question cannot "
        "be removed: whether “{other}” is shown depends on it.",
        "Die einzige Frage der Umfrage kann nicht entfernt werden.": "The survey's only question cannot be removed.",
        "Frage entfernen": "Remove question",
        "Möchten Sie die Frage „{text}“ entfernen?": "Do you want to remove the question “{text}”?",
        "Ja, Frage entfernen": "Yes, remove the question",
        "Die Frage ist entfernt.": "The question is removed.",
        "Anhängen an": "Add to",
        "Nur für einen neuen Abschnitt.": "Only for a new section.",
        "Entwurf: Nur Sie sehen die Umfrage.": "Draft: only staff see the survey.",
        "den letzten Abschnitt „{title}“": "the last section “{title}”",
        "einen neuen Abschnitt": "a new section",
        "Antwortmöglichkeiten, eine je Zeile. Gilt für „Eine Antwort aus mehreren“, „Mehrere Antworten möglich“ "
        "und „Rangfolge“.": "Options, one per line. For “One answer of several”, “Several answers possible” and "
        "“Ranking”.",
        "Für Skala, Matrix und Zahl.": "For scale, matrix and number.",
        "Eine Zeile je Aussage, die auf der Skala bewertet wird.": "One line per statement rated on the scale.",
        "Leer lassen: keine Grenze.": "Leave empty: no limit.",
        "Nur für „Mehrere Antworten möglich“. Leer lassen: keine Grenze.": "Only for “Several answers possible”. "
        "Leave empty: no limit.",
        "Nur für Freitext. Leer lassen: 2000.": "Only for free text. Leave empty: 2000.",
        "Frage wird nur gezeigt, wenn eine der gewählten Antworten gegeben wurde. Keine Auswahl: immer "
        "zeigen.": "The question is shown only if one of the chosen answers was given. None chosen: always shown.",
        "Frühere Fragen, von denen eine Bedingung abhängen kann, gibt es noch nicht.": "There are no earlier "
        "questions yet that a condition could depend on.",
        "(freiwillig)": "(optional)",
        "Fehler:": "Error:",
        "ab {when}": "from {when}",
        "bis {when}": "until {when}",
        "Mitmachen bis {when}": "Take part until {when}",
        "Scannen Sie den QR-Code mit der Kamera Ihres Telefons oder geben Sie die Adresse im Browser ein.": "Scan "
        "the QR code with your phone's camera or type the address into your browser.",
    }
)

STATES = {"draft": "Entwurf", "published": "Veröffentlicht", "open": "Läuft", "closed": "Beendet"}


@dataclass
class Console(StaffCalls):
    """One request of a signed-in staff person: their session and the surveys API with their token."""

    api_base = API

    @property
    def base(self) -> str:
        return f"/verwaltung/{self.tenant}/umfragen"

    def page(self, template: str, context: dict[str, Any], status: int = 200) -> Response:
        _ = i18n.gettext(lang_of(self.request))
        shared = {
            "session": self.session,
            "base": self.base,
            "states": STATES,
            "kinds": sf.KINDS,
            "kind_options": [(k, _(v)) for k, v in sf.KINDS.items()],
        }
        return render(
            self.request,
            f"console/surveys/{template}",
            {**shared, **context},
            status=status,
            tenant=self.tenant,
        )


async def staff(request: Request, tenant: str) -> Console:
    check_tenant(tenant)
    session = await console_session(request, tenant, "staff")
    return Console(request, tenant, session, service_token(session, settings_of(request)))


def _form(form: Any) -> dict[str, list[str]]:
    return {k: [v for v in form.getlist(k) if isinstance(v, str)] for k in form}


async def _survey(c: Console, survey_id: UUID) -> dict[str, Any]:
    s: dict[str, Any] = await c.get(f"/{survey_id}")
    s["sections"] = sf.with_ids(s.get("sections") or [])
    return s


def _frozen(c: Console, s: Mapping[str, Any]) -> Response | None:
    """Published surveys are frozen (the API answers 409): their edit pages lead back to the survey."""
    return see_other(f"{c.base}/{s['id']}") if s["state"] != "draft" else None


# -- list, create, the survey's page --------------------------------------------------------------------------------


@router.get("")
async def survey_list(request: Request, tenant: str) -> Response:
    c = await staff(request, tenant)
    found: list[dict[str, Any]] = await c.get("")
    found.sort(key=lambda s: s["opens_at"], reverse=True)
    counted = [s for s in found if s["state"] != "draft"]
    results = await asyncio.gather(*(c.get(f"/{s['id']}/results") for s in counted))
    counts = {s["id"]: int(r["responses"]) for s, r in zip(counted, results, strict=True)}
    return c.page("list.html", {"surveys": found, "counts": counts})


def _question_context(
    c: Console, s: Mapping[str, Any] | None, earlier: list[dict[str, Any]], **more: Any
) -> dict[str, Any]:
    return {"s": s, "conditions": sf.condition_choices(earlier, lang_of(c.request)), **more}


@router.get("/neu")
async def new_form(request: Request, tenant: str) -> Response:
    c = await staff(request, tenant)
    values = {"access": "public", "kind": "single_choice"}
    return c.page("new.html", _question_context(c, None, [], values=values, errors=FormErrors()))


@router.post("/neu")
async def create(request: Request, tenant: str) -> Response:
    c = await staff(request, tenant)
    form = _form(await checked_form(request))
    lang = lang_of(request)
    basics = sf.read_basics(form, lang)
    question = sf.read_question(form, lang, taken=[], earlier=[])
    errors = FormErrors()
    for e in (*basics.errors.fields, *question.errors.fields):
        errors.add(e.name, e.message)
    values = {**question.values, **basics.values}
    context = _question_context(c, None, [], values=values)
    if errors:
        return c.page("new.html", {**context, "errors": errors}, status=422)
    body = {**basics.body, "sections": [{"id": "s1", "title": "", "questions": [question.body["question"]]}]}
    try:
        s = await _create(c, body)
    except ApiProblem as problem:
        failed = api_errors(problem, {**sf.BASIC_LABELS, **sf.QUESTION_LABELS}, lang, item="sections/0/questions/0")
        return c.page("new.html", {**context, "errors": failed}, status=problem.status)
    return see_other(f"{c.base}/{s['id']}?hinweis=angelegt")


async def _create(c: Console, body: dict[str, Any]) -> dict[str, Any]:
    """Create with a slug from the title, so the printed link reads as words (``.../umfrage/kreis/radwege``);
    when the tenant has that slug already, the next free ``-2``, ``-3``…, and in the end the survey's id."""
    base = slug_of(body["title"], [])[:60].strip("-") or "umfrage"
    for slug in (base, *(f"{base}-{n}" for n in range(2, 10)), None):
        try:
            created: dict[str, Any] = await c.post("", {**body, "slug": slug} if slug else body)
        except ApiProblem as problem:
            if problem.kind == "slug-taken":
                continue
            raise
        return created
    raise AssertionError("unreachable: the last try has no slug")


@router.get("/{survey_id}")
async def overview(request: Request, tenant: str, survey_id: UUID) -> Response:
    c = await staff(request, tenant)
    s = await _survey(c, survey_id)
    responses = None if s["state"] == "draft" else (await c.get(f"/{survey_id}/results"))["responses"]
    questions = sf.all_questions(s["sections"])
    lang = lang_of(request)
    conditions = {q["id"]: sf.condition_text(q, questions, lang) for q in questions}
    return c.page(
        "survey.html",
        {"s": s, "responses": responses, "conditions": conditions, "notice": request.query_params.get("hinweis", "")},
    )


@router.get("/{survey_id}/veroeffentlichen")
async def publish_confirm(request: Request, tenant: str, survey_id: UUID) -> Response:
    c = await staff(request, tenant)
    s = await _survey(c, survey_id)
    if back := _frozen(c, s):
        return back
    return c.page("publish.html", {"s": s, "errors": FormErrors()})


@router.post("/{survey_id}/veroeffentlichen")
async def publish(request: Request, tenant: str, survey_id: UUID) -> Response:
    c = await staff(request, tenant)
    await checked_form(request)
    s = await _survey(c, survey_id)
    if back := _frozen(c, s):
        return back
    try:
        await c.post(f"/{survey_id}/publish")
    except ApiProblem as problem:
        if problem.status == 404:
            raise
        errors = api_errors(problem, sf.BASIC_LABELS, lang_of(request))
        return c.page("publish.html", {"s": s, "errors": errors}, status=problem.status)
    return see_other(f"{c.base}/{survey_id}?hinweis=veroeffentlicht")


# -- basic data, sections and questions (drafts only) ---------------------------------------------------------------


@router.get("/{survey_id}/grunddaten")
async def basics_form(request: Request, tenant: str, survey_id: UUID) -> Response:
    c = await staff(request, tenant)
    s = await _survey(c, survey_id)
    if back := _frozen(c, s):
        return back
    return c.page("basics.html", {"s": s, "values": sf.basic_values(s), "errors": FormErrors()})


@router.post("/{survey_id}/grunddaten")
async def basics(request: Request, tenant: str, survey_id: UUID) -> Response:
    c = await staff(request, tenant)
    form = _form(await checked_form(request))
    s = await _survey(c, survey_id)
    if back := _frozen(c, s):
        return back
    lang = lang_of(request)
    read = sf.read_basics(form, lang)
    if read.errors:
        return c.page("basics.html", {"s": s, "values": read.values, "errors": read.errors}, status=422)
    try:
        await c.put(f"/{survey_id}", {**sf.survey_in(s), **read.body})
    except ApiProblem as problem:
        errors = api_errors(problem, sf.BASIC_LABELS, lang, order=list(sf.BASIC_LABELS))
        return c.page("basics.html", {"s": s, "values": read.values, "errors": errors}, status=problem.status)
    return see_other(f"{c.base}/{survey_id}?hinweis=gespeichert")


def _find(s: Mapping[str, Any], question_id: str) -> tuple[int, int, dict[str, Any]]:
    for si, section in enumerate(s["sections"]):
        for qi, q in enumerate(section["questions"]):
            if q["id"] == question_id:
                return si, qi, q
    raise HTTPException(404)


@router.get("/{survey_id}/fragen/neu")
async def question_new_form(request: Request, tenant: str, survey_id: UUID) -> Response:
    c = await staff(request, tenant)
    s = await _survey(c, survey_id)
    if back := _frozen(c, s):
        return back
    values = {"kind": "single_choice", "section": s["sections"][-1]["id"]}
    context = _question_context(c, s, sf.all_questions(s["sections"]), q=None, values=values, errors=FormErrors())
    return c.page("question.html", context)


@router.post("/{survey_id}/fragen/neu")
async def question_add(request: Request, tenant: str, survey_id: UUID) -> Response:
    c = await staff(request, tenant)
    form = _form(await checked_form(request))
    s = await _survey(c, survey_id)
    if back := _frozen(c, s):
        return back
    lang = lang_of(request)
    _ = i18n.gettext(lang)
    questions = sf.all_questions(s["sections"])
    read = sf.read_question(form, lang, taken=[q["id"] for q in questions], earlier=questions)
    new_section = read.values["section"] == sf.NEW_SECTION
    if new_section and not read.values["section_title"]:
        read.errors.add("section_title", _("Bitte geben Sie den Titel des neuen Abschnitts an."))
    context = _question_context(c, s, questions, q=None, values=read.values)
    if read.errors:
        return c.page("question.html", {**context, "errors": read.errors}, status=422)
    sections = [dict(x, questions=list(x["questions"])) for x in s["sections"]]
    if new_section:
        sections.append({"id": sf.new_section_id(sections), "title": read.values["section_title"], "questions": []})
    sections[-1]["questions"].append(read.body["question"])
    try:
        await c.put(f"/{survey_id}", sf.survey_in(s, sections))
    except ApiProblem as problem:
        item = f"sections/{len(sections) - 1}/questions/{len(sections[-1]['questions']) - 1}"
        errors = api_errors(problem, sf.QUESTION_LABELS, lang, item=item, order=sf.QUESTION_FIELDS)
        return c.page("question.html", {**context, "errors": errors}, status=problem.status)
    return see_other(f"{c.base}/{survey_id}?hinweis=gespeichert#fragen")


@router.get("/{survey_id}/fragen/{question_id}")
async def question_form(request: Request, tenant: str, survey_id: UUID, question_id: str) -> Response:
    c = await staff(request, tenant)
    s = await _survey(c, survey_id)
    if back := _frozen(c, s):
        return back
    _si, _qi, q = _find(s, question_id)
    earlier = sf.all_questions(s["sections"])
    earlier = earlier[: [x["id"] for x in earlier].index(question_id)]
    values = sf.question_values(q)
    return c.page("question.html", _question_context(c, s, earlier, q=q, values=values, errors=FormErrors()))


@router.post("/{survey_id}/fragen/{question_id}")
async def question_change(request: Request, tenant: str, survey_id: UUID, question_id: str) -> Response:
    c = await staff(request, tenant)
    form = _form(await checked_form(request))
    s = await _survey(c, survey_id)
    if back := _frozen(c, s):
        return back
    lang = lang_of(request)
    si, qi, q = _find(s, question_id)
    questions = sf.all_questions(s["sections"])
    earlier = questions[: [x["id"] for x in questions].index(question_id)]
    taken = [x["id"] for x in questions if x["id"] != question_id]
    read = sf.read_question(form, lang, taken=taken, earlier=earlier, old=q)
    context = _question_context(c, s, earlier, q=q, values=read.values)
    if read.errors:
        return c.page("question.html", {**context, "errors": read.errors}, status=422)
    sections = [dict(x, questions=list(x["questions"])) for x in s["sections"]]
    sections[si]["questions"][qi] = read.body["question"]
    try:
        await c.put(f"/{survey_id}", sf.survey_in(s, sections))
    except ApiProblem as problem:
        errors = api_errors(
            problem, sf.QUESTION_LABELS, lang, item=f"sections/{si}/questions/{qi}", order=sf.QUESTION_FIELDS
        )
        return c.page("question.html", {**context, "errors": errors}, status=problem.status)
    return see_other(f"{c.base}/{survey_id}?hinweis=gespeichert#fragen")


def _removal_refusal(s: Mapping[str, Any], question_id: str, lang: i18n.Language) -> str:
    _ = i18n.gettext(lang)
    questions = sf.all_questions(s["sections"])
    if len(questions) == 1:
        return _("Die einzige Frage der Umfrage kann nicht entfernt werden.")
    for other in questions:
        if (other.get("condition") or {}).get("question") == question_id:
            return _("Diese Frage kann nicht entfernt werden: Von ihr hängt ab, ob „{other}“ gezeigt wird.").format(
                other=other["text"]
            )
    return ""


@router.get("/{survey_id}/fragen/{question_id}/entfernen")
async def question_remove_confirm(request: Request, tenant: str, survey_id: UUID, question_id: str) -> Response:
    c = await staff(request, tenant)
    s = await _survey(c, survey_id)
    if back := _frozen(c, s):
        return back
    _si, _qi, q = _find(s, question_id)
    errors = FormErrors(summary=_removal_refusal(s, question_id, lang_of(request)))
    return c.page("question_remove.html", {"s": s, "q": q, "errors": errors})


@router.post("/{survey_id}/fragen/{question_id}/entfernen")
async def question_remove(request: Request, tenant: str, survey_id: UUID, question_id: str) -> Response:
    c = await staff(request, tenant)
    await checked_form(request)
    s = await _survey(c, survey_id)
    if back := _frozen(c, s):
        return back
    si, qi, q = _find(s, question_id)
    refusal = _removal_refusal(s, question_id, lang_of(request))
    if refusal:
        return c.page("question_remove.html", {"s": s, "q": q, "errors": FormErrors(summary=refusal)}, status=409)
    sections = [dict(x, questions=list(x["questions"])) for x in s["sections"]]
    del sections[si]["questions"][qi]
    sections = [x for x in sections if x["questions"]]
    try:
        await c.put(f"/{survey_id}", sf.survey_in(s, sections))
    except ApiProblem as problem:
        errors = api_errors(problem, {}, lang_of(request))
        return c.page("question_remove.html", {"s": s, "q": q, "errors": errors}, status=problem.status)
    return see_other(f"{c.base}/{survey_id}?hinweis=entfernt#fragen")


@router.get("/{survey_id}/abschnitte/{section_id}")
async def section_form(request: Request, tenant: str, survey_id: UUID, section_id: str) -> Response:
    c = await staff(request, tenant)
    s = await _survey(c, survey_id)
    if back := _frozen(c, s):
        return back
    section = next((x for x in s["sections"] if x["id"] == section_id), None)
    if section is None:
        raise HTTPException(404)
    values = {"title": section.get("title", ""), "description": section.get("description", "")}
    return c.page("section.html", {"s": s, "section": section, "values": values, "errors": FormErrors()})


@router.post("/{survey_id}/abschnitte/{section_id}")
async def section_change(request: Request, tenant: str, survey_id: UUID, section_id: str) -> Response:
    c = await staff(request, tenant)
    form = _form(await checked_form(request))
    s = await _survey(c, survey_id)
    if back := _frozen(c, s):
        return back
    index = next((i for i, x in enumerate(s["sections"]) if x["id"] == section_id), None)
    if index is None:
        raise HTTPException(404)
    values = {name: (form.get(name) or [""])[0].strip() for name in sf.SECTION_LABELS}
    sections = [dict(x) for x in s["sections"]]
    sections[index] |= {"title": values["title"][:300], "description": values["description"][:5000]}
    try:
        await c.put(f"/{survey_id}", sf.survey_in(s, sections))
    except ApiProblem as problem:
        errors = api_errors(problem, sf.SECTION_LABELS, lang_of(request), item=f"sections/{index}")
        context = {"s": s, "section": s["sections"][index], "values": values, "errors": errors}
        return c.page("section.html", context, status=problem.status)
    return see_other(f"{c.base}/{survey_id}?hinweis=gespeichert#fragen")


# -- poster, letter codes -------------------------------------------------------------------------------------------


def _download(content: bytes, media_type: str, filename: str) -> Response:
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


@router.get("/{survey_id}/plakat-{size}.{fmt}")
async def poster(request: Request, tenant: str, survey_id: UUID, size: str, fmt: str) -> Response:
    if size not in posters.SIZES or fmt not in ("pdf", "svg"):
        raise HTTPException(404)
    c = await staff(request, tenant)
    s = await _survey(c, survey_id)
    lang = lang_of(request)
    _ = i18n.gettext(lang)
    drawn = posters.layout(
        title=s["title"],
        url=s["url"],
        closes=_("Mitmachen bis {when}").format(when=i18n.when(s["closes_at"], lang).split(", ", 1)[-1]),
        kicker=_("Umfrage"),
        how=_("Scannen Sie den QR-Code mit der Kamera Ihres Telefons oder geben Sie die Adresse im Browser ein."),
        organiser=settings_of(request).site(tenant).name,
    )
    name = f"plakat-{s['slug']}-{size}.{fmt}"
    paper = cast(posters.Size, size)
    if fmt == "pdf":
        return _download(posters.pdf(drawn, paper, title=s["title"], subject=s["url"]), "application/pdf", name)
    return _download(posters.svg(drawn, paper, title=s["title"]), "image/svg+xml", name)


@router.get("/{survey_id}/zugangscodes")
async def codes_form(request: Request, tenant: str, survey_id: UUID) -> Response:
    c = await staff(request, tenant)
    s = await _survey(c, survey_id)
    if s["access"] != "token":
        return see_other(f"{c.base}/{survey_id}")
    return c.page("codes.html", {"s": s, "values": {"count": "100"}, "errors": FormErrors(), "most": MOST_CODES})


@router.post("/{survey_id}/zugangscodes")
async def codes(request: Request, tenant: str, survey_id: UUID) -> Response:
    """Issue codes and hand them out at once as a mail-merge CSV: the API shows them this once only."""
    c = await staff(request, tenant)
    form = _form(await checked_form(request))
    s = await _survey(c, survey_id)
    lang = lang_of(request)
    _ = i18n.gettext(lang)
    raw = (form.get("count") or [""])[0].strip()
    count = int(raw) if raw.isdigit() else 0
    if not 1 <= count <= MOST_CODES:
        errors = FormErrors()
        errors.add(
            "count", _("Bitte geben Sie eine Anzahl von 1 bis {most} an.").format(most=i18n.number(MOST_CODES, lang))
        )
        context = {"s": s, "values": {"count": raw}, "errors": errors, "most": MOST_CODES}
        return c.page("codes.html", context, status=422)
    try:
        issued = await c.post(f"/{survey_id}/tokens", {"count": count})
    except ApiProblem as problem:
        if problem.status == 404:
            raise
        context = {"s": s, "values": {"count": raw}, "errors": api_errors(problem, {"count": "Anzahl der Codes"}, lang)}
        return c.page("codes.html", {**context, "most": MOST_CODES}, status=problem.status)
    rows = [[code, f"{s['url']}?zugangscode={quote(code)}"] for code in issued["codes"]]
    return _download(
        spreadsheets.excel_csv([_("Zugangscode"), _("Persönlicher Link")], rows),
        "text/csv; charset=utf-8",
        f"zugangscodes-{s['slug']}.csv",
    )


# -- results, free texts, export ------------------------------------------------------------------------------------


def _decimal(lang: str) -> Any:
    def fmt(x: float | None) -> str:
        if x is None:
            return "\u2013"
        text = f"{x:.1f}"
        return text.replace(".", ",") if lang == "de" else text

    return fmt


@router.get("/{survey_id}/ergebnisse")
async def results(request: Request, tenant: str, survey_id: UUID) -> Response:
    c = await staff(request, tenant)
    s = await _survey(c, survey_id)
    data = await c.get(f"/{survey_id}/results")
    lang = lang_of(request)
    context = {"s": s, "results": data, "blocks": result_blocks(data, lang), "decimal": _decimal(lang)}
    return c.page("results.html", context)


@router.get("/{survey_id}/ergebnisse/{question_id}/texte")
async def texts(request: Request, tenant: str, survey_id: UUID, question_id: str) -> Response:
    c = await staff(request, tenant)
    s = await _survey(c, survey_id)
    _si, _qi, q = _find(s, question_id)
    if q["kind"] != "free_text":
        raise HTTPException(404)
    after = request.query_params.get("nach", "")
    page = await _text_page(c, survey_id, question_id, after)
    context = {"s": s, "q": q, "items": page["items"], "next_after": page["next_after"], "after": after}
    return c.page("texts.html", {**context, "notice": request.query_params.get("hinweis", "")})


async def _text_page(c: Console, survey_id: UUID, question_id: str, after: str) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": TEXTS_PER_PAGE}
    if after:
        try:
            params["after"] = str(UUID(after))
        except ValueError as bad:
            raise HTTPException(404) from bad
    page: dict[str, Any] = await c.get(f"/{survey_id}/questions/{quote(question_id, safe='')}/texts", params)
    return page


@router.get("/{survey_id}/ergebnisse/{question_id}/texte/{text_id}/entfernen")
async def text_remove_confirm(
    request: Request, tenant: str, survey_id: UUID, question_id: str, text_id: UUID
) -> Response:
    """What is removed, and how much: the text is looked up on the page it was listed on (``nach``), so the
    address never carries the text itself."""
    c = await staff(request, tenant)
    s = await _survey(c, survey_id)
    _si, _qi, q = _find(s, question_id)
    after = request.query_params.get("nach", "")
    page = await _text_page(c, survey_id, question_id, after)
    item = next((i for i in page["items"] if i["id"] == str(text_id)), None)
    if item is None:
        raise HTTPException(404)
    context = {"s": s, "q": q, "item": item, "after": after, "values": {"scope": "text"}, "errors": FormErrors()}
    return c.page("text_remove.html", context)


@router.post("/{survey_id}/ergebnisse/{question_id}/texte/{text_id}/entfernen")
async def text_remove(request: Request, tenant: str, survey_id: UUID, question_id: str, text_id: UUID) -> Response:
    c = await staff(request, tenant)
    form = _form(await checked_form(request))
    s = await _survey(c, survey_id)
    _si, _qi, q = _find(s, question_id)
    scope = (form.get("scope") or ["text"])[0]
    reason = (form.get("reason") or [""])[0].strip()[:500]
    after = (form.get("nach") or [""])[0]
    try:
        await c.post(
            f"/{survey_id}/texts/{text_id}/removal",
            {"scope": "response" if scope == "response" else "text", "reason": reason},
        )
    except ApiProblem as problem:
        if problem.status == 404:
            raise
        page = await _text_page(c, survey_id, question_id, after)
        item = next((i for i in page["items"] if i["id"] == str(text_id)), {"id": str(text_id), "text": ""})
        errors = api_errors(problem, {"scope": "Was soll entfernt werden?"}, lang_of(request))
        if problem.kind == "response-ambiguous":
            _ = i18n.gettext(lang_of(request))
            errors = FormErrors()
            errors.add("scope", _("Genau diesen Text haben mehrere Personen geschrieben: Entfernen Sie nur den Text."))
        context = {"s": s, "q": q, "item": item, "after": after, "values": {"scope": scope, "reason": reason}}
        return c.page("text_remove.html", {**context, "errors": errors}, status=problem.status)
    return see_other(f"{c.base}/{survey_id}/ergebnisse/{quote(question_id, safe='')}/texte?hinweis=entfernt")


@router.get("/{survey_id}/antworten.csv")
async def export_csv(request: Request, tenant: str, survey_id: UUID) -> Response:
    """The API's export (comma, UTF-8 with BOM) as German Excel opens it: ``;`` and CRLF, BOM kept."""
    c = await staff(request, tenant)
    s = await _survey(c, survey_id)
    content = (await c.raw(f"/{survey_id}/export", {"format": "csv"})).decode("utf-8-sig")
    reader = csv.reader(io.StringIO(content))
    header = next(reader, [])
    # The API already defused formula cells with a leading apostrophe; excel_csv would add a second one.
    body = (spreadsheets.BOM + _semicolons(header, reader)).encode("utf-8")
    return _download(body, "text/csv; charset=utf-8", f"antworten-{s['slug']}.csv")


def _semicolons(header: list[str], rows: Any) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


@router.get("/{survey_id}/antworten.xlsx")
async def export_xlsx(request: Request, tenant: str, survey_id: UUID) -> Response:
    c = await staff(request, tenant)
    s = await _survey(c, survey_id)
    content = await c.raw(f"/{survey_id}/export", {"format": "xlsx"})
    return _download(
        content, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", f"antworten-{s['slug']}.xlsx"
    )
