"""The console's session cookie, role checks, claim mapping and the services' tokens (no servers needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI, Request, Response

from shared.http.auth import verify_token
from shared.settings import Settings
from web.client import Api
from web.console import auth
from web.console.layout import safe_next
from web.console.local import landing
from web.console.session import (
    SignedIn,
    StaffSession,
    cookie_name,
    decode,
    encode,
    operator_token,
    roles_of,
    service_token,
)
from web.settings import WebSettings

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def signed_in(**changes: object) -> SignedIn:
    values: dict[str, object] = {
        "subject": "sub-1",
        "name": "Kim",
        "tenants": ("kreis-a", "stadt-b"),
        "roles": frozenset({"checkin"}),
        "tenant": "stadt-b",
        "expires_at": NOW + timedelta(hours=8),
    }
    values.update(changes)
    return SignedIn(**values)  # type: ignore[arg-type]


def test_session_round_trip_and_expiry() -> None:
    s = WebSettings()
    value = encode(s, signed_in(id_token="a.b.c"), NOW)
    back = decode(s, value, NOW + timedelta(hours=7, minutes=59))
    assert back is not None and back.tenants == ("kreis-a", "stadt-b") and back.tenant == "stadt-b"
    assert back.roles == {"checkin"} and back.id_token == "a.b.c" and back.name == "Kim"
    assert decode(s, value, NOW + timedelta(hours=8)) is None
    # Another key, a changed character, or a CSRF-style token are no sessions.
    assert decode(WebSettings(secret="another-secret-of-this-installation-012345"), value, NOW) is None
    assert decode(s, value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1], NOW) is None
    assert decode(s, "not-a-token", NOW) is None


def test_a_long_id_token_is_not_kept() -> None:
    s = WebSettings()
    back = decode(s, encode(s, signed_in(id_token="x" * 5000), NOW), NOW)
    assert back is not None and back.id_token is None


def test_roles() -> None:
    assert roles_of("staff, checkin admin owner") == {"staff", "checkin", "admin"}
    assert roles_of(["editor", "owner"]) == {"editor"}
    assert roles_of(None) == frozenset()
    staff = StaffSession("s", "S", ("t",), frozenset({"staff"}), "t")
    door = StaffSession("d", "D", ("t",), frozenset({"checkin"}), "t")
    assert staff.may("editor") and staff.may("checkin") and staff.may()
    assert door.may("checkin") and not door.may("staff") and not door.may("editor")
    assert not StaffSession("n", "N", ("t",), frozenset(), "t").may()
    # Operators' pages: staff may everything of its tenant, but not what only admins may.
    operator = StaffSession("o", "O", ("t",), frozenset({"admin"}), "t")
    assert not staff.may("admin") and operator.may("admin") and not operator.may("staff")
    assert staff.may("admin", "staff")


def test_admin_reaches_the_services_only_in_operator_tokens() -> None:
    session = StaffSession("sub-3", "Ops", ("kreis-a",), frozenset({"staff", "admin"}), "kreis-a")
    assert verify_token(service_token(session, WebSettings()), Settings()).roles == {"staff"}
    assert verify_token(operator_token(session, WebSettings()), Settings()).roles == {"admin"}
    with pytest.raises(RuntimeError):
        operator_token(StaffSession("s", "S", ("t",), frozenset({"staff"}), "t"), WebSettings())


def test_claim_mapping() -> None:
    s = WebSettings(oidc_tenant_claim="tenant", oidc_roles_claim="realm_access.roles")
    claims = {"sub": "x", "tenant": ["kreis-a", "Not A Tenant", "api", "kreis-a"], "realm_access": {"roles": ["staff"]}}
    assert auth.tenants_of(claims, s) == ("kreis-a",)
    assert auth.roles_from(claims, s) == {"staff"}
    # ADFS: the claim's name is a URI with dots of its own; the role is one string.
    adfs = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
    s = WebSettings(oidc_roles_claim=adfs, oidc_role_map={"Beteiligung-Einlass": "checkin"}, oidc_tenant_claim="t")
    assert auth.roles_from({adfs: "Beteiligung-Einlass"}, s) == {"checkin"}
    assert auth.roles_from({adfs: "staff"}, s) == frozenset()  # with a map, only what it maps counts
    s = WebSettings(oidc_tenant_claim="groups", oidc_tenant_map={"8f2c": "kreis-a"})
    assert auth.tenants_of({"groups": ["8f2c", "kreis-b"]}, s) == ("kreis-a",)
    assert auth.tenants_of({"tenant": "kreis-a"}, WebSettings()) == ("kreis-a",)
    assert auth.display_name({"sub": "x", "preferred_username": "kim"}) == "kim"


def test_service_token_is_a_staff_token_the_services_accept() -> None:
    session = StaffSession("sub-1", "Kim", ("kreis-a",), frozenset({"editor"}), "kreis-a")
    principal = verify_token(service_token(session, WebSettings()), Settings())
    assert principal.tenant == "kreis-a" and principal.roles == {"editor"} and principal.subject == "sub-1"


def test_service_token_signed_with_a_private_key() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    web = WebSettings(token_key=private, token_algorithm="ES256")
    session = StaffSession("sub-2", "Kim", ("kreis-a",), frozenset({"staff"}), "kreis-a")
    principal = verify_token(service_token(session, web), Settings(jwt_public_key=public, jwt_algorithm="ES256"))
    assert principal.roles == {"staff"}


def test_production_needs_a_token_key_with_a_provider() -> None:
    secret = "a-production-secret-of-enough-length-0123456789"
    WebSettings(production=True, secret=secret)  # citizens' pages only: no console, no key needed
    with pytest.raises(ValueError, match="CIVIC_WEB_TOKEN_KEY"):
        WebSettings(production=True, secret=secret, oidc_issuer="https://idp.example.org", oidc_client_id="c")
    with pytest.raises(ValueError, match="https"):
        WebSettings(production=True, secret=secret, token_key="k" * 40, oidc_issuer="http://idp", oidc_client_id="c")
    with pytest.raises(ValueError, match="CLIENT_ID"):
        WebSettings(oidc_issuer="https://idp.example.org")


async def test_answers_for_a_token_are_never_kept() -> None:
    """Staff answers depend on the token's tenant: the ETag memory must not hand A's to B."""
    app = FastAPI()

    @app.get("/api/x/staff/things")
    async def things(request: Request) -> Response:
        who = request.headers.get("authorization", "none")
        return Response(
            f'{{"who": "{who}"}}',
            media_type="application/json",
            headers={"ETag": '"same"', "Cache-Control": "public, max-age=60"},
        )

    api = Api(WebSettings(api_base_url="http://api.test"), transport=httpx.ASGITransport(app=app))
    try:
        assert (await api.get("/api/x/staff/things", token="A"))["who"] == "Bearer A"
        assert (await api.get("/api/x/staff/things", token="B"))["who"] == "Bearer B"
        assert (await api.get("/api/x/staff/things"))["who"] == "none"
    finally:
        await api.close()


def test_where_people_land() -> None:
    assert safe_next("/verwaltung/kreis-a/einlass") == "/verwaltung/kreis-a/einlass"
    for outside in (
        "https://evil.example/verwaltung/",
        "//evil.example/verwaltung/",
        "/kreis-a",
        "/verwaltung\\x",
        None,
    ):
        assert safe_next(outside) is None, outside
    one = signed_in(tenants=("kreis-a",), tenant="kreis-a")
    assert landing(one, None) == "/verwaltung/kreis-a/"
    assert landing(one, "/verwaltung/stadt-b/einlass") == "/verwaltung/kreis-a/"  # not the person's tenant
    assert landing(one, "/verwaltung/kreis-a/einlass") == "/verwaltung/kreis-a/einlass"
    assert landing(signed_in(tenant=None), None) == "/verwaltung/mandant"


def test_cookies_are_host_prefixed_behind_https() -> None:
    assert cookie_name(WebSettings(public_base_url="https://beteiligung.example.org")) == "__Host-civic_console"
    assert cookie_name(WebSettings(public_base_url="http://127.0.0.1:8000")) == "civic_console"
