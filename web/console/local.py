"""The local sign-in for development and tests: name, tenant(s) and roles typed into a form, no password.

It exists only outside production: with CIVIC_PRODUCTION it answers 404 (GET and POST alike), so an
installation can never be entered through it. It offers the tenants of CIVIC_WEB_TENANTS (``make up``: the demo's)
and accepts any well-formed tenant name, so tests can use scratch tenants. Fields: ``tenant`` (one or several,
also as a comma list), ``roles`` (idem), ``name``; the form's CSRF field.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

from web import i18n
from web.console import session as sessions
from web.console.layout import render, safe_next
from web.pages.common import RESERVED, TENANT, lang_of, see_other, settings_of
from web.problems import FormErrors
from web.security import checked_form

router = APIRouter(include_in_schema=False)

i18n.english(
    {
        "Lokale Anmeldung": "Local sign-in",
        "Nur zum Ausprobieren und für Tests: Diese Anmeldung gibt es nicht, wenn civic im Produktionsbetrieb läuft. "
        "Dort melden Sie sich über den Zugang Ihrer Verwaltung an.": "Only for trying civic out and for tests: "
        "this sign-in does not exist when civic runs in production. There you sign in with your organisation's "
        "account.",
        "Ihr Name": "Your name",
        "So erscheinen Sie in der Verwaltung.": "How the console shows you.",
        "Mandanten": "Tenants",
        "Mandant": "Tenant",
        "Mit mehreren Mandanten wählen Sie nach der Anmeldung, für welchen Sie arbeiten.": "With several tenants "
        "you choose after signing in which one you work for.",
        "Anderer Mandant": "Other tenant",
        "Kurzname, z. B. kreis-beispiel": "Short name, e.g. kreis-beispiel",
        "Rollen": "Roles",
        "Mitarbeiterin/Mitarbeiter (alles des Mandanten)": "Staff (everything of the tenant)",
        "Einlass (nur die Einlassseite)": "Check-in (the door page only)",
        "Redaktion (nur Inhalte)": "Editor (content only)",
        "Betrieb (Fehler des Nachrichtenbusses, alle Mandanten)": "Operations (dead letters of the bus, all tenants)",
        "Anmelden": "Sign in",
        "Bitte geben Sie Ihren Namen ein.": "Please enter your name.",
        "Bitte wählen Sie mindestens einen Mandanten.": "Please choose at least one tenant.",
        "Bitte geben Sie einen gültigen Kurznamen ein (Kleinbuchstaben, Ziffern und Bindestriche).": "Please "
        "enter a valid short name (lower-case letters, digits and hyphens).",
        "Bitte wählen Sie mindestens eine Rolle.": "Please choose at least one role.",
    }
)

ROLE_TEXTS = (
    ("staff", "Mitarbeiterin/Mitarbeiter (alles des Mandanten)"),
    ("checkin", "Einlass (nur die Einlassseite)"),
    ("editor", "Redaktion (nur Inhalte)"),
    # Operators: only here, outside production; in production the OpenID role mapping may grant it.
    ("admin", "Betrieb (Fehler des Nachrichtenbusses, alle Mandanten)"),
)


def _refuse_in_production(request: Request) -> None:
    if settings_of(request).production:
        raise HTTPException(404)


def _values(form_values: list[str]) -> list[str]:
    out: list[str] = []
    for value in form_values:
        for part in re.split(r"[,\s]+", value):
            if part and part not in out:
                out.append(part)
    return out


def offered_tenants(request: Request) -> list[tuple[str, str]]:
    """The installation's tenants (CIVIC_WEB_TENANTS), by name."""
    return sorted(((slug, site.name) for slug, site in settings_of(request).tenants.items()), key=lambda t: t[1])


def _form(request: Request, errors: FormErrors | None = None, entered: dict[str, object] | None = None) -> Response:
    entered = entered or {}
    _ = i18n.gettext(lang_of(request))
    context = {
        "errors": errors,
        "tenants": offered_tenants(request),
        "roles": [(value, _(text)) for value, text in ROLE_TEXTS],
        "entered": {"name": "", "tenant": [], "other": "", "roles": [], "next": "", **entered},
    }
    return render(request, "console/local_sign_in.html", None, context, status=400 if errors else 200)


@router.get("/verwaltung/anmelden/lokal")
async def local_form(request: Request, next: str | None = None) -> Response:
    _refuse_in_production(request)
    return _form(request, entered={"next": safe_next(next) or ""})


@router.post("/verwaltung/anmelden/lokal")
async def local_sign_in(request: Request) -> Response:
    _refuse_in_production(request)
    form = await checked_form(request)
    _ = i18n.gettext(lang_of(request))
    name = str(form.get("name") or "").strip()[:100]
    chosen = _values([str(v) for v in form.getlist("tenant")])
    other = str(form.get("other") or "").strip().lower()
    if other:
        chosen += [t for t in _values([other]) if t not in chosen]
    roles = sessions.roles_of(_values([str(v) for v in form.getlist("roles")]))
    errors = FormErrors()
    if not name:
        errors.add("name", _("Bitte geben Sie Ihren Namen ein."))
    tenant_field = "tenant" if offered_tenants(request) else "other"
    if not chosen:
        errors.add(tenant_field, _("Bitte wählen Sie mindestens einen Mandanten."))
    elif any(len(t) > 63 or not TENANT.match(t) or t in RESERVED for t in chosen):
        errors.add(
            "other" if other else tenant_field,
            _("Bitte geben Sie einen gültigen Kurznamen ein (Kleinbuchstaben, Ziffern und Bindestriche)."),
        )
    if not roles:
        errors.add("roles", _("Bitte wählen Sie mindestens eine Rolle."))
    next_path = safe_next(str(form.get("next") or ""))
    if errors:
        entered: dict[str, object] = {
            "name": name,
            "tenant": chosen,
            "other": other,
            "roles": sorted(roles),
            "next": next_path or "",
        }
        return _form(request, errors, entered)
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "person"
    response = see_other("/")
    who = sessions.start(
        request,
        response,
        subject=f"dev:{slug}",
        name=name,
        tenants=tuple(chosen),
        roles=roles,
        via="local",
    )
    response.headers["location"] = landing(who, next_path)
    return response


def landing(who: sessions.SignedIn, next_path: str | None) -> str:
    """After signing in: back to the page asked for (when it is one of the person's tenants), else home."""
    if next_path:
        parts = next_path.split("/")
        if len(parts) > 2 and parts[2] in who.tenants:
            return next_path
    if who.tenant:
        return f"/verwaltung/{who.tenant}/"
    return "/verwaltung/mandant" + (f"?next={quote(next_path)}" if next_path else "")
