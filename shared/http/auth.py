"""Staff authentication: a bearer JWT carrying the tenant and roles, verified with a configured key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import jwt
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.http.problems import Problem
from shared.settings import Settings, get_settings

ROLES = ("staff", "admin", "checkin", "editor")


@dataclass(frozen=True)
class Principal:
    subject: str
    tenant: str
    roles: frozenset[str]

    def has(self, *roles: str) -> bool:
        return bool(self.roles & set(roles)) or "admin" in self.roles


def mint_token(
    *,
    tenant: str,
    roles: list[str],
    subject: str = "dev",
    settings: Settings | None = None,
    ttl: timedelta = timedelta(hours=12),
) -> str:
    s = settings or get_settings()
    now = datetime.now(UTC)
    claims = {"sub": subject, "tenant": tenant, "roles": roles, "iat": now, "exp": now + ttl, "aud": "civic"}
    return jwt.encode(claims, s.jwt_secret, algorithm=s.jwt_algorithm)


def verify_token(token: str, settings: Settings | None = None) -> Principal:
    s = settings or get_settings()
    key = s.jwt_public_key or s.jwt_secret
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[s.jwt_algorithm],
            audience="civic",
            options={"require": ["exp", "iat", "sub", "aud"]},
        )
        _within_lifetime(claims, s.jwt_max_lifetime_hours)
    except jwt.PyJWTError as exc:
        raise Problem(
            401,
            "Unauthorized",
            type_="invalid-token",
            detail=str(exc),
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from None
    tenant = claims.get("tenant")
    roles = claims.get("roles") or []
    if not isinstance(tenant, str) or not tenant or not isinstance(roles, list):
        raise Problem(401, "Unauthorized", type_="invalid-token", detail="token lacks tenant or roles")
    return Principal(str(claims["sub"]), tenant, frozenset(str(r) for r in roles))


def _within_lifetime(claims: dict[str, object], max_hours: float) -> None:
    """A token may live ``CIVIC_JWT_MAX_LIFETIME_HOURS`` at most, from its issue and from now: a leaked
    long-lived token would otherwise stay good for years."""
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float) or not isinstance(iat, int | float):
        raise jwt.InvalidTokenError("exp and iat must be numbers")
    limit = max_hours * 3600
    if exp - iat > limit or exp - datetime.now(UTC).timestamp() > limit:
        raise jwt.InvalidTokenError(f"the token lives longer than the allowed {max_hours:g} hours")


#: Only documents the scheme (``securitySchemes``, and ``security`` on each staff operation, so ``/docs`` offers a
#: field for the token); ``current_principal`` reads the header itself and answers its own problem documents.
bearer = HTTPBearer(auto_error=False, scheme_name="staffToken", bearerFormat="JWT")


async def current_principal(
    request: Request, _documented: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None
) -> Principal:
    # async although it awaits nothing: FastAPI would run a plain function in a worker thread per request.
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Problem(
            401,
            "Unauthorized",
            type_="missing-token",
            detail="a staff bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return verify_token(token.strip())


def require(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    """Dependency: a principal holding one of ``roles`` (admins hold all).

    Use as ``Annotated[Principal, Depends(require("checkin"))]``.
    """

    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        return check_roles(principal, roles)

    # Read by shared/http/guard.py: the token of such a route is checked before its body.
    dependency.civic_roles = roles  # type: ignore[attr-defined]
    return dependency


def check_roles(principal: Principal, roles: tuple[str, ...]) -> Principal:
    if not principal.has(*roles):
        raise Problem(403, "Forbidden", type_="forbidden", detail=f"needs one of the roles {list(roles)}")
    return principal


Staff = Annotated[Principal, Depends(require("staff"))]
CheckIn = Annotated[Principal, Depends(require("checkin", "staff"))]
