"""The console's pages for messages to other systems and for operators.

- ``/verwaltung/{tenant}/benachrichtigungen`` (role ``staff``): where notifications are looked after.
- ``/verwaltung/{tenant}/webhooks`` (role ``staff``): the tenant's webhook endpoints with their state, creating
  one (its signing secret shown once), deleting one (a confirmation page), and per endpoint its deliveries with
  their outcome, attempts and last answer, and "send again" for one delivery (the notifications API's
  ``POST /deliveries/{id}/resend``).
- ``/verwaltung/betrieb/fehler`` (role ``admin``, operators): the open dead letters of the bus of every
  service, retried or dropped one at a time (each service's ``/api/<service>/admin/dead-letters``, the
  ``civic dlq`` commands over HTTP). Not tenant-scoped: dead letters belong to the installation, and an entry
  that does not parse names no tenant. ``staff`` has no access.

Everything comes from the services' APIs with the signed-in person's token; the web client keeps nothing.
News subscriptions are not shown: the notifications API offers staff no view of them (docs/console.md).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from shared.contracts.registry import REGISTRY
from web import i18n
from web.client import ApiProblem, ApiUnavailable
from web.console.meetings import stamp
from web.console.session import (
    NoAccess,
    SignInNeeded,
    StaffSession,
    console_session,
    had_session_cookie,
    operator_token,
    service_token,
    signed_in,
)
from web.pages.common import api, check_tenant, lang_of, see_other, settings_of
from web.problems import FormErrors
from web.rendering import render
from web.security import checked_form

router = APIRouter(include_in_schema=False)

NOTIFICATIONS = "/api/notifications"
#: The services whose dead letters the operators' page lists (each has ``/api/<name>/admin/dead-letters``).
SERVICES = ("registration", "surveys", "notifications", "content")
OPERATIONS = "/verwaltung/betrieb/fehler"

i18n.english(
    {
        "Benachrichtigungen": "Notifications",
        "Webhooks": "Webhooks",
        "Andere Systeme (etwa die App eines Stadtteils oder die Website der Stadt) erhalten Ereignisse als "
        "signierte Webhooks.": "Other systems (a neighbourhood app, the city's website) receive events as signed "
        "webhooks.",
        "Zu den Webhooks": "To the webhooks",
        "Fehler des Nachrichtenbusses": "Dead letters of the bus",
        "Nachrichten zwischen den Diensten, die nicht verarbeitet werden konnten (für den Betrieb).": "Messages "
        "between the services that could not be handled (for operators).",
        "Zu den Fehlern": "To the dead letters",
        "Neuer Webhook": "New webhook",
        "Noch keine Webhooks.": "No webhooks yet.",
        "Adresse": "Address",
        "Ereignisse": "Events",
        "Zustand": "State",
        "aktiv": "enabled",
        "abgeschaltet": "disabled",
        "abgeschaltet: {reason}": "disabled: {reason}",
        "Beschreibung": "Description",
        "Angelegt am": "Created on",
        "Webhook anlegen": "Create webhook",
        "Adresse (URL)": "Address (URL)",
        "Die Adresse, an die civic die Ereignisse sendet, z. B. https://app.example.org/civic. Sie muss aus dem "
        "Internet erreichbar sein.": "The address civic sends the events to, e.g. https://app.example.org/civic. "
        "It must be reachable from the internet.",
        "Welche Ereignisse?": "Which events?",
        "Nur öffentliche Ereignisse: Sie enthalten keine personenbezogenen Daten.": "Public events only: they "
        "hold no personal data.",
        "Alle Ereignisse": "All events",
        "Alle Ereignisse von {producer}": "All events of {producer}",
        "(freiwillig)": "(optional)",
        "Wofür ist der Webhook? Nur für Sie sichtbar.": "What is the webhook for? Only you see this.",
        "Bitte geben Sie die Adresse an.": "Please enter the address.",
        "Bitte wählen Sie mindestens ein Ereignis.": "Please choose at least one event.",
        "Diese Adresse kann civic nicht verwenden: {reasons}.": "civic cannot use this address: {reasons}.",
        "Die Adresse ist keine gültige URL": "the address is not a valid URL",
        "sie muss mit https:// oder http:// beginnen": "it must begin with https:// or http://",
        "der Rechnername fehlt": "the host name is missing",
        "Zugangsdaten in der Adresse sind nicht erlaubt": "credentials in the address are not allowed",
        "sie zeigt ins interne Netz": "it points into the internal network",
        "Bitte prüfen Sie die Angabe": "please check it",
        "Der Webhook ist angelegt": "The webhook is created",
        "Geheimer Schlüssel": "Secret key",
        "Mit diesem Schlüssel prüft das empfangende System die Signatur jeder Sendung (Standard Webhooks). Er wird "
        "nur jetzt angezeigt: Bitte kopieren Sie ihn jetzt in das empfangende System.": "The receiving system "
        "checks each delivery's signature with this key (Standard Webhooks). It is shown only now: please copy "
        "it into the receiving system now.",
        "Zum Webhook": "To the webhook",
        "Zustellungen": "Deliveries",
        "Noch keine Zustellungen.": "No deliveries yet.",
        "Keine fehlgeschlagenen Zustellungen.": "No failed deliveries.",
        "Alle": "All",
        "Nur Fehler": "Failures only",
        "{sent} zugestellt, {failed} fehlgeschlagen (wird wiederholt), {given_up} aufgegeben, {queued} "
        "wartend": "{sent} delivered, {failed} failed (will be retried), {given_up} given up, {queued} waiting",
        "Ereignis": "Event",
        "Erstellt": "Created",
        "Versuche": "Attempts",
        "Letzte Antwort": "Last answer",
        "Aktion": "Action",
        "zugestellt": "delivered",
        "fehlgeschlagen, nächster Versuch {when}": "failed, next attempt {when}",
        "aufgegeben": "given up",
        "wartet": "waiting",
        "wird gesendet": "sending",
        "erneut gesendet: {n}-mal": "sent again: {n} times",
        "Erneut senden": "Send again",
        "Zustellung vom {when} erneut senden": "Send the delivery of {when} again",
        "Die Zustellung wird erneut gesendet.": "The delivery is being sent again.",
        "Die Zustellung lässt sich nicht erneut senden: Der Webhook ist abgeschaltet.": "The delivery cannot be "
        "sent again: the webhook is disabled.",
        "Webhook löschen": "Delete webhook",
        "Möchten Sie den Webhook an {url} wirklich löschen?": "Do you really want to delete the webhook to {url}?",
        "Das empfangende System erhält danach keine Ereignisse mehr. Das lässt sich nicht rückgängig machen.": "The "
        "receiving system then gets no more events. This cannot be undone.",
        "Ja, Webhook löschen": "Yes, delete the webhook",
        "Nein, zurück": "No, go back",
        "Der Webhook ist gelöscht.": "The webhook is deleted.",
        "Zu den Webhooks zurück": "Back to the webhooks",
        "Offene Fehler": "Open dead letters",
        "Keine offenen Fehler.": "No open dead letters.",
        "Dienst": "Service",
        "Strom": "Stream",
        "Typ": "Type",
        "Mandant": "Tenant",
        "Fehler": "Error",
        "Zustellversuche": "Deliveries",
        "unbekannt": "unknown",
        "Erneut verarbeiten": "Handle again",
        "Verwerfen": "Drop",
        "Fehler {id} von {service}": "Dead letter {id} of {service}",
        "{service} ist gerade nicht erreichbar.": "{service} is not available right now.",
        "Verarbeitet: Der Fehler ist erledigt.": "Handled: the dead letter is resolved.",
        "Wieder fehlgeschlagen; der Fehler bleibt offen.": "Failed again; the dead letter stays open.",
        "Dieser Eintrag lässt sich so nicht verarbeiten. Sie können ihn verwerfen.": "This entry cannot be handled "
        "as it is. You can drop it.",
        "Dieser Fehler ist schon erledigt.": "This dead letter is resolved already.",
        "Verworfen.": "Dropped.",
        "Fehler verwerfen": "Drop dead letter",
        "Möchten Sie diesen Eintrag wirklich verwerfen?": "Do you really want to drop this entry?",
        "Er wird nicht mehr verarbeitet und bleibt nur als Aufzeichnung erhalten.": "It will not be handled any "
        "more and is kept only as a record.",
        "Ja, verwerfen": "Yes, drop it",
        "Die Fehler gehören zur ganzen Installation, nicht zu einem Mandanten. Den Eintrag selbst zeigt "
        "„civic dlq show“.": "Dead letters belong to the whole installation, not to a tenant. "
        "“civic dlq show” shows the entry itself.",
    }
)

PRODUCERS = {
    "registration": "Anmeldungen",
    "surveys": "Umfragen",
    "content": "Inhalte",
}
i18n.english({"Anmeldungen": "Registrations", "Umfragen": "Surveys", "Inhalte": "Content"})

#: check_url's findings (services/notifications/webhooks.py), in words for the page.
URL_REASONS = {
    "not a URL": "Die Adresse ist keine gültige URL",
    "scheme must be http or https": "sie muss mit https:// oder http:// beginnen",
    "host is missing": "der Rechnername fehlt",
    "credentials in the URL are not allowed": "Zugangsdaten in der Adresse sind nicht erlaubt",
    "host is a private, loopback, link-local or reserved address": "sie zeigt ins interne Netz",
    "host is a local name": "sie zeigt ins interne Netz",
}


def event_choices(lang: i18n.Language) -> list[tuple[str, str]]:
    """What an endpoint may ask for: all, all of one service, or single public types (notifications' own events
    never go to webhooks)."""
    _ = i18n.gettext(lang)
    types = [s for s in REGISTRY if s.visibility == "public" and s.producer in PRODUCERS]
    out = [("*", _("Alle Ereignisse"))]
    for producer, name in PRODUCERS.items():
        out.append((f"civic.{producer}.*", _("Alle Ereignisse von {producer}").format(producer=_(name))))
    out += [(s.type, s.type) for s in types]
    return out


# -- calling the notifications API as the signed-in person -----------------------------------------------------------


@dataclass
class Staff:
    request: Request
    tenant: str
    session: StaffSession
    token: str

    async def get(self, path: str) -> Any:
        return await api(self.request).get(NOTIFICATIONS + path, request=self.request, token=self.token)

    async def post(self, path: str, body: Any = None) -> Any:
        return await api(self.request).post(NOTIFICATIONS + path, body, request=self.request, token=self.token)

    async def delete(self, path: str) -> Any:
        return await api(self.request).delete(NOTIFICATIONS + path, request=self.request, token=self.token)

    @property
    def base(self) -> str:
        return f"/verwaltung/{self.tenant}/webhooks"

    def page(self, template: str, context: Mapping[str, Any], status: int = 200) -> Response:
        page = {"session": self.session, "base": self.base, "stamp": stamp, **context}
        return render(self.request, f"console/operations/{template}", page, status=status, tenant=self.tenant)


async def staff(request: Request, tenant: str) -> Staff:
    check_tenant(tenant)
    session = await console_session(request, tenant, "staff")
    return Staff(request, tenant, session, service_token(session, settings_of(request)))


async def _endpoint(s: Staff, endpoint_id: UUID) -> dict[str, Any]:
    """One endpoint of the tenant (the API lists them; there are few)."""
    for e in await s.get("/webhooks"):
        if e["id"] == str(endpoint_id):
            found: dict[str, Any] = e
            return found
    raise HTTPException(404)


# -- the hub and the list --------------------------------------------------------------------------------------------


@router.get("/verwaltung/{tenant}/benachrichtigungen")
async def notifications(request: Request, tenant: str) -> Response:
    s = await staff(request, tenant)
    endpoints = await s.get("/webhooks")
    return s.page("notifications.html", {"endpoints": endpoints, "operator": "admin" in s.session.roles})


@router.get("/verwaltung/{tenant}/webhooks")
async def webhooks(request: Request, tenant: str, geloescht: str | None = None) -> Response:
    s = await staff(request, tenant)
    endpoints = await s.get("/webhooks")
    return s.page("webhooks.html", {"endpoints": endpoints, "deleted": geloescht == "1"})


# -- creating one ----------------------------------------------------------------------------------------------------


def _create_form(s: Staff, values: Mapping[str, Any], errors: FormErrors, status: int = 200) -> Response:
    context = {"values": values, "errors": errors, "choices": event_choices(lang_of(s.request))}
    return s.page("create.html", context, status=status)


@router.get("/verwaltung/{tenant}/webhooks/neu")
async def create_form(request: Request, tenant: str) -> Response:
    s = await staff(request, tenant)
    return _create_form(s, {"url": "", "event_types": [], "description": ""}, FormErrors())


@router.post("/verwaltung/{tenant}/webhooks/neu")
async def create(request: Request, tenant: str) -> Response:
    s = await staff(request, tenant)
    form = await checked_form(request)
    _ = i18n.gettext(lang_of(request))
    allowed = {v for v, _text in event_choices(lang_of(request))}
    values = {
        "url": str(form.get("url") or "").strip(),
        "event_types": [str(v) for v in form.getlist("event_types") if str(v) in allowed],
        "description": str(form.get("description") or "").strip(),
    }
    errors = FormErrors()
    if not values["url"]:
        errors.add("url", _("Bitte geben Sie die Adresse an."))
    elif len(values["url"]) > 2000:
        errors.add(
            "url",
            _("Diese Adresse kann civic nicht verwenden: {reasons}.").format(reasons=_("Bitte prüfen Sie die Angabe")),
        )
    if not values["event_types"]:
        errors.add("event_types", _("Bitte wählen Sie mindestens ein Ereignis."))
    if errors:
        return _create_form(s, values, errors, status=400)
    body = {
        "url": values["url"],
        "event_types": values["event_types"],
        "description": values["description"][:500] or None,
    }
    try:
        created = await s.post("/webhooks", body)
    except ApiProblem as problem:
        if problem.status != 422:
            raise
        reasons = [
            _(URL_REASONS.get(str(e.get("detail")), "Bitte prüfen Sie die Angabe"))
            for e in problem.errors
            if str(e.get("pointer", "")).startswith("/url")
        ] or [_("Bitte prüfen Sie die Angabe")]
        errors.add("url", _("Diese Adresse kann civic nicht verwenden: {reasons}.").format(reasons=", ".join(reasons)))
        return _create_form(s, values, errors, status=400)
    # The secret is on this answer only (no redirect: it must not sit in an address or a later page).
    return s.page("created.html", {"endpoint": created})


# -- one endpoint and its deliveries ---------------------------------------------------------------------------------


def delivery_state(d: Mapping[str, Any], lang: i18n.Language) -> str:
    _ = i18n.gettext(lang)
    state = d["state"]
    if state == "sent":
        return _("zugestellt")
    if state == "failed":
        return _("fehlgeschlagen, nächster Versuch {when}").format(when=stamp(d["next_attempt_at"]))
    if state == "given_up":
        return _("aufgegeben")
    if state == "sending":
        return _("wird gesendet")
    return _("wartet")


@router.get("/verwaltung/{tenant}/webhooks/{endpoint_id}")
async def endpoint(
    request: Request, tenant: str, endpoint_id: UUID, zeige: str | None = None, erneut: str | None = None
) -> Response:
    s = await staff(request, tenant)
    found, deliveries = await asyncio.gather(_endpoint(s, endpoint_id), s.get(f"/webhooks/{endpoint_id}/deliveries"))
    counts = Counter(d["state"] for d in deliveries)
    failures_only = zeige == "fehler"
    shown = [d for d in deliveries if d["state"] in ("failed", "given_up")] if failures_only else deliveries
    shown = sorted(shown, key=lambda d: d["created_at"], reverse=True)
    context = {
        "endpoint": found,
        "deliveries": shown,
        "counts": counts,
        "failures_only": failures_only,
        "resent": erneut,
        "state_of": lambda d: delivery_state(d, lang_of(request)),
    }
    return s.page("endpoint.html", context)


@router.post("/verwaltung/{tenant}/webhooks/{endpoint_id}/zustellungen/{delivery_id}/erneut")
async def resend(request: Request, tenant: str, endpoint_id: UUID, delivery_id: UUID) -> Response:
    s = await staff(request, tenant)
    await checked_form(request)
    try:
        await s.post(f"/deliveries/{delivery_id}/resend")
    except ApiProblem as problem:
        if problem.status != 409:
            raise
        return see_other(f"{s.base}/{endpoint_id}?erneut=abgeschaltet")
    return see_other(f"{s.base}/{endpoint_id}?erneut=ja")


@router.get("/verwaltung/{tenant}/webhooks/{endpoint_id}/loeschen")
async def delete_confirm(request: Request, tenant: str, endpoint_id: UUID) -> Response:
    s = await staff(request, tenant)
    return s.page("delete.html", {"endpoint": await _endpoint(s, endpoint_id)})


@router.post("/verwaltung/{tenant}/webhooks/{endpoint_id}/loeschen")
async def delete(request: Request, tenant: str, endpoint_id: UUID) -> Response:
    s = await staff(request, tenant)
    await checked_form(request)
    await s.delete(f"/webhooks/{endpoint_id}")
    return see_other(f"{s.base}?geloescht=1")


# -- dead letters of the bus (operators) -----------------------------------------------------------------------------


@dataclass
class Operator:
    request: Request
    session: StaffSession
    token: str

    def path(self, service: str, rest: str = "") -> str:
        if service not in SERVICES:
            raise HTTPException(404)
        return f"/api/{service}/admin/dead-letters{rest}"

    async def get(self, service: str, rest: str = "") -> Any:
        return await api(self.request).get(self.path(service, rest), request=self.request, token=self.token)

    async def post(self, service: str, rest: str) -> Any:
        return await api(self.request).post(self.path(service, rest), request=self.request, token=self.token)

    def page(self, template: str, context: Mapping[str, Any], status: int = 200) -> Response:
        page = {"session": self.session, "base": OPERATIONS, "stamp": stamp, **context}
        return render(self.request, f"console/operations/{template}", page, status=status, tenant=self.session.tenant)


def operator(request: Request) -> Operator:
    """The signed-in person, who must hold ``admin``; their tenant only decides the layout's links."""
    who = signed_in(request)
    if who is None:
        raise SignInNeeded(request.url.path, expired=had_session_cookie(request))
    if "admin" not in who.roles or not who.tenants:
        raise NoAccess(who)
    session = who.session(who.tenant or who.tenants[0])
    return Operator(request, session, operator_token(session, settings_of(request)))


RESULTS = {
    "erledigt": ("Verarbeitet: Der Fehler ist erledigt.", "success"),
    "wieder": ("Wieder fehlgeschlagen; der Fehler bleibt offen.", "danger"),
    "unverarbeitbar": ("Dieser Eintrag lässt sich so nicht verarbeiten. Sie können ihn verwerfen.", "danger"),
    "erledigt-schon": ("Dieser Fehler ist schon erledigt.", "info"),
    "verworfen": ("Verworfen.", "success"),
}


@router.get(OPERATIONS)
async def dead_letters(request: Request, ergebnis: str | None = None) -> Response:
    o = operator(request)

    async def of(service: str) -> tuple[str, list[dict[str, Any]] | None]:
        try:
            return service, await o.get(service)
        except (ApiUnavailable, ApiProblem):
            return service, None  # the page still shows the other services

    found = await asyncio.gather(*(of(name) for name in SERVICES))
    rows = [{**r, "service": name} for name, listed in found if listed for r in listed]
    rows.sort(key=lambda r: r["created_at"])
    down = [name for name, listed in found if listed is None]
    _ = i18n.gettext(lang_of(request))
    result = RESULTS.get(ergebnis or "")
    context = {"rows": rows, "down": down, "result": (_(result[0]), result[1]) if result else None}
    return o.page("dead_letters.html", context)


def _result_of(problem: ApiProblem) -> str:
    if problem.kind == "dead-letter-not-open":
        return "erledigt-schon"
    if problem.kind == "dead-letter-unretryable":
        return "unverarbeitbar"
    raise problem


@router.post(OPERATIONS + "/{service}/{dead_letter_id}/erneut")
async def retry(request: Request, service: str, dead_letter_id: int) -> Response:
    o = operator(request)
    await checked_form(request)
    try:
        answer = await o.post(service, f"/{dead_letter_id}/retry")
    except ApiProblem as problem:
        return see_other(f"{OPERATIONS}?ergebnis={_result_of(problem)}")
    return see_other(f"{OPERATIONS}?ergebnis={'erledigt' if answer['retried'] else 'wieder'}")


@router.get(OPERATIONS + "/{service}/{dead_letter_id}/verwerfen")
async def drop_confirm(request: Request, service: str, dead_letter_id: int) -> Response:
    o = operator(request)
    row = await o.get(service, f"/{dead_letter_id}")
    return o.page("drop.html", {"row": {**row, "service": service}})


@router.post(OPERATIONS + "/{service}/{dead_letter_id}/verwerfen")
async def drop(request: Request, service: str, dead_letter_id: int) -> Response:
    o = operator(request)
    await checked_form(request)
    try:
        await o.post(service, f"/{dead_letter_id}/drop")
    except ApiProblem as problem:
        return see_other(f"{OPERATIONS}?ergebnis={_result_of(problem)}")
    return see_other(f"{OPERATIONS}?ergebnis=verworfen")
