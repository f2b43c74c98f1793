"""Signing in to the staff console in tests: the local sign-in (not in production mode), as a person would.

- ``await sign_in_locally(client, tenant, roles, name="Test")``: an ``httpx.AsyncClient`` against the web app
  opens ``GET /verwaltung/anmelden/lokal`` (which sets the CSRF cookie), then posts the form with its CSRF field;
  the session cookie is then in the client's cookie jar. ``tenant`` may be one tenant or several.
- ``await sign_in_locally_page(page, base_url, tenant, roles)``: the same in a Playwright page, through the form.

``roles`` is a comma list (``"staff"``, ``"checkin,editor"``) or a sequence of role names.

``running_provider()`` starts a real OpenID provider on loopback (oidc-provider-mock on a thread; registered
clients only, a nonce required) for the tests that sign in through OpenID Connect.
"""

from __future__ import annotations

import html
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx

LOCAL = "/verwaltung/anmelden/lokal"


def _comma(values: str | Sequence[str]) -> str:
    return values if isinstance(values, str) else ",".join(values)


def csrf_of(page_html: str) -> str:
    found = re.search(r'<input type="hidden" name="csrf" value="([^"]+)"', page_html)
    assert found, "the page has no CSRF field"
    return html.unescape(found.group(1))


async def sign_in_locally(
    client: httpx.AsyncClient, tenant: str | Sequence[str], roles: str | Sequence[str], name: str = "Test"
) -> None:
    form = await client.get(LOCAL)
    assert form.status_code == 200, (form.status_code, form.text[:500])
    answer = await client.post(
        LOCAL, data={"csrf": csrf_of(form.text), "tenant": _comma(tenant), "roles": _comma(roles), "name": name}
    )
    assert answer.status_code == 303, (answer.status_code, answer.text[:1000])
    assert answer.headers["location"].startswith("/verwaltung/"), answer.headers["location"]


async def sign_in_locally_page(
    page: Any, base_url: str, tenant: str | Sequence[str], roles: str | Sequence[str], name: str = "Test"
) -> None:
    """Fill the local sign-in form in the browser (the tenants typed as a comma list, the roles ticked)."""
    await page.goto(base_url + LOCAL)
    await page.get_by_label("Ihr Name").fill(name)
    tenants = [tenant] if isinstance(tenant, str) else list(tenant)
    await page.locator("#other").fill(",".join(tenants))
    for role in _comma(roles).split(","):
        await page.locator(f'input[name="roles"][value="{role.strip()}"]').check()
    await page.get_by_role("button", name="Anmelden").click()
    await page.wait_for_url(re.compile(r".*/verwaltung/(?!anmelden).*"))


# -- a real OpenID provider on loopback (oidc-provider-mock, a Flask app on a thread) ---------------------------


class Provider:
    """An OpenID provider that requires registered clients and a nonce; people are set with their claims."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def register_client(self, redirect_uri: str, *, post_logout_redirect_uri: str | None = None) -> tuple[str, str]:
        """(client id, client secret) of a new client allowed to use ``redirect_uri``."""
        answer = httpx.post(
            self.issuer + "/oauth2/clients",
            json={"redirect_uris": [redirect_uri], "token_endpoint_auth_method": "client_secret_basic"},
            timeout=10,
        )
        answer.raise_for_status()
        body = answer.json()
        return str(body["client_id"]), str(body["client_secret"])

    def set_person(self, sub: str, **claims: Any) -> None:
        """The claims the provider puts into the ID token of ``sub`` (tenant, roles, name ...)."""
        httpx.put(f"{self.issuer}/users/{sub}", json=claims, timeout=10).raise_for_status()


@contextmanager
def running_provider(*, registered_clients: bool = True) -> Iterator[Provider]:
    """The provider on a free port of loopback; with ``registered_clients`` only clients registered through
    ``Provider.register_client`` (with their redirect URIs) may sign in, otherwise any client id may."""
    with warnings.catch_warnings():
        # The provider's own use of Authlib is from an older release; its warnings are not this code's.
        from authlib.deprecate import AuthlibDeprecationWarning

        warnings.simplefilter("ignore", AuthlibDeprecationWarning)
        from oidc_provider_mock import run_server_in_thread

    # The provider's issuer is the address it is asked at: always ask it as localhost.
    with run_server_in_thread(port=0, require_client_registration=registered_clients, require_nonce=True) as server:
        yield Provider(f"http://localhost:{server.server_port}")
