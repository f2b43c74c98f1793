"""Signing in through a real OpenID provider on loopback (oidc-provider-mock: registered clients, nonce
required, codes used once): the whole flow end to end, following redirects as a browser does, and each way
a sign-in must be refused."""

from __future__ import annotations

import secrets
import socket
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from starlette.requests import Request

from tests.console_support import Provider, csrf_of
from tests.integration.console.conftest import BASE, oidc_settings
from web.console import auth
from web.console.session import cookie_name

# The provider's own use of Authlib is from an older release; its warnings are not this code's.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:authlib.oidc.core.grants._legacy")


def person(provider: Provider, **claims: Any) -> str:
    sub = f"p-{secrets.token_hex(4)}"
    provider.set_person(sub, **claims)
    return sub


async def to_provider(browser: httpx.AsyncClient, provider: Provider, path: str) -> httpx.Response:
    """Open a console page and follow the redirects to the provider's authorization form."""
    r = await browser.get(path, follow_redirects=True)
    assert r.status_code == 200 and str(r.url).startswith(provider.issuer + "/oauth2/authorize"), (r.url, r.text[:500])
    return r


async def authorize(browser: httpx.AsyncClient, form: httpx.Response, sub: str) -> str:
    """The person confirms at the provider; the callback address (code and state) it sends them to."""
    r = await browser.post(str(form.url), data={"sub": sub})
    assert r.status_code == 302, (r.status_code, r.text[:500])
    callback = r.headers["location"]
    assert callback.startswith(BASE + "/verwaltung/anmelden/antwort?"), callback
    return callback


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


async def test_sign_in_end_to_end_and_sign_out_at_the_provider(make_console: Any, provider: Provider) -> None:
    async with make_console(**oidc_settings(provider)) as console:
        sub = person(provider, name="Kim Sachbearbeiterin", tenant=console.tenant, roles=["staff"])
        async with console.browser(provider) as browser:
            form = await to_provider(browser, provider, f"/verwaltung/{console.tenant}/")
            asked = parse_qs(urlsplit(str(form.url)).query)
            assert asked["response_type"] == ["code"] and asked["code_challenge_method"] == ["S256"]
            assert len(asked["code_challenge"][0]) == 43 and asked["nonce"][0] and asked["state"][0]
            assert asked["redirect_uri"] == [BASE + "/verwaltung/anmelden/antwort"]
            assert "openid" in asked["scope"][0].split()

            callback = await authorize(browser, form, sub)
            r = await browser.get(callback, follow_redirects=True)
            assert r.status_code == 200 and str(r.url) == f"{BASE}/verwaltung/{console.tenant}/", r.text[:1000]
            assert "Kim Sachbearbeiterin" in r.text and "Nächste Veranstaltungen" in r.text
            session_cookie = browser.cookies.get(cookie_name(console.web.state.web_settings))
            assert session_cookie and len(session_cookie) < 3000
            assert "civic_console_login" not in browser.cookies  # the flow is used up

            # Sign out: the session ends here and the person is sent to the provider's end_session_endpoint.
            r = await browser.post("/verwaltung/abmelden", data={"csrf": csrf_of(r.text)})
            assert r.status_code == 303
            logout = urlsplit(r.headers["location"])
            assert f"{logout.scheme}://{logout.netloc}" == provider.issuer and logout.path == "/oauth2/end_session"
            hints = parse_qs(logout.query)
            assert hints["post_logout_redirect_uri"] == [BASE + "/verwaltung/abgemeldet"]
            assert hints["id_token_hint"][0].count(".") == 2 and hints["client_id"]
            assert cookie_name(console.web.state.web_settings) not in browser.cookies
            r = await browser.get(f"/verwaltung/{console.tenant}/")
            assert r.status_code == 303 and r.headers["location"].startswith("/verwaltung/anmelden")


async def test_wrong_state_is_refused_before_any_exchange(make_console: Any, provider: Provider) -> None:
    async with make_console(**oidc_settings(provider)) as console:
        sub = person(provider, tenant=console.tenant, roles=["staff"])
        async with console.browser(provider) as browser:
            callback = await authorize(browser, await to_provider(browser, provider, "/verwaltung/anmelden"), sub)
            r = await browser.get(with_query(callback, state="forged-" + secrets.token_hex(8)))
            assert r.status_code == 400 and "Die Anmeldung hat nicht geklappt" in r.text
            assert cookie_name(console.web.state.web_settings) not in browser.cookies
            # No state at all, or a callback this browser never started (another browser's cookies): refused.
            assert (await browser.get(with_query(callback, state=""))).status_code == 400
            async with console.browser(provider) as stranger:
                assert (await stranger.get(callback)).status_code == 400
                assert cookie_name(console.web.state.web_settings) not in stranger.cookies
            # The refused attempts used nothing up: the real answer still signs in.
            r = await browser.get(callback, follow_redirects=True)
            assert r.status_code == 200 and str(r.url) == f"{BASE}/verwaltung/{console.tenant}/"


async def test_a_replayed_code_is_refused(make_console: Any, provider: Provider) -> None:
    async with make_console(**oidc_settings(provider)) as console:
        sub = person(provider, tenant=console.tenant, roles=["staff"])
        async with console.browser(provider) as browser:
            callback = await authorize(browser, await to_provider(browser, provider, "/verwaltung/anmelden"), sub)
            flow_cookie = browser.cookies.get("civic_console_login")
            assert flow_cookie
            r = await browser.get(callback, follow_redirects=True)
            assert r.status_code == 200

        # Again, in a browser that still has the flow's cookie: the provider refuses the used code.
        async with console.browser(provider) as replay:
            replay.cookies.set("civic_console_login", flow_cookie, domain="civic.test")
            r = await replay.get(callback)
            assert r.status_code == 400 and "nicht bestätigt" in r.text
            assert cookie_name(console.web.state.web_settings) not in replay.cookies
        # And in the same browser, whose flow is used up: refused for its state.
        async with console.browser(provider) as same:
            assert (await same.get(callback)).status_code == 400


async def test_a_person_of_another_tenant_sees_nothing_of_it(make_console: Any, provider: Provider) -> None:
    async with make_console(**oidc_settings(provider)) as console:
        sub = person(provider, tenant=console.tenant, roles="staff")
        async with console.browser(provider) as browser:
            callback = await authorize(browser, await to_provider(browser, provider, "/verwaltung/anmelden"), sub)
            assert (await browser.get(callback, follow_redirects=True)).status_code == 200
            r = await browser.get(f"/verwaltung/{console.other}/")
            assert r.status_code == 403
            assert "Anderswo" not in r.text and console.other not in r.text


async def test_several_tenants_from_a_mapped_group_claim(make_console: Any, provider: Provider) -> None:
    """Entra-style: groups as ids in ``groups``, roles as app roles; both mapped in the settings."""
    async with make_console() as probe:
        tenant, other = probe.tenant, probe.other
    overrides = oidc_settings(
        provider,
        oidc_tenant_claim="groups",
        oidc_tenant_map={"0f9a-county": tenant, "77b1-town": other},
        oidc_roles_claim="realm_access.roles",
        oidc_role_map={"civic-staff": "staff", "civic-door": "checkin"},
    )
    async with make_console(**overrides) as console:
        console.tenant, console.other = tenant, other
        sub = person(
            provider,
            name="Kreis hilft Stadt",
            groups=["0f9a-county", "77b1-town", "unrelated"],
            realm_access={"roles": ["civic-door", "offline_access"]},
        )
        async with console.browser(provider) as browser:
            callback = await authorize(browser, await to_provider(browser, provider, "/verwaltung/anmelden"), sub)
            r = await browser.get(callback)
            assert r.status_code == 303 and r.headers["location"] == "/verwaltung/mandant"
            choice = await browser.get("/verwaltung/mandant")
            assert "Kreis Prüfland" in choice.text and "Stadt Anderswo" in choice.text
            r = await browser.post("/verwaltung/mandant", data={"csrf": csrf_of(choice.text), "tenant": other})
            page = await browser.get(r.headers["location"])
            assert page.status_code == 200 and "Stadt Anderswo" in page.text
            assert f'href="/verwaltung/{other}/einlass"' in page.text
            assert f'href="/verwaltung/{other}/veranstaltungen"' not in page.text


async def test_no_tenant_or_no_role_signs_nobody_in(make_console: Any, provider: Provider) -> None:
    async with make_console(**oidc_settings(provider)) as console:
        for claims in ({"tenant": console.tenant}, {"roles": ["staff"]}, {"tenant": console.tenant, "roles": ["x"]}):
            sub = person(provider, **claims)
            async with console.browser(provider) as browser:
                callback = await authorize(browser, await to_provider(browser, provider, "/verwaltung/anmelden"), sub)
                r = await browser.get(callback)
                assert r.status_code == 403 and "Kein Zugang zur Verwaltung" in r.text, claims
                assert cookie_name(console.web.state.web_settings) not in browser.cookies


async def test_a_provider_naming_another_issuer_is_not_used(make_console: Any, provider: Provider) -> None:
    """Discovery must name the configured issuer (no mix-up with another provider's metadata)."""
    async with make_console(**oidc_settings(provider)) as console, console.browser(provider) as browser:
        client = auth.provider(Request({"type": "http", "app": console.web, "headers": []}))
        real = await client.load_server_metadata()
        client.server_metadata.update({**real, "issuer": "https://idp.example.org/realms/other"})
        r = await browser.get("/verwaltung/anmelden")
        assert r.status_code == 503 and "nicht erreichbar" in r.text
        # The wrong document is dropped, not kept: the next sign-in asks the provider again.
        r = await browser.get("/verwaltung/anmelden")
        assert r.status_code == 303 and r.headers["location"].startswith(provider.issuer + "/oauth2/authorize")


async def test_an_unreachable_provider_is_a_page(make_console: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    unreachable = {"oidc_issuer": f"http://127.0.0.1:{port}", "oidc_client_id": "civic"}
    async with make_console(**unreachable) as console, console.browser() as browser:
        r = await browser.get("/verwaltung/anmelden")
        assert r.status_code == 503 and "nicht erreichbar" in r.text


async def test_the_provider_s_refusal_is_a_page(make_console: Any, provider: Provider) -> None:
    async with make_console(**oidc_settings(provider)) as console, console.browser(provider) as browser:
        form = await to_provider(browser, provider, "/verwaltung/anmelden")
        r = await browser.post(str(form.url), data={"action": "deny"})
        assert r.status_code == 302
        r = await browser.get(r.headers["location"])
        assert r.status_code == 400 and "abgebrochen" in r.text
        assert cookie_name(console.web.state.web_settings) not in browser.cookies
