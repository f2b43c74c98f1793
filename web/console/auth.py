"""Signing in to the console with the installation's OpenID Connect provider (Authlib), and signing out.

- ``GET /verwaltung/anmelden``: starts the authorization code flow with PKCE (S256) and a fresh ``state`` and
  ``nonce``, kept (with the PKCE verifier) in a short-lived signed cookie, and sends the person to the
  provider's authorization endpoint (found by discovery from CIVIC_WEB_OIDC_ISSUER). Without a provider: the
  local sign-in outside production, a page saying so in it.
- ``GET /verwaltung/anmelden/antwort``: the provider's answer. The ``state`` must be one this browser started
  (else nothing is exchanged); the code is exchanged with the verifier; the ID token is verified (signature by
  the provider's JWKS, issuer, audience, expiry, nonce) before its claims name the person's tenants and roles
  (CIVIC_WEB_OIDC_TENANT_CLAIM, _ROLES_CLAIM and the optional maps). A code the provider already gave out once
  is refused by the provider; the flow's cookie entry is used up as well.
- ``POST /verwaltung/abmelden``: ends the session, and at the provider where it offers an
  ``end_session_endpoint`` (RP-initiated logout), coming back to ``/verwaltung/abgemeldet``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import warnings
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
import jwt
from fastapi import APIRouter, Request
from joserfc.errors import JoseError
from starlette.responses import RedirectResponse, Response

from web import i18n
from web.console import session as sessions
from web.console.layout import render, safe_next
from web.console.local import landing
from web.pages.common import RESERVED, TENANT, lang_of, see_other, settings_of
from web.security import checked_form
from web.settings import WebSettings

with warnings.catch_warnings():
    # Authlib announces on import that it will move to the httpx2 package; nothing to act on in this version
    # (its own module sets the warning to "always", so the filter goes in after it).
    from authlib.deprecate import AuthlibDeprecationWarning

    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.starlette_client import OAuth, OAuthError, StarletteOAuth2App

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

#: How long a started sign-in may take at the provider, and how many may be open at once (browser tabs).
FLOW_MINUTES = 10
FLOWS_KEPT = 3

i18n.english(
    {
        "Ihre Anmeldung ist abgelaufen": "Your sign-in has expired",
        "Bitte melden Sie sich noch einmal an.": "Please sign in again.",
        "Erneut anmelden": "Sign in again",
        "Die Anmeldung ist nicht eingerichtet": "Signing in has not been set up",
        "Für die Verwaltung ist noch kein Anmeldedienst eingerichtet. Bitte wenden Sie sich an den Betrieb.": "No "
        "sign-in service has been set up for the console. Please contact the operators.",
        "Sie sind abgemeldet": "You have signed out",
        "Ihre Anmeldung in der Verwaltung ist beendet.": "Your console session has ended.",
        "Wieder anmelden": "Sign in again",
        "Die Anmeldung hat nicht geklappt": "Signing in did not work",
        "Die Anmeldung war zu lange offen oder wurde in einem anderen Browser begonnen. Bitte melden Sie sich "
        "noch einmal an.": "The sign-in was open for too long or was started in another browser. Please sign in again.",
        "Der Anmeldedienst hat die Anmeldung nicht bestätigt. Bitte melden Sie sich noch einmal an.": "The sign-in "
        "service did not confirm the sign-in. Please sign in again.",
        "Die Anmeldung wurde beim Anmeldedienst abgebrochen.": "The sign-in was cancelled at the sign-in service.",
        "Der Anmeldedienst ist gerade nicht erreichbar. Bitte versuchen Sie es in einigen Minuten noch einmal.": "The "
        "sign-in service is not available right now. Please try again in a few minutes.",
        "Kein Zugang zur Verwaltung": "No access to the console",
        "Ihr Zugang ist angemeldet, aber keinem Mandanten oder keiner Rolle der Verwaltung zugeordnet. Bitte wenden "
        "Sie sich an die Stelle, die Ihre Zugänge verwaltet.": "Your account signed in, but it has no tenant or no "
        "console role. Please ask whoever manages your access.",
    }
)


class SignInFailed(Exception):
    """The provider's answer cannot sign anybody in (wrong state, refused code, a token that does not verify)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message = message


# -- the provider ----------------------------------------------------------------------------------------------


def _issuer(settings: WebSettings) -> str:
    assert settings.oidc_issuer
    return settings.oidc_issuer.rstrip("/")


def provider(request: Request) -> StarletteOAuth2App:
    """The app's OpenID Connect client: discovery and JWKS are fetched on first use and kept (the JWKS is
    fetched again when a token names a key it does not know, as after a key rotation)."""
    client: StarletteOAuth2App | None = getattr(request.app.state, "oidc_client", None)
    if client is None:
        settings = settings_of(request)
        oauth = OAuth()
        client = oauth.register(
            name="civic",
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            server_metadata_url=_issuer(settings) + "/.well-known/openid-configuration",
            client_kwargs={
                "scope": settings.oidc_scopes,
                "code_challenge_method": "S256",
                "timeout": settings.api_timeout_seconds,
            },
        )
        request.app.state.oidc_client = client
    return client


async def metadata(request: Request) -> dict[str, Any]:
    """The provider's discovery document, whose ``issuer`` must be the configured one (no mix-up)."""
    client = provider(request)
    found: dict[str, Any] = await client.load_server_metadata()
    expected = _issuer(settings_of(request))
    if str(found.get("issuer", "")).rstrip("/") != expected:
        client.server_metadata.pop("_loaded_at", None)
        raise SignInFailed("issuer", f"the provider names the issuer {found.get('issuer')!r}, not {expected!r}")
    if found.get("token_endpoint_auth_methods_supported") and settings_of(request).oidc_client_secret:
        methods = found["token_endpoint_auth_methods_supported"]
        if "client_secret_basic" not in methods and "client_secret_post" in methods:
            client.client_kwargs["token_endpoint_auth_method"] = "client_secret_post"
    return found


# -- the flow's cookie: state, nonce and PKCE verifier of the sign-ins this browser started -----------------------


def _flow_cookie(settings: WebSettings) -> str:
    return "__Host-civic_console_login" if settings.cookie_secure else "civic_console_login"


def _flow_key(settings: WebSettings) -> bytes:
    return hmac.new(settings.secret.encode(), b"console:login", hashlib.sha256).digest()


def _flows(request: Request) -> list[dict[str, str]]:
    settings = settings_of(request)
    value = request.cookies.get(_flow_cookie(settings))
    if not value or len(value) > 4096:
        return []
    try:
        claims = jwt.decode(value, _flow_key(settings), algorithms=["HS256"], audience="civic-console-login")
    except jwt.PyJWTError:
        return []
    flows = claims.get("flows")
    return [f for f in flows if isinstance(f, dict)] if isinstance(flows, list) else []


def _write_flows(request: Request, response: Response, flows: list[dict[str, str]]) -> None:
    settings = settings_of(request)
    name = _flow_cookie(settings)
    if not flows:
        response.delete_cookie(name, path="/", secure=bool(settings.cookie_secure), httponly=True)
        return
    now = sessions.now_of(request)
    claims = {"aud": "civic-console-login", "exp": now + timedelta(minutes=FLOW_MINUTES), "flows": flows}
    response.set_cookie(
        name,
        jwt.encode(claims, _flow_key(settings), algorithm="HS256"),
        max_age=FLOW_MINUTES * 60,
        httponly=True,
        secure=bool(settings.cookie_secure),
        # Lax: the provider's redirect back is a top-level GET, which brings it.
        samesite="lax",
        path="/",
    )


async def start(request: Request, next_path: str | None) -> Response:
    settings = settings_of(request)
    try:
        await metadata(request)
        found = await provider(request).create_authorization_url(settings.oidc_redirect)
    except (httpx.HTTPError, ValueError, RuntimeError) as exc:
        log.warning("console sign-in: the provider's discovery failed: %s", exc)
        return _failed_page(request, "unavailable", status=503)
    except SignInFailed as exc:
        log.error("console sign-in: %s", exc.message)
        return _failed_page(request, "unavailable", status=503)
    flow = {"s": found["state"], "n": found["nonce"], "v": found["code_verifier"], "x": next_path or ""}
    response = RedirectResponse(found["url"], status_code=303)
    _write_flows(request, response, [*_flows(request), flow][-FLOWS_KEPT:])
    return response


async def finish(request: Request) -> Response:
    """The provider's answer: sign the person in, or a page saying why not (no session either way)."""
    params = request.query_params
    state = params.get("state") or ""
    flows = _flows(request)
    flow = next((f for f in flows if secrets.compare_digest(f.get("s", ""), state)), None) if state else None
    rest = [f for f in flows if f is not flow]
    if error := params.get("error"):
        # An error answer signs nobody in, whatever its state; some providers send it without one.
        log.info("console sign-in: the provider answered %s", error[:100])
        return _failed_page(request, "cancelled", flows=rest)
    if flow is None:
        log.info("console sign-in refused: unknown state")
        return _failed_page(request, "state", flows=rest)
    code = params.get("code")
    if not code:
        return _failed_page(request, "refused", flows=rest)
    settings = settings_of(request)
    try:
        claims = await _verified_claims(request, code, flow)
    except SignInFailed as exc:
        log.warning("console sign-in refused: %s (%s)", exc.reason, exc.message)
        return _failed_page(request, "refused", flows=rest)
    except (httpx.HTTPError, RuntimeError) as exc:
        log.warning("console sign-in: the provider could not be asked: %s", exc)
        return _failed_page(request, "unavailable", flows=rest, status=503)
    tenants = tenants_of(claims, settings)
    roles = roles_from(claims, settings)
    if not tenants or not roles:
        log.info("console sign-in of %s: no tenant or no role in the claims", claims.get("sub"))
        return _failed_page(request, "no-access", flows=rest, status=403)
    response = see_other("/")
    who = sessions.start(
        request,
        response,
        subject=str(claims["sub"]),
        name=display_name(claims),
        tenants=tenants,
        roles=roles,
        via="oidc",
        id_token=claims.get("_id_token"),
    )
    response.headers["location"] = landing(who, safe_next(flow.get("x")))
    _write_flows(request, response, rest)
    return response


async def _verified_claims(request: Request, code: str, flow: dict[str, str]) -> dict[str, Any]:
    settings = settings_of(request)
    client = provider(request)
    found = await metadata(request)
    try:
        token = await client.fetch_access_token(
            redirect_uri=settings.oidc_redirect, code=code, code_verifier=flow.get("v", "")
        )
    except OAuthError as exc:
        raise SignInFailed("code", f"the token endpoint refused the code: {exc.error}") from None
    if "id_token" not in token:
        raise SignInFailed("id-token", "the token endpoint sent no ID token")
    options: dict[str, Any] = {
        "iss": {"essential": True, "value": found["issuer"]},
        "aud": {"essential": True, "value": settings.oidc_client_id},
    }
    try:
        verified = await client.parse_id_token(
            token, nonce=flow.get("n", ""), claims_options=options, leeway=settings.oidc_leeway_seconds
        )
    except (JoseError, ValueError) as exc:
        raise SignInFailed("id-token", f"the ID token does not verify: {exc}") from None
    if verified is None or not verified.get("nonce"):
        raise SignInFailed("id-token", "the ID token carries no nonce")
    claims: dict[str, Any] = dict(verified)
    needs = [settings.oidc_tenant_claim, settings.oidc_roles_claim]
    if any(claim_value(claims, name) is None for name in needs) and found.get("userinfo_endpoint"):
        # Some providers put groups and roles only into the userinfo answer (Keycloak without a mapper).
        response = await client.get(found["userinfo_endpoint"], token=token)
        if response.status_code == 200:
            info = response.json()
            if isinstance(info, dict) and info.get("sub") == claims["sub"]:
                claims = {**info, **claims}
    id_token = token.get("id_token")
    if isinstance(id_token, str) and len(id_token) <= sessions.MAX_ID_TOKEN_HINT:
        claims["_id_token"] = id_token
    return claims


# -- the claim mapping --------------------------------------------------------------------------------------------


def claim_value(claims: dict[str, Any], name: str) -> Any:
    """The claim ``name``; when there is none of that name and it has dots, the path (``realm_access.roles``).
    Names with dots of their own (ADFS's ``http://schemas.microsoft.com/.../role``) are found as they are."""
    if name in claims:
        return claims[name]
    node: Any = claims
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [str(v) for v in value if isinstance(v, str | int)]
    return []


def tenants_of(claims: dict[str, Any], settings: WebSettings) -> tuple[str, ...]:
    """The person's tenants: the tenant claim (one or a list), through CIVIC_WEB_OIDC_TENANT_MAP when it is
    set (then only values it names count), kept when they are well-formed tenant names."""
    out: list[str] = []
    for value in _strings(claim_value(claims, settings.oidc_tenant_claim)):
        tenant = settings.oidc_tenant_map.get(value) if settings.oidc_tenant_map else value
        if tenant and len(tenant) <= 63 and TENANT.match(tenant) and tenant not in RESERVED and tenant not in out:
            out.append(tenant)
    return tuple(out)


def roles_from(claims: dict[str, Any], settings: WebSettings) -> frozenset[str]:
    """The person's console roles: the roles claim, through CIVIC_WEB_OIDC_ROLE_MAP when it is set (then only
    names it maps count; a group path such as ``/civic/staff`` is a name too), else the names as they are."""
    values = _strings(claim_value(claims, settings.oidc_roles_claim))
    if isinstance(claim_value(claims, settings.oidc_roles_claim), str):
        values = re.split(r"[\s,]+", values[0]) if values else []
    if settings.oidc_role_map:
        values = [settings.oidc_role_map[v] for v in values if v in settings.oidc_role_map]
    return sessions.roles_of(values)


def display_name(claims: dict[str, Any]) -> str:
    for name in ("name", "preferred_username", "email"):
        value = claims.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()[:100]
    return str(claims["sub"])[:100]


# -- logout -------------------------------------------------------------------------------------------------------


async def logout_address(request: Request, who: sessions.SignedIn) -> str | None:
    """The provider's end-session address (RP-initiated logout), or None where it offers none."""
    settings = settings_of(request)
    try:
        found = await metadata(request)
        if not found.get("end_session_endpoint"):
            return None
        back = settings.public_base_url.rstrip("/") + "/verwaltung/abgemeldet"
        extra = {"client_id": settings.oidc_client_id, "ui_locales": lang_of(request)}
        made = await provider(request).create_logout_url(
            post_logout_redirect_uri=back, id_token_hint=who.id_token, **extra
        )
    except (httpx.HTTPError, ValueError, RuntimeError, SignInFailed) as exc:
        log.warning("console sign-out: no logout at the provider: %s", exc)
        return None
    return str(made["url"])


# -- pages ------------------------------------------------------------------------------------------------------


def _failed_page(
    request: Request, reason: str, *, flows: list[dict[str, str]] | None = None, status: int = 400
) -> Response:
    _ = i18n.gettext(lang_of(request))
    messages = {
        "state": "Die Anmeldung war zu lange offen oder wurde in einem anderen Browser begonnen. Bitte melden Sie "
        "sich noch einmal an.",
        "refused": "Der Anmeldedienst hat die Anmeldung nicht bestätigt. Bitte melden Sie sich noch einmal an.",
        "cancelled": "Die Anmeldung wurde beim Anmeldedienst abgebrochen.",
        "unavailable": "Der Anmeldedienst ist gerade nicht erreichbar. Bitte versuchen Sie es in einigen Minuten "
        "noch einmal.",
        "no-access": "Ihr Zugang ist angemeldet, aber keinem Mandanten oder keiner Rolle der Verwaltung zugeordnet. "
        "Bitte wenden Sie sich an die Stelle, die Ihre Zugänge verwaltet.",
    }
    context = {
        "heading": _("Kein Zugang zur Verwaltung" if reason == "no-access" else "Die Anmeldung hat nicht geklappt"),
        "message": _(messages[reason]),
        "back_href": "/verwaltung/anmelden",
        "back_text": _("Erneut anmelden"),
    }
    response = render(request, "console/message.html", None, context, status=status)
    if flows is not None:
        _write_flows(request, response, flows)
    return response


@router.get("/verwaltung/anmelden")
async def sign_in(request: Request, next: str | None = None, abgelaufen: str | None = None) -> Response:
    settings = settings_of(request)
    target = safe_next(next)
    again = "/verwaltung/anmelden" + (f"?next={quote(target)}" if target else "")
    _ = i18n.gettext(lang_of(request))
    if abgelaufen:
        context = {
            "heading": _("Ihre Anmeldung ist abgelaufen"),
            "message": _("Bitte melden Sie sich noch einmal an."),
            "back_href": again,
            "back_text": _("Erneut anmelden"),
        }
        return render(request, "console/message.html", None, context)
    if settings.oidc_issuer:
        return await start(request, target)
    if not settings.production:
        return RedirectResponse(
            "/verwaltung/anmelden/lokal" + (f"?next={quote(target)}" if target else ""), status_code=303
        )
    context = {
        "heading": _("Die Anmeldung ist nicht eingerichtet"),
        "message": _(
            "Für die Verwaltung ist noch kein Anmeldedienst eingerichtet. Bitte wenden Sie sich an den Betrieb."
        ),
        "back_href": "/",
        "back_text": _("Zur Startseite"),
    }
    return render(request, "console/message.html", None, context, status=503)


@router.get("/verwaltung/anmelden/antwort")
async def callback(request: Request) -> Response:
    if not settings_of(request).oidc_issuer:
        return _failed_page(request, "refused")
    return await finish(request)


@router.post("/verwaltung/abmelden")
async def sign_out(request: Request) -> Response:
    await checked_form(request)
    settings = settings_of(request)
    who = sessions.signed_in(request)
    target = "/verwaltung/abgemeldet"
    if who is not None and who.via == "oidc" and settings.oidc_issuer:
        target = await logout_address(request, who) or target
    response = see_other(target)
    sessions.end(request, response)
    return response


@router.get("/verwaltung/abgemeldet")
async def signed_out(request: Request) -> Response:
    _ = i18n.gettext(lang_of(request))
    context = {
        "heading": _("Sie sind abgemeldet"),
        "message": _("Ihre Anmeldung in der Verwaltung ist beendet."),
        "back_href": "/verwaltung/anmelden",
        "back_text": _("Wieder anmelden"),
    }
    return render(request, "console/message.html", None, context)
