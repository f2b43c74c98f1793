"""The local sign-in (refused in production), the session's expiry, tenants kept apart and the roles: what
each person sees in the console, and that the services refuse the rest with the console's own tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
from fastapi import Request
from fastapi.responses import PlainTextResponse

from shared.clock import FrozenClock
from shared.settings import Settings
from tests.console_support import csrf_of, sign_in_locally
from tests.integration.console.conftest import Console
from tests.support import staff_headers
from web.console.session import console_session, cookie_name, service_token
from web.settings import WebSettings


async def meeting(console: Console, tenant: str, title: str, settings: Settings) -> dict[str, Any]:
    starts = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    r = await console.api.post(
        "/api/registration/staff/meetings",
        headers=staff_headers(tenant, settings=settings),
        json={
            "title": title,
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(),
            "capacity": 20,
            "waitlist": True,
        },
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def assert_page(r: httpx.Response, status: int = 200) -> str:
    assert r.status_code == status, (r.status_code, r.text[:1500])
    assert r.headers["content-type"].startswith("text/html")
    assert "<script" not in r.text and 'style="' not in r.text
    assert r.headers["cache-control"] == "no-store"
    return r.text


def parts_linked(page: str, tenant: str) -> set[str]:
    """The console's parts the page links to (navigation and overview)."""
    parts = ("veranstaltungen", "einlass", "umfragen", "inhalte", "rueckrufe", "benachrichtigungen")
    return {part for part in parts if f'href="/verwaltung/{tenant}/{part}' in page}


def staff_only_route(console: Console) -> None:
    """A page that needs ``staff`` (as the meeting pages do), to see the dependency refuse others."""

    async def page(request: Request, tenant: str) -> PlainTextResponse:
        session = await console_session(request, tenant, "staff")
        return PlainTextResponse(f"meetings of {session.tenant}")

    console.web.add_api_route("/verwaltung/{tenant}/probe-staff", page, methods=["GET"])
    # Fixed console paths first, as in web/app.py: the probe goes before the catch-all tenant pages.
    console.web.router.routes.insert(0, console.web.router.routes.pop())


async def test_local_sign_in_staff_overview(make_console: Any, settings: Settings) -> None:
    async with make_console() as console:
        await meeting(console, console.tenant, "Bürgerforum Prüfland", settings)
        await meeting(console, console.other, "Geheimes Treffen Anderswo", settings)
        async with console.browser() as browser:
            # Not signed in: to the sign-in, which (without a provider, not in production) is the local one.
            r = await browser.get(f"/verwaltung/{console.tenant}/")
            assert r.status_code == 303
            assert r.headers["location"] == f"/verwaltung/anmelden?next=/verwaltung/{console.tenant}/"
            r = await browser.get(r.headers["location"])
            assert r.status_code == 303 and r.headers["location"].startswith("/verwaltung/anmelden/lokal?next=")
            form = assert_page(await browser.get(r.headers["location"]))
            assert "Kreis Prüfland" in form and 'name="roles"' in form

            # An empty form is refused with an error summary, nothing signed in.
            r = await browser.post("/verwaltung/anmelden/lokal", data={"csrf": csrf_of(form)})
            text = assert_page(r, 400)
            assert "Es gibt ein Problem" in text and 'href="#name"' in text and 'href="#roles"' in text
            assert cookie_name(console.web.state.web_settings) not in browser.cookies
            # Without the CSRF field: refused.
            r = await browser.post(
                "/verwaltung/anmelden/lokal", data={"tenant": console.tenant, "roles": "staff", "name": "X"}
            )
            assert r.status_code == 403

            await sign_in_locally(browser, console.tenant, "staff", name="Robin Beispiel")
            cookie = next(c for c in browser.cookies.jar if c.name == "civic_console")
            assert cookie.has_nonstandard_attr("HttpOnly") and len(cookie.value) < 1200
            r = await browser.get(f"/verwaltung/{console.tenant}")
            assert r.status_code == 308 and r.headers["location"] == f"/verwaltung/{console.tenant}/"
            page = assert_page(await browser.get(f"/verwaltung/{console.tenant}/"))
            assert "Robin Beispiel" in page and "Bürgerforum Prüfland" in page
            assert "Geheimes Treffen" not in page
            for part in ("veranstaltungen", "einlass", "umfragen", "inhalte", "rueckrufe"):
                assert f'href="/verwaltung/{console.tenant}/{part}"' in page, part
            assert 'action="/verwaltung/abmelden"' in page and "Mandant wechseln" not in page

            # Another tenant: 403, and nothing of it on the page.
            r = await browser.get(f"/verwaltung/{console.other}/")
            text = assert_page(r, 403)
            assert "Kein Zugriff" in text
            assert "Anderswo" not in text and console.other not in text and "Geheimes" not in text

            # Sign out (a POST with the CSRF field): the session is gone.
            r = await browser.post("/verwaltung/abmelden", data={"csrf": csrf_of(page)})
            assert r.status_code == 303 and r.headers["location"] == "/verwaltung/abgemeldet"
            assert "Sie sind abgemeldet" in assert_page(await browser.get("/verwaltung/abgemeldet"))
            r = await browser.get(f"/verwaltung/{console.tenant}/")
            assert r.status_code == 303 and r.headers["location"].startswith("/verwaltung/anmelden")


async def test_the_console_token_is_the_tenant_s_only(make_console: Any, settings: Settings) -> None:
    """The services authorise every call: the token a session of tenant A gets lists A's meetings only."""
    async with make_console() as console:
        mine = await meeting(console, console.tenant, "Unseres", settings)
        theirs = await meeting(console, console.other, "Fremdes", settings)
        from web.console.session import StaffSession

        web_settings: WebSettings = console.web.state.web_settings
        session = StaffSession("dev:a", "A", (console.tenant,), frozenset({"staff"}), console.tenant)
        headers = {"Authorization": f"Bearer {service_token(session, web_settings)}"}
        listed = (await console.api.get("/api/registration/staff/meetings", headers=headers)).json()
        assert [m["id"] for m in listed] == [mine["id"]]
        r = await console.api.get(f"/api/registration/staff/meetings/{theirs['id']}", headers=headers)
        assert r.status_code == 404


async def test_expired_and_forged_sessions_are_refused(make_console: Any) -> None:
    async with make_console(session_hours=8) as console:
        clock = FrozenClock(datetime.now(UTC))
        console.web.state.clock = clock
        async with console.browser() as browser:
            await sign_in_locally(browser, console.tenant, "staff")
            assert (await browser.get(f"/verwaltung/{console.tenant}/")).status_code == 200

            clock.advance(timedelta(hours=7, minutes=59))
            assert (await browser.get(f"/verwaltung/{console.tenant}/")).status_code == 200
            clock.advance(timedelta(minutes=2))
            r = await browser.get(f"/verwaltung/{console.tenant}/")
            assert r.status_code == 303
            assert (
                r.headers["location"].startswith("/verwaltung/anmelden?next=")
                and "abgelaufen=1" in r.headers["location"]
            )
            assert "Ihre Anmeldung ist abgelaufen" in assert_page(await browser.get(r.headers["location"]))

        # A session made with another key, or changed, is no session.
        async with console.browser() as browser:
            now = int(datetime.now(UTC).timestamp())
            forged = jwt.encode(
                {
                    "aud": "civic-console",
                    "sub": "x",
                    "ten": [console.tenant],
                    "rol": ["staff"],
                    "iat": now,
                    "exp": now + 3600,
                },
                "not-the-key-of-this-installation-0123456789",
                algorithm="HS256",
            )
            browser.cookies.set("civic_console", forged, domain="civic.test")
            r = await browser.get(f"/verwaltung/{console.tenant}/")
            assert r.status_code == 303 and "/verwaltung/anmelden" in r.headers["location"]


async def test_local_sign_in_is_refused_in_production(make_console: Any) -> None:
    secret = "a-production-secret-of-enough-length-0123456789"
    async with make_console(production=True, secret=secret) as console, console.browser() as browser:
        assert (await browser.get("/verwaltung/anmelden/lokal")).status_code == 404
        r = await browser.post(
            "/verwaltung/anmelden/lokal", data={"tenant": console.tenant, "roles": "staff", "name": "X"}
        )
        assert r.status_code == 404
        assert cookie_name(console.web.state.web_settings) not in browser.cookies
        # Without a provider there is no way in, and the page says so.
        text = assert_page(await browser.get("/verwaltung/anmelden"), 503)
        assert "Die Anmeldung ist nicht eingerichtet" in text


async def test_checkin_person_sees_and_does_only_check_in(make_console: Any, settings: Settings) -> None:
    async with make_console() as console:
        staff_only_route(console)
        await meeting(console, console.tenant, "Bürgerforum Prüfland", settings)
        async with console.browser() as browser:
            await sign_in_locally(browser, console.tenant, "checkin", name="Tür Eins")
            page = assert_page(await browser.get(f"/verwaltung/{console.tenant}/"))
            links = parts_linked(page, console.tenant)
            assert links == {"einlass"}
            assert "Bürgerforum Prüfland" not in page and "Offene Umfragen" not in page and "Neuigkeiten" not in page
            # A staff page refuses the person ...
            assert "Kein Zugriff" in assert_page(await browser.get(f"/verwaltung/{console.tenant}/probe-staff"), 403)
        # ... and so do the services, with the token the console would send for them.
        from web.console.session import StaffSession

        session = StaffSession("dev:door", "Tür", (console.tenant,), frozenset({"checkin"}), console.tenant)
        headers = {"Authorization": f"Bearer {service_token(session, console.web.state.web_settings)}"}
        r = await console.api.get("/api/registration/staff/meetings", headers=headers)
        assert r.status_code == 403
        r = await console.api.get("/api/surveys/surveys", headers=headers)
        assert r.status_code == 403


async def test_editor_sees_content_only(make_console: Any, settings: Settings) -> None:
    async with make_console() as console:
        staff_only_route(console)
        await meeting(console, console.tenant, "Bürgerforum Prüfland", settings)
        async with console.browser() as browser:
            await sign_in_locally(browser, console.tenant, "editor", name="Redaktion")
            page = assert_page(await browser.get(f"/verwaltung/{console.tenant}/"))
            links = parts_linked(page, console.tenant)
            assert links == {"inhalte"}
            assert "Neuigkeiten" in page
            assert "Bürgerforum Prüfland" not in page and "Offene Umfragen" not in page
            assert assert_page(await browser.get(f"/verwaltung/{console.tenant}/probe-staff"), 403)
        from web.console.session import StaffSession

        session = StaffSession("dev:ed", "Ed", (console.tenant,), frozenset({"editor"}), console.tenant)
        headers = {"Authorization": f"Bearer {service_token(session, console.web.state.web_settings)}"}
        assert (await console.api.get("/api/registration/staff/meetings", headers=headers)).status_code == 403


async def test_several_tenants_choose_explicitly(make_console: Any, settings: Settings) -> None:
    async with make_console() as console:
        await meeting(console, console.tenant, "Forum Prüfland", settings)
        await meeting(console, console.other, "Forum Anderswo", settings)
        async with console.browser() as browser:
            form = await browser.get("/verwaltung/anmelden/lokal")
            r = await browser.post(
                "/verwaltung/anmelden/lokal",
                data={
                    "csrf": csrf_of(form.text),
                    "tenant": f"{console.tenant},{console.other}",
                    "roles": "staff",
                    "name": "Kreis hilft Stadt",
                },
            )
            assert r.status_code == 303 and r.headers["location"] == "/verwaltung/mandant"
            choice = assert_page(await browser.get("/verwaltung/mandant"))
            assert "Kreis Prüfland" in choice and "Stadt Anderswo" in choice
            r = await browser.post("/verwaltung/mandant", data={"csrf": csrf_of(choice), "tenant": console.other})
            assert r.status_code == 303 and r.headers["location"] == f"/verwaltung/{console.other}/"
            page = assert_page(await browser.get(r.headers["location"]))
            assert "Forum Anderswo" in page and "Forum Prüfland" not in page and "Mandant wechseln" in page
            assert (await browser.get("/verwaltung/")).headers["location"] == f"/verwaltung/{console.other}/"
            # A tenant that is not the person's cannot be chosen.
            r = await browser.post("/verwaltung/mandant", data={"csrf": csrf_of(choice), "tenant": "kreis-fremd"})
            assert r.status_code == 403
