"""The survey pages under ``/umfrage/{tenant}/{slug}``: landing (with the letter's access code), one section per
step, save and resume by a resume code, review, idempotent submission, thank-you, closed / not yet open, and
public results with server-drawn bar charts.

Everything goes through the surveys service's public API (docs/surveys.md); the pages own no data. The resume
code is in the step pages' addresses (a capability link, as the service's drafts are): it is what a person
keeps to come back, and the pages work without cookies and without JavaScript. The access code of a
letter-based survey is never stored with a draft: the page keeps it in a cookie on the person's device
(HttpOnly, scoped to the survey's path, ending with the browser session) and sends it with the submission;
without the cookie (another device, a resumed draft) the review page asks for it again.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup

from web import i18n
from web.client import ApiProblem
from web.pages.common import api, check_tenant, see_other
from web.problems import FormErrors
from web.rendering import language
from web.rendering import render as web_render
from web.security import checked_form
from web.surveys import answers as forms
from web.surveys import flow, messages
from web.surveys.charts import Bar, bar_chart

router = APIRouter(include_in_schema=False)

BASE = "/umfrage/{tenant}/{slug}"
ACCESS_COOKIE = "civic_survey_access"
#: The form field that carries the submission key: one per rendering of the review page, so a double click
#: or a retry of that form stores one response.
KEY_FIELD = "einreichung"

i18n.english(
    {
        "Umfrage": "Survey",
        "Umfrage beginnen": "Start the survey",
        "Dauert etwa {n} Minuten.": "Takes about {n} minutes.",
        "Dauert etwa eine Minute.": "Takes about one minute.",
        "Sie können bis {when} teilnehmen.": "You can take part until {when}.",
        "Anonym": "Anonymous",
        "Was anonym hier bedeutet": "What anonymous means here",
        "Wir fragen nicht nach Ihrem Namen, Ihrer E-Mail-Adresse oder einem Konto.": (
            "We do not ask for your name, your e-mail address or an account."
        ),
        "Mit Ihren Antworten speichern wir nur den Tag der Teilnahme, nicht die Uhrzeit, nicht Ihre "
        "Internet-Adresse und nicht Ihr Gerät.": (
            "With your answers we store only the day you took part: not the time, not your internet address and "
            "not your device."
        ),
        "Der Zugangscode aus Ihrem Schreiben sorgt nur dafür, dass jede Person einmal teilnimmt. Er wird beim "
        "Absenden als verbraucht markiert und nicht mit Ihren Antworten gespeichert.": (
            "The access code from your letter only makes sure that each person takes part once. It is marked as "
            "used when you send your answers and is not stored with them."
        ),
        "Freitext-Antworten werden so veröffentlicht, wie Sie sie schreiben. Bitte nennen Sie darin keine Namen "
        "oder Adressen.": (
            "Free-text answers are published as you write them. Please do not mention names or addresses in them."
        ),
        "Zugangscode": "Access code",
        "Sie finden ihn in Ihrem Schreiben, zum Beispiel ABCD-EFGH-JKMN.": (
            "You find it in your letter, for example ABCD-EFGH-JKMN."
        ),
        "Diese Umfrage ist nur mit dem Zugangscode aus Ihrem Schreiben möglich.": (
            "This survey needs the access code from your letter."
        ),
        "Schon angefangen?": "Started already?",
        "Mit Ihrem Fortsetzungscode weitermachen": "Continue with your resume code",
        "Die Umfrage hat noch nicht begonnen": "The survey has not begun yet",
        "Sie können ab {when} teilnehmen.": "You can take part from {when}.",
        "Die Umfrage ist beendet": "The survey has ended",
        "Die Umfrage lief bis {when}. Antworten sind nicht mehr möglich.": (
            "The survey ran until {when}. Answers are no longer possible."
        ),
        "Ergebnisse ansehen": "See the results",
        "Die Ergebnisse werden nicht veröffentlicht.": "The results are not published.",
        "Schritt {n} von {total}": "Step {n} of {total}",
        "Schritt {n} von {total}: {what}": "Step {n} of {total}: {what}",
        "Fehler": "Error",
        "Weiter": "Continue",
        "Zurück": "Back",
        "Speichern und später weitermachen": "Save and continue later",
        "freiwillig": "optional",
        "Nur beantworten, wenn Sie bei „{question}“ {answers} geantwortet haben.": (
            "Only answer if you answered {answers} to “{question}”."
        ),
        "oder": "or",
        "Ja": "Yes",
        "Nein": "No",
        "Keine Angabe": "No answer",
        "Sie können bis zu {n} Antworten auswählen.": "You can choose up to {n} answers.",
        "Wählen Sie alle zutreffenden Antworten aus.": "Choose all answers that apply.",
        "Höchstens {n} Zeichen.": "At most {n} characters.",
        "Von {lo} ({lo_text}) bis {hi} ({hi_text}).": "From {lo} ({lo_text}) to {hi} ({hi_text}).",
        "gar nicht": "not at all",
        "voll und ganz": "completely",
        "Eine Zahl von {lo} bis {hi}.": "A number from {lo} to {hi}.",
        "Eine Zahl ab {lo}.": "A number of at least {lo}.",
        "Eine Zahl.": "A number.",
        "Geben Sie jeder Möglichkeit einen Platz: 1 ist das Wichtigste.": (
            "Give every option a place: 1 is the most important."
        ),
        "Platz": "Place",
        "Platz wählen": "Choose a place",
        "Ihre Antworten prüfen": "Check your answers",
        "Bitte prüfen Sie Ihre Antworten. Sie können jede Antwort noch ändern.": (
            "Please check your answers. You can still change each of them."
        ),
        "Ändern": "Change",
        "Nicht beantwortet": "Not answered",
        "Antworten absenden": "Send answers",
        "Nach dem Absenden können Sie Ihre Antworten nicht mehr ändern.": (
            "After sending you cannot change your answers any more."
        ),
        "Es fehlen noch Antworten": "Some answers are missing",
        "Vielen Dank für Ihre Teilnahme": "Thank you for taking part",
        "Ihre Antworten sind angekommen.": "Your answers have arrived.",
        "Die Ergebnisse werden nach dem Ende der Umfrage am {when} hier veröffentlicht.": (
            "The results will be published here after the survey ends on {when}."
        ),
        "Zur Startseite": "To the start page",
        "Ihre Antworten sind gespeichert": "Your answers are saved",
        "Mit diesem Link oder Code können Sie später weitermachen:": ("With this link or code you can continue later:"),
        "Ihr Fortsetzungscode": "Your resume code",
        "Ihr Link zum Weitermachen": "Your link to continue",
        "Bitte notieren Sie den Code oder speichern Sie den Link als Lesezeichen. Wir kennen weder Ihren Namen "
        "noch Ihre E-Mail-Adresse und können Ihnen den Code nicht schicken. Wer den Code kennt, kann Ihre "
        "Antworten sehen und ändern.": (
            "Please write down the code or bookmark the link. We know neither your name nor your e-mail address "
            "and cannot send you the code. Anyone who knows the code can see and change your answers."
        ),
        "Die gespeicherten Antworten werden am Ende der Umfrage ({when}) gelöscht, wenn Sie sie nicht vorher "
        "absenden.": ("The saved answers are deleted when the survey ends ({when}) unless you send them before."),
        "Jetzt weitermachen": "Continue now",
        "Umfrage fortsetzen": "Continue the survey",
        "Fortsetzungscode": "Resume code",
        "Den Code haben Sie beim Speichern bekommen, zum Beispiel ABCD-EFGH-JKMN-PQRS.": (
            "You got the code when you saved, for example ABCD-EFGH-JKMN-PQRS."
        ),
        "Antworten nicht gefunden": "Answers not found",
        "Ergebnisse": "Results",
        "Ergebnisse: {title}": "Results: {title}",
        "{n} Personen haben teilgenommen.": "{n} people took part.",
        "Eine Person hat teilgenommen.": "One person took part.",
        "Antwort": "Answer",
        "Anzahl": "Number",
        "Anteil": "Share",
        "{n} Antworten auf diese Frage.": "{n} answers to this question.",
        "Durchschnitt: {mean}": "Average: {mean}",
        "Durchschnittlicher Platz": "Average place",
        "Durchschnitt": "Average",
        "Zeile": "Row",
        "Antworten in eigenen Worten": "Answers in people's own words",
        "Die Ergebnisse gibt es nach dem Ende der Umfrage": "The results come after the survey ends",
        "Die Ergebnisse werden nach dem {when} veröffentlicht.": "The results will be published after {when}.",
        "Zur Umfrage": "To the survey",
        "Diese Umfrage gibt es nicht": "This survey does not exist",
        "Bitte prüfen Sie die Adresse.": "Please check the address.",
        "Es gibt ein Problem": "There is a problem",
        "Ja, absenden": "Yes, send",
        "Zahlen als Tabelle": "Numbers as a table",
    }
)


def base_path(tenant: str, slug: str) -> str:
    return f"/umfrage/{quote(tenant, safe='')}/{quote(slug, safe='')}"


def survey_api(tenant: str, slug: str, tail: str = "") -> str:
    return f"/api/surveys/public/{quote(tenant, safe='')}/{quote(slug, safe='')}{tail}"


#: Surveys have texts in one language, the installation's (German); on an English page those texts carry
#: lang="de" (WCAG 3.1.2, language of parts).
CONTENT_LANGUAGE = "de"


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    tenant: str | None = None,
) -> Response:
    own = Markup(f' lang="{CONTENT_LANGUAGE}"') if _lang(request) != CONTENT_LANGUAGE else Markup("")
    return web_render(request, template, {"cl": own, **(context or {})}, status=status, tenant=tenant)


def _t(request: Request, text: str, **params: Any) -> str:
    translated = i18n.gettext(language(request))(text)
    return translated.format(**params) if params else translated


def _lang(request: Request) -> str:
    return str(language(request))


class Gone(Exception):
    """The page cannot be shown as asked; ``response`` says why (closed, not open, unknown)."""

    def __init__(self, response: Response) -> None:
        self.response = response


async def load_survey(request: Request, tenant: str, slug: str) -> dict[str, Any]:
    check_tenant(tenant)
    try:
        survey: dict[str, Any] = await api(request).get(survey_api(tenant, slug), request=request)
    except ApiProblem as p:
        if p.status == 404:
            raise Gone(not_found_page(request, tenant)) from None
        raise
    return flow.complete(survey)


async def load_open_survey(request: Request, tenant: str, slug: str) -> dict[str, Any]:
    """The survey if it takes answers now; otherwise ``Gone`` with the page saying why (not yet open, closed)."""
    survey = await load_survey(request, tenant, slug)
    if survey["status"] != "open":
        raise Gone(state_page(request, survey, tenant))
    return survey


def not_found_page(request: Request, tenant: str) -> Response:
    return render(
        request,
        "pages/error.html",
        {
            "heading": _t(request, "Diese Umfrage gibt es nicht"),
            "message": _t(request, "Bitte prüfen Sie die Adresse."),
            "back_href": f"/{tenant}",
            "back_text": _t(request, "Zur Startseite"),
        },
        status=404,
        tenant=tenant,
    )


def state_page(request: Request, survey: dict[str, Any], tenant: str) -> Response:
    """The page for a survey that is not open (not yet, or any more)."""
    template = "surveys/closed.html" if survey["status"] == "closed" else "surveys/not_open.html"
    return render(request, template, {"survey": survey, "base": base_path(tenant, survey["slug"])}, tenant=tenant)


def window_refused(p: ApiProblem) -> bool:
    return p.status == 409 and p.kind in ("survey-closed", "survey-not-yet-open", "survey-not-published")


async def _refreshed_state_page(request: Request, tenant: str, slug: str) -> Response:
    return state_page(request, await load_survey(request, tenant, slug), tenant)


# --- landing ---------------------------------------------------------------------------------------


def _landing(
    request: Request, survey: dict[str, Any], tenant: str, errors: FormErrors | None = None, code: str = ""
) -> Response:
    return render(
        request,
        "surveys/landing.html",
        {
            "survey": survey,
            "base": base_path(tenant, survey["slug"]),
            "errors": errors,
            "code": code,
            "has_free_text": any(q["kind"] == "free_text" for s in survey["sections"] for q in s["questions"]),
        },
        status=400 if errors else 200,
        tenant=tenant,
    )


@router.get(BASE)
async def landing(request: Request, tenant: str, slug: str) -> Response:
    try:
        survey = await load_open_survey(request, tenant, slug)
    except Gone as g:
        return g.response
    # A letter's personal link carries its access code (``?zugangscode=``): the field is filled in already.
    return _landing(request, survey, tenant, code=request.query_params.get("zugangscode", "").strip()[:64])


def _access_cookie_path(tenant: str, slug: str) -> str:
    return base_path(tenant, slug)


@router.post(BASE + "/beginnen")
async def begin(request: Request, tenant: str, slug: str) -> Response:
    form = await checked_form(request)
    try:
        survey = await load_open_survey(request, tenant, slug)
    except Gone as g:
        return g.response
    lang = _lang(request)
    code = str(form.get("zugangscode") or "").strip()
    if survey["access"] == "token":
        errors = FormErrors(summary="")
        if not code:
            errors.add("zugangscode", messages.pick(messages.ACCESS_CODE_MISSING, lang))
            return _landing(request, survey, tenant, errors, code)
        try:
            await api(request).post(survey_api(tenant, slug, "/access-code"), {"code": code}, request=request)
        except ApiProblem as p:
            if p.kind == "access-code-invalid":
                errors.add("zugangscode", messages.pick(messages.ACCESS_CODE_INVALID, lang))
                return _landing(request, survey, tenant, errors, code)
            if window_refused(p):
                return await _refreshed_state_page(request, tenant, slug)
            raise
    try:
        draft = await api(request).post(survey_api(tenant, slug, "/drafts"), request=request)
    except ApiProblem as p:
        if window_refused(p):
            return await _refreshed_state_page(request, tenant, slug)
        raise
    first = flow.resume_at(survey, draft)
    response = see_other(f"{base_path(tenant, slug)}/entwurf/{draft['resume_code']}/{first}")
    if survey["access"] == "token":
        settings = request.app.state.web_settings
        response.set_cookie(
            ACCESS_COOKIE,
            code,
            httponly=True,
            secure=bool(settings.cookie_secure),
            samesite="lax",
            path=_access_cookie_path(tenant, slug),
        )
    return response


# --- drafts: reading, steps -----------------------------------------------------------------------


async def load_draft(request: Request, tenant: str, slug: str, code: str) -> tuple[dict[str, Any], dict[str, Any]]:
    survey = await load_open_survey(request, tenant, slug)
    try:
        draft: dict[str, Any] = await api(request).get(
            survey_api(tenant, slug, f"/drafts/{quote(code, safe='')}"), request=request
        )
    except ApiProblem as p:
        if p.kind == "draft-not-found" or p.status in (404, 422):
            raise Gone(resume_page(request, survey, tenant, unknown=True)) from None
        if window_refused(p):
            raise Gone(await _refreshed_state_page(request, tenant, slug)) from None
        raise
    return survey, draft


@router.get(BASE + "/entwurf/{code}")
async def resume_link(request: Request, tenant: str, slug: str, code: str) -> Response:
    """The resume link: continue where the draft stands."""
    try:
        survey, draft = await load_draft(request, tenant, slug, code)
    except Gone as g:
        return g.response
    return see_other(f"{base_path(tenant, slug)}/entwurf/{quote(code, safe='')}/{flow.resume_at(survey, draft)}")


def _condition_hints(
    request: Request, survey: Mapping[str, Any], questions: Sequence[Mapping[str, Any]]
) -> dict[str, str]:
    """For each conditional question, the sentence saying when to answer it (shown on pages without script,
    where the question stands beside the one it depends on)."""
    by_id = {q["id"]: q for s in survey["sections"] for q in s["questions"]}
    here = {q["id"] for q in questions}
    hints: dict[str, str] = {}
    for q in questions:
        cond = q.get("condition")
        # A condition on an earlier page is decided already: the question is on this page only if it holds.
        if not cond or cond["question"] not in here:
            continue
        target = by_id.get(cond["question"])
        if target is None:
            continue
        labels = {o["id"]: o["label"] for o in target.get("options", [])}
        labels |= {"yes": _t(request, "Ja"), "no": _t(request, "Nein")}
        words = f" {_t(request, 'oder')} ".join(f"„{labels.get(v, v)}“" for v in cond["any_of"])
        hints[q["id"]] = _t(
            request,
            "Nur beantworten, wenn Sie bei „{question}“ {answers} geantwortet haben.",
            question=target["text"],
            answers=words,
        )
    return hints


def _step_page(
    request: Request,
    survey: dict[str, Any],
    draft: dict[str, Any],
    step: flow.Step,
    tenant: str,
    code: str,
    values: Mapping[str, Any],
    errors: FormErrors | None = None,
) -> Response:
    questions = flow.page_questions(step.section, draft)
    base = base_path(tenant, survey["slug"])
    here = f"{base}/entwurf/{quote(code, safe='')}"
    return render(
        request,
        "surveys/step.html",
        {
            "survey": survey,
            "step": step,
            "questions": questions,
            "values": values,
            "errors": errors,
            "hints": _condition_hints(request, survey, questions),
            # The error summary names the question beside each message: "Bitte wählen Sie ..." alone is
            # ambiguous out of its place.
            "labels": {forms.first_field(q): q["text"] for q in questions},
            "field": forms.field,
            "first_field": forms.first_field,
            "action": f"{here}/{step.section['id']}",
            "back_href": f"{here}/{step.previous}" if step.previous else base,
            "base": base,
        },
        status=400 if errors else 200,
        tenant=tenant,
    )


@router.get(BASE + "/entwurf/{code}/{section_id}")
async def step_page(request: Request, tenant: str, slug: str, code: str, section_id: str) -> Response:
    if section_id == flow.REVIEW:
        return await review(request, tenant, slug, code)
    if section_id == "gespeichert":
        return await saved(request, tenant, slug, code)
    try:
        survey, draft = await load_draft(request, tenant, slug, code)
    except Gone as g:
        return g.response
    step = flow.step_of(survey, draft, section_id)
    if step is None:
        return see_other(f"{base_path(tenant, slug)}/entwurf/{quote(code, safe='')}/{flow.resume_at(survey, draft)}")
    values = forms.to_form(flow.questions_of(step.section), draft["answers"])
    return _step_page(request, survey, draft, step, tenant, code, values)


def answer_errors(
    request: Request,
    questions: Sequence[Mapping[str, Any]],
    refused: Sequence[tuple[str, str]],
) -> FormErrors:
    """Refused answers as the page's errors: one German message per question, in the page's order, each
    linking to the question's first control."""
    lang = _lang(request)
    by_id = {q["id"]: q for q in questions}
    codes = dict(reversed(list(refused)))
    errors = FormErrors(summary="")
    for q in questions:
        if q["id"] in codes:
            errors.add(forms.first_field(q), messages.message(q, codes[q["id"]], lang))
    for qid, code in refused:
        if qid not in by_id:
            errors.summary = messages.message({}, code, lang)
    return errors


def problem_codes(p: ApiProblem) -> list[tuple[str, str]]:
    return [(str(e.get("question")), str(e.get("code"))) for e in p.errors if e.get("question")]


@router.post(BASE + "/entwurf/{code}/{section_id}")
async def save_step(request: Request, tenant: str, slug: str, code: str, section_id: str) -> Response:
    form = await checked_form(request)
    if section_id == flow.REVIEW:
        return await submit(request, tenant, slug, code, form)
    try:
        survey, draft = await load_draft(request, tenant, slug, code)
    except Gone as g:
        return g.response
    step = flow.step_of(survey, draft, section_id)
    if step is None:
        return see_other(f"{base_path(tenant, slug)}/entwurf/{quote(code, safe='')}/{flow.resume_at(survey, draft)}")
    questions = flow.questions_of(step.section)
    multi = {k: [v for v in form.getlist(k) if isinstance(v, str)] for k in form}
    given, local = forms.from_form(questions, multi)
    action = str(form.get("aktion") or "weiter")
    values = forms.form_values(questions, multi)
    if local:
        return _step_page(request, survey, draft, step, tenant, code, values, answer_errors(request, questions, local))
    try:
        updated = await api(request).request(
            "PUT",
            survey_api(tenant, slug, f"/drafts/{quote(code, safe='')}/sections/{quote(section_id, safe='')}"),
            request=request,
            json={"answers": given, "partial": action != "weiter"},
        )
    except ApiProblem as p:
        if p.kind == "invalid-answers":
            errors = answer_errors(request, questions, problem_codes(p))
            return _step_page(request, survey, draft, step, tenant, code, values, errors)
        if p.kind == "draft-not-found":
            return resume_page(request, survey, tenant, unknown=True)
        if window_refused(p):
            return await _refreshed_state_page(request, tenant, slug)
        raise
    here = f"{base_path(tenant, slug)}/entwurf/{quote(code, safe='')}"
    if action == "spaeter":
        return see_other(f"{here}/gespeichert")
    summary = updated.json()
    # The answers may have shown or hidden sections: neighbours are found again with the new summary.
    now = flow.step_of(survey, summary, section_id) or step
    if action == "zurueck":
        return see_other(f"{here}/{now.previous}" if now.previous else base_path(tenant, slug))
    return see_other(f"{here}/{now.next}")


# --- saved, resume ---------------------------------------------------------------------------------


async def saved(request: Request, tenant: str, slug: str, code: str) -> Response:
    try:
        survey, draft = await load_draft(request, tenant, slug, code)
    except Gone as g:
        return g.response
    settings = request.app.state.web_settings
    base = base_path(tenant, slug)
    link = f"{settings.public_base_url.rstrip('/')}{base}/entwurf/{quote(code, safe='')}"
    return render(
        request,
        "surveys/saved.html",
        {
            "survey": survey,
            "draft": draft,
            "code": code.upper(),
            "link": link,
            "base": base,
            "continue_href": f"{base}/entwurf/{quote(code, safe='')}",
        },
        tenant=tenant,
    )


def resume_page(
    request: Request,
    survey: dict[str, Any],
    tenant: str,
    *,
    unknown: bool = False,
    code: str = "",
    errors: FormErrors | None = None,
) -> Response:
    lang = _lang(request)
    if unknown and errors is None:
        errors = FormErrors(summary="")
        errors.add("fortsetzungscode", messages.pick(messages.RESUME_CODE_INVALID, lang))
    return render(
        request,
        "surveys/resume.html",
        {"survey": survey, "base": base_path(tenant, survey["slug"]), "errors": errors, "code": code},
        status=404 if unknown else 400 if errors else 200,
        tenant=tenant,
    )


@router.get(BASE + "/fortsetzen")
async def resume_form(request: Request, tenant: str, slug: str) -> Response:
    try:
        survey = await load_open_survey(request, tenant, slug)
    except Gone as g:
        return g.response
    return resume_page(request, survey, tenant)


@router.post(BASE + "/fortsetzen")
async def resume_post(request: Request, tenant: str, slug: str) -> Response:
    form = await checked_form(request)
    code = str(form.get("fortsetzungscode") or "").strip()
    try:
        survey = await load_survey(request, tenant, slug)
    except Gone as g:
        return g.response
    if not code:
        errors = FormErrors(summary="")
        errors.add("fortsetzungscode", messages.pick(messages.RESUME_CODE_MISSING, _lang(request)))
        return resume_page(request, survey, tenant, errors=errors)
    normal = "-".join("".join(ch for ch in code.upper() if ch.isalnum())[i : i + 4] for i in range(0, 16, 4)).strip("-")
    try:
        _, draft = await load_draft(request, tenant, slug, normal or code)
    except Gone as g:
        if g.response.status_code == 404:
            return resume_page(request, survey, tenant, unknown=True, code=code)
        return g.response
    return see_other(f"{base_path(tenant, slug)}/entwurf/{quote(normal, safe='')}/{flow.resume_at(survey, draft)}")


# --- review and submission -------------------------------------------------------------------------


def _review_page(
    request: Request,
    survey: dict[str, Any],
    draft: dict[str, Any],
    tenant: str,
    code: str,
    errors: FormErrors | None = None,
    access_code: str = "",
    status: int = 200,
) -> Response:
    base = base_path(tenant, survey["slug"])
    here = f"{base}/entwurf/{quote(code, safe='')}"
    sections = flow.shown_sections(survey, draft)
    shown = set(draft["shown"])
    labels = {"yes": _t(request, "Ja"), "no": _t(request, "Nein"), "decimal": "," if _lang(request) == "de" else "."}
    rows = [
        {
            "section": s,
            "href": f"{here}/{s['id']}",
            "answers": [
                {
                    "question": q,
                    "lines": forms.shown_text(q, draft["answers"][q["id"]], labels)
                    if q["id"] in draft["answers"]
                    else None,
                    "href": f"{here}/{s['id']}#{forms.first_field(q)}",
                }
                for q in s["questions"]
                if q["id"] in shown
            ],
        }
        for s in sections
    ]
    if errors is None:
        errors = FormErrors(summary="")
        by_id = {q["id"]: q for s in sections for q in s["questions"]}
        section_of = {q["id"]: s["id"] for s in sections for q in s["questions"]}
        for e in draft.get("errors", []):
            q = by_id.get(str(e.get("question")))
            if q is not None:
                errors.add(
                    f"{section_of[q['id']]}#{forms.first_field(q)}",
                    f"{q['text']}: {messages.message(q, str(e.get('code')), _lang(request))}",
                )
    needs_code = survey["access"] == "token" and not request.cookies.get(ACCESS_COOKIE)
    total = flow.total_steps(survey, draft)
    return render(
        request,
        "surveys/review.html",
        {
            "survey": survey,
            "rows": rows,
            "errors": errors,
            "here": here,
            "base": base,
            "key": secrets.token_urlsafe(18),
            "key_field": KEY_FIELD,
            "needs_code": needs_code,
            "access_code": access_code,
            "step_number": total,
            "total": total,
            "back_href": f"{here}/{sections[-1]['id']}" if sections else base,
        },
        status=status,
        tenant=tenant,
    )


async def review(request: Request, tenant: str, slug: str, code: str) -> Response:
    try:
        survey, draft = await load_draft(request, tenant, slug, code)
    except Gone as g:
        return g.response
    return _review_page(request, survey, draft, tenant, code)


async def submit(request: Request, tenant: str, slug: str, code: str, form: Any) -> Response:
    key = str(form.get(KEY_FIELD) or "")
    access_code = str(form.get("zugangscode") or request.cookies.get(ACCESS_COOKIE) or "").strip()
    body: dict[str, Any] = {"draft": code, "submission_key": key if 8 <= len(key) <= 200 else secrets.token_urlsafe(18)}
    if access_code:
        body["token"] = access_code
    try:
        await api(request).post(survey_api(tenant, slug, "/responses"), body, request=request)
    except ApiProblem as p:
        if window_refused(p):
            return await _refreshed_state_page(request, tenant, slug)
        try:
            survey, draft = await load_draft(request, tenant, slug, code)
        except Gone as g:
            return g.response
        lang = _lang(request)
        errors = FormErrors(summary="")
        if p.kind == "access-code-invalid" or (
            p.kind == "invalid-answers" and any(e.get("field") == "token" for e in p.errors)
        ):
            pair = messages.ACCESS_CODE_INVALID if access_code else messages.ACCESS_CODE_MISSING
            errors.add("zugangscode", messages.pick(pair, lang))
            response = _review_page(request, survey, draft, tenant, code, errors, access_code, status=400)
            response.delete_cookie(ACCESS_COOKIE, path=_access_cookie_path(tenant, slug))
            return response
        if p.kind == "invalid-answers":
            return _review_page(request, survey, draft, tenant, code, status=400)
        raise
    response = see_other(f"{base_path(tenant, slug)}/danke")
    response.delete_cookie(ACCESS_COOKIE, path=_access_cookie_path(tenant, slug))
    return response


@router.get(BASE + "/danke")
async def thanks(request: Request, tenant: str, slug: str) -> Response:
    try:
        survey = await load_survey(request, tenant, slug)
    except Gone as g:
        return g.response
    return render(request, "surveys/thanks.html", {"survey": survey, "base": base_path(tenant, slug)}, tenant=tenant)


# --- public results --------------------------------------------------------------------------------


def _percent(lang: str) -> Any:
    def fmt(share: float) -> str:
        n = round(share * 100)
        return f"{n} %" if lang == "de" else f"{n}%"

    return fmt


def result_blocks(results: Mapping[str, Any], lang: str) -> list[dict[str, Any]]:
    """Per question what the results page shows: bars (drawn as SVG) and the same numbers as a table."""
    number = _percent(lang)
    yes, no = ("Ja", "Nein") if lang == "de" else ("Yes", "No")
    blocks: list[dict[str, Any]] = []
    for q in results["questions"]:
        kind = q["kind"]
        bars: list[Bar] = []
        total = int(q["answered"])
        # Option labels are the survey's own words; yes/no and scale values are the page's.
        own = kind in ("single_choice", "multiple_choice")
        block: dict[str, Any] = {"question": q, "answered": total, "rows": [], "chart": None, "own_labels": own}
        if kind in ("single_choice", "multiple_choice"):
            bars = [Bar(o["label"], int(o["count"])) for o in q["options"]]
        elif kind == "yes_no":
            bars = [Bar(yes, int(q["yes"])), Bar(no, int(q["no"]))]
        elif kind == "scale":
            bars = [Bar(v, int(c)) for v, c in q["distribution"].items()]
            block["mean"] = q.get("mean")
        elif kind == "number":
            block["mean"] = q.get("mean")
        elif kind == "ranking":
            ranked = sorted(q["options"], key=lambda o: (o["mean_position"] is None, o["mean_position"] or 0))
            block["ranking"] = ranked
        elif kind == "matrix":
            block["matrix"] = q["rows"]
        if bars:
            block["rows"] = [(b.label, b.count, number(b.count / total if total else 0)) for b in bars]
            block["chart"] = bar_chart(bars, total, number)
        blocks.append(block)
    return blocks


def _decimal(lang: str) -> Any:
    def fmt(x: float | None) -> str:
        if x is None:
            return "\u2013"
        text = f"{x:.1f}"
        return text.replace(".", ",") if lang == "de" else text

    return fmt


@router.get(BASE + "/ergebnisse")
async def results(request: Request, tenant: str, slug: str) -> Response:
    try:
        survey = await load_survey(request, tenant, slug)
    except Gone as g:
        return g.response
    base = base_path(tenant, slug)
    try:
        data = await api(request).get(survey_api(tenant, slug, "/results"), request=request)
    except ApiProblem as p:
        if p.kind in ("results-after-closing", "results-not-public"):
            return render(
                request,
                "surveys/results_later.html",
                {"survey": survey, "base": base, "never": p.kind == "results-not-public"},
                status=p.status,
                tenant=tenant,
            )
        raise
    lang = _lang(request)
    texts: dict[str, list[str]] = {}
    for q in data["questions"]:
        if q["kind"] == "free_text" and q["answered"]:
            page = await api(request).get(
                survey_api(tenant, slug, f"/questions/{quote(q['id'], safe='')}/texts"),
                request=request,
                params={"limit": 20},
            )
            texts[q["id"]] = [t["text"] for t in page["items"]]
    return render(
        request,
        "surveys/results.html",
        {
            "survey": survey,
            "results": data,
            "blocks": result_blocks(data, lang),
            "texts": texts,
            "decimal": _decimal(lang),
            "base": base,
        },
        tenant=tenant,
    )
