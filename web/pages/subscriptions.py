"""Subscription pages: confirm a subscription and unsubscribe, each through one button (a POST), since mail
scanners follow the links in mails. The notifications API's GET links lead here (CIVIC_LINK_SUBSCRIPTION_CONFIRM,
CIVIC_LINK_UNSUBSCRIBE); a one-click unsubscribe (RFC 8058, ``List-Unsubscribe=One-Click`` posted by a mail
program to the ``List-Unsubscribe`` address, which is this page) is handed on to the API: the signed token in
the address is the authorisation, so it needs no CSRF token."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from web import i18n
from web.client import ApiProblem
from web.pages.common import api, lang_of, see_other
from web.problems import sentence
from web.rendering import render
from web.security import checked_form

router = APIRouter(include_in_schema=False)

i18n.english(
    {
        "Abonnement bestätigen": "Confirm subscription",
        "Möchten Sie die Neuigkeiten zu diesem Beteiligungsverfahren per E-Mail erhalten?": "Would you like to "
        "receive the news of this participation process by e-mail?",
        "Ja, Abonnement bestätigen": "Yes, confirm my subscription",
        "Ihr Abonnement ist bestätigt": "Your subscription is confirmed",
        "Sie erhalten ab jetzt die Neuigkeiten per E-Mail. Jede E-Mail enthält einen Link zum Abbestellen.": "From "
        "now on you will receive the news by e-mail. Every e-mail contains a link to unsubscribe.",
        "Neuigkeiten abbestellen": "Unsubscribe from news",
        "Möchten Sie keine Nachrichten zu diesem Verfahren mehr erhalten?": "Do you no longer want to receive "
        "messages about this process?",
        "Ja, abbestellen": "Yes, unsubscribe",
        "Sie haben die Neuigkeiten abbestellt": "You have unsubscribed",
        "Sie erhalten keine Nachrichten zu diesem Verfahren mehr.": "You will receive no more messages about this "
        "process.",
        "Das hat leider nicht geklappt.": "That did not work.",
    }
)


def _token(request: Request) -> str:
    return (request.query_params.get("token") or "")[:200]


@router.get("/abo/bestaetigen")
async def confirm_page(request: Request) -> Response:
    return render(request, "pages/subscription.html", {"action": "confirm", "token": _token(request)})


@router.post("/abo/bestaetigen")
async def confirm(request: Request) -> Response:
    form = await checked_form(request)
    token = str(form.get("token") or "")[:200]
    try:
        await api(request).request(
            "POST", "/api/notifications/subscriptions/confirm", request=request, params={"token": token}
        )
    except ApiProblem as problem:
        return _failed(request, problem)
    return see_other("/abo/bestaetigt")


@router.get("/abo/bestaetigt")
async def confirmed(request: Request) -> Response:
    return render(request, "pages/subscription.html", {"action": "confirmed", "token": ""})


@router.get("/abo/abbestellen")
async def unsubscribe_page(request: Request) -> Response:
    return render(request, "pages/subscription.html", {"action": "unsubscribe", "token": _token(request)})


@router.post("/abo/abbestellen")
async def unsubscribe(request: Request) -> Response:
    raw = (await request.body())[:2000]
    if raw.strip() == b"List-Unsubscribe=One-Click":
        # A mail program's one-click unsubscribe: answered plainly, no page.
        await api(request).request(
            "POST", "/api/notifications/unsubscribe", request=request, params={"token": _token(request)}
        )
        return PlainTextResponse("unsubscribed\n")
    form = await checked_form(request)
    token = str(form.get("token") or "")[:200]
    try:
        await api(request).request("POST", "/api/notifications/unsubscribe", request=request, params={"token": token})
    except ApiProblem as problem:
        return _failed(request, problem)
    return see_other("/abo/abbestellt")


@router.get("/abo/abbestellt")
async def unsubscribed(request: Request) -> Response:
    return render(request, "pages/subscription.html", {"action": "unsubscribed", "token": ""})


def _failed(request: Request, problem: ApiProblem) -> Response:
    _ = i18n.gettext(lang_of(request))
    context = {
        "heading": _("Das hat leider nicht geklappt."),
        "message": sentence(problem, lang_of(request)),
        "back_href": "/",
        "back_text": _("Zur Startseite"),
    }
    return render(request, "pages/error.html", context, status=problem.status if problem.status < 500 else 503)
