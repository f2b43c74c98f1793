"""Who is signed in to the console: the session cookie, the page dependency and the services' staff tokens.

The session is a small signed cookie (a JWT under a key derived from CIVIC_WEB_SECRET, HttpOnly, SameSite=Lax,
``__Host-`` prefixed and Secure behind https): the person's id and name, their tenants and roles, the tenant
they chose, and when it ends (CIVIC_WEB_SESSION_HOURS, checked here against the app's clock, not left to the
browser). It holds nothing from the provider except, when small, the ID token that RP-initiated logout names.

Pages ask ``await console_session(request, tenant, *roles)``: not signed in (or expired) raises ``SignInNeeded``,
shown as a redirect to the sign-in; another tenant or a missing role raises ``NoAccess``, shown as a 403 page
that names nothing of that tenant. The services keep authorising every call: pages call them with
``service_token(session, settings)``, a short-lived staff token for the chosen tenant and the person's roles.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cachetools import TTLCache
from starlette.requests import Request
from starlette.responses import Response

from shared.clock import Clock
from web.pages.common import check_tenant
from web.settings import WebSettings

#: The roles of a tenant's work; the services' tokens of ordinary pages carry only these.
TENANT_ROLES = ("staff", "checkin", "editor")
#: What the console knows: the tenant's roles and ``admin``, the operators' role (the dead letters of the bus,
#: web/console/operations.py). ``admin`` is granted by the local sign-in (outside production only) or by the
#: OpenID role mapping; it reaches the services only in the operator pages' own tokens (``operator_token``),
#: since the services let an admin do everything.
CONSOLE_ROLES = (*TENANT_ROLES, "admin")
SESSION_AUDIENCE = "civic-console"
#: An ID token longer than this is not kept for the logout hint (the cookie stays well below 4 KB).
MAX_ID_TOKEN_HINT = 1800


@dataclass(frozen=True)
class StaffSession:
    subject: str  # the person's stable id (OIDC ``sub``, or ``dev:<name>`` for the local sign-in)
    name: str  # display name
    tenants: tuple[str, ...]  # tenants the person may work for
    roles: frozenset[str]  # of CONSOLE_ROLES
    tenant: str  # the tenant currently chosen

    def may(self, *roles: str) -> bool:
        """True if the person holds one of ``roles``; ``staff`` may everything of its tenant, but not what only
        operators may (``admin``). Without roles: whether the person holds any role at all."""
        if not roles:
            return bool(self.roles)
        if "staff" in self.roles and set(roles) - {"admin"}:
            return True
        return bool(self.roles & set(roles))

    @property
    def several_tenants(self) -> bool:
        return len(self.tenants) > 1


@dataclass(frozen=True)
class SignedIn:
    """What the cookie holds (``StaffSession`` for the chosen tenant, plus what only sign-in and logout need)."""

    subject: str
    name: str
    tenants: tuple[str, ...]
    roles: frozenset[str]
    tenant: str | None  # None until a person with several tenants has chosen one
    expires_at: datetime
    via: str = "oidc"  # "oidc" or "local"
    id_token: str | None = None  # the logout hint, when small

    def session(self, tenant: str) -> StaffSession:
        return StaffSession(self.subject, self.name, self.tenants, self.roles, tenant)


class SignInNeeded(Exception):
    """Not signed in, or the sign-in has ended: the page redirects to the sign-in and comes back to ``next``."""

    def __init__(self, next_path: str, expired: bool = False) -> None:
        super().__init__(next_path)
        self.next_path = next_path
        self.expired = expired


class NoAccess(Exception):
    """Signed in, but not for this tenant or without the role: a 403 page."""

    def __init__(self, signed_in: SignedIn) -> None:
        super().__init__(signed_in.subject)
        self.signed_in = signed_in


def cookie_name(settings: WebSettings) -> str:
    return "__Host-civic_console" if settings.cookie_secure else "civic_console"


def _key(settings: WebSettings, purpose: str) -> bytes:
    # One secret (CIVIC_WEB_SECRET), one key per use: a CSRF token can never pass as a session, and back.
    return hmac.new(settings.secret.encode(), f"console:{purpose}".encode(), hashlib.sha256).digest()


def roles_of(values: object) -> frozenset[str]:
    """The console roles among ``values`` (a list, or a comma/space separated string); others are dropped."""
    if isinstance(values, str):
        values = values.replace(",", " ").split()
    if not isinstance(values, list | tuple | set | frozenset):
        return frozenset()
    return frozenset(str(v).strip() for v in values if str(v).strip() in CONSOLE_ROLES)


def encode(settings: WebSettings, signed_in: SignedIn, now: datetime) -> str:
    claims: dict[str, Any] = {
        "aud": SESSION_AUDIENCE,
        "sub": signed_in.subject,
        "name": signed_in.name,
        "ten": list(signed_in.tenants),
        "rol": sorted(signed_in.roles),
        "iat": int(now.timestamp()),
        "exp": int(signed_in.expires_at.timestamp()),
        "via": signed_in.via,
    }
    if signed_in.tenant:
        claims["cur"] = signed_in.tenant
    if signed_in.id_token and len(signed_in.id_token) <= MAX_ID_TOKEN_HINT:
        claims["idt"] = signed_in.id_token
    return jwt.encode(claims, _key(settings, "session"), algorithm="HS256")


def decode(settings: WebSettings, value: str, now: datetime) -> SignedIn | None:
    """The cookie's sign-in, or None when it is missing, forged or ended (``exp`` read against ``now``)."""
    try:
        claims = jwt.decode(
            value,
            _key(settings, "session"),
            algorithms=["HS256"],
            audience=SESSION_AUDIENCE,
            # The expiry is checked below against the app's clock (the services' clock in tests).
            options={"require": ["exp", "iat", "sub", "aud"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError:
        return None
    expires = datetime.fromtimestamp(float(claims["exp"]), UTC)
    if expires <= now:
        return None
    tenants = tuple(t for t in claims.get("ten") or [] if isinstance(t, str))
    current = claims.get("cur")
    return SignedIn(
        subject=str(claims["sub"]),
        name=str(claims.get("name") or claims["sub"]),
        tenants=tenants,
        roles=roles_of(claims.get("rol") or []),
        tenant=current if isinstance(current, str) and current in tenants else None,
        expires_at=expires,
        via=str(claims.get("via") or "oidc"),
        id_token=claims.get("idt") if isinstance(claims.get("idt"), str) else None,
    )


def now_of(request: Request) -> datetime:
    clock: Clock = request.app.state.clock
    return clock.now()


def settings_of(request: Request) -> WebSettings:
    s: WebSettings = request.app.state.web_settings
    return s


def signed_in(request: Request) -> SignedIn | None:
    """The sign-in of this request's cookie (None when there is none, or it is forged or ended)."""
    if hasattr(request.state, "console_signed_in"):
        cached: SignedIn | None = request.state.console_signed_in
        return cached
    settings = settings_of(request)
    value = request.cookies.get(cookie_name(settings))
    found = decode(settings, value, now_of(request)) if value and len(value) < 4096 else None
    request.state.console_signed_in = found
    return found


def had_session_cookie(request: Request) -> bool:
    return cookie_name(settings_of(request)) in request.cookies


def start(
    request: Request,
    response: Response,
    *,
    subject: str,
    name: str,
    tenants: tuple[str, ...],
    roles: frozenset[str],
    via: str,
    id_token: str | None = None,
) -> SignedIn:
    """Sign the person in: the cookie on ``response``; one tenant is chosen at once, several wait for a choice."""
    settings = settings_of(request)
    now = now_of(request)
    who = SignedIn(
        subject=subject,
        name=name,
        tenants=tenants,
        roles=roles,
        tenant=tenants[0] if len(tenants) == 1 else None,
        expires_at=now + timedelta(hours=settings.session_hours),
        via=via,
        id_token=id_token,
    )
    write(request, response, who)
    return who


def write(request: Request, response: Response, who: SignedIn) -> None:
    settings = settings_of(request)
    now = now_of(request)
    response.set_cookie(
        cookie_name(settings),
        encode(settings, who, now),
        max_age=max(1, int((who.expires_at - now).total_seconds())),
        httponly=True,
        secure=bool(settings.cookie_secure),
        samesite="lax",
        path="/",
    )


def choose_tenant(request: Request, response: Response, who: SignedIn, tenant: str) -> SignedIn:
    """Remember ``tenant`` (one of the person's) as the chosen one; the expiry stays as it was."""
    if tenant not in who.tenants:
        raise NoAccess(who)
    chosen = replace(who, tenant=tenant)
    write(request, response, chosen)
    return chosen


def end(request: Request, response: Response) -> None:
    settings = settings_of(request)
    response.delete_cookie(cookie_name(settings), path="/", secure=bool(settings.cookie_secure), httponly=True)


async def console_session(request: Request, tenant: str, *roles: str) -> StaffSession:
    """The signed-in person's session for ``tenant`` (the page's path parameter).

    Raises ``SignInNeeded`` (not signed in or expired: a redirect to the sign-in, back here after) or
    ``NoAccess`` (another tenant, or none of ``roles``: a 403 page). Naming the tenant in the address is the
    explicit choice: a person with several tenants works for the one the page names.
    """
    check_tenant(tenant)
    who = signed_in(request)
    if who is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInNeeded(target, expired=had_session_cookie(request))
    if tenant not in who.tenants:
        raise NoAccess(who)
    session = who.session(tenant)
    if not session.may(*roles):
        raise NoAccess(who)
    return session


# -- tokens for the services -------------------------------------------------------------------------------

_tokens: TTLCache[tuple[str, str, tuple[str, ...], str], str] = TTLCache(maxsize=4096, ttl=60)
_tokens_lock = threading.Lock()


def service_token(session: StaffSession, settings: WebSettings) -> str:
    """A staff token for the services (tenant = the chosen one, the person's roles, ``sub`` = their id).

    Lives CIVIC_WEB_TOKEN_MINUTES (5); the same one is reused for a minute at most, so a page's several API
    calls do not each sign one. The services verify it as any staff token (shared/http/auth.py).
    """
    return _token(session, settings, tuple(sorted(r for r in session.roles if r in TENANT_ROLES)))


def operator_token(session: StaffSession, settings: WebSettings) -> str:
    """A token with only the ``admin`` role, for the operator pages (the person must hold ``admin``)."""
    if "admin" not in session.roles:
        raise RuntimeError("an operator token needs the admin role (the page checks it first)")
    return _token(session, settings, ("admin",))


def _token(session: StaffSession, settings: WebSettings, roles: tuple[str, ...]) -> str:
    if settings.production and settings.token_key == _dev_key():
        raise RuntimeError("CIVIC_WEB_TOKEN_KEY must be set in production mode")
    signer = hashlib.sha256(f"{settings.token_algorithm}:{settings.token_key}".encode()).hexdigest()[:16]
    key = (session.subject, session.tenant, roles, signer)
    with _tokens_lock:
        token = _tokens.get(key)
    if token is not None:
        return token
    now = datetime.now(UTC)  # the services check tokens against the real time
    claims = {
        "sub": session.subject,
        "tenant": session.tenant,
        "roles": list(roles),
        "iat": now,
        "exp": now + timedelta(minutes=settings.token_minutes),
        "aud": "civic",
    }
    token = jwt.encode(claims, settings.token_key, algorithm=settings.token_algorithm)
    if settings.token_minutes > 2:  # reuse only a token that still has most of its life ahead
        with _tokens_lock:
            _tokens[key] = token
    return token


def _dev_key() -> str:
    from shared.settings import DEV_JWT_SECRET

    return DEV_JWT_SECRET
