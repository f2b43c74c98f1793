"""Jinja2 pages: the environment, what every template gets, and ``render``.

Every template extends ``base.html`` (blocks ``title``, ``main``, optional ``breadcrumbs`` and ``head``) and may
import the form macros (``{% import "macros/forms.html" as forms with context %}``). Each page gets:

- ``lang`` and ``_`` (the text in the page's language, web/i18n.py), ``other_lang`` for the language switch;
- ``when``, ``day``, ``short_day``, ``time_of``, ``number``, ``money``: Babel formatting in the page's language;
- ``csrf_field()``: the hidden field every POST form must carry (web/security.py);
- ``site`` (the tenant's name, colour, legal links) and ``tenant`` when the page belongs to a tenant;
- ``link(name, **params)``: a path from the installation's link templates (CIVIC_LINK_*);
- ``here``: the path of this page, for the language switch.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from shared.links import LinkName
from shared.links import path as link_path
from web import i18n
from web.security import CSRF_FIELD, csrf_token, set_csrf_cookie
from web.settings import WebSettings

TEMPLATES = Path(__file__).parent / "templates"


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        extensions=["jinja2.ext.do"],
    )
    return env


def language(request: Request) -> i18n.Language:
    lang: i18n.Language | None = getattr(request.state, "lang", None)
    if lang is None:
        lang = i18n.pick(request.query_params.get("lang"), request.cookies.get(i18n.LANG_COOKIE))
        request.state.lang = lang
    return lang


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    tenant: str | None = None,
) -> HTMLResponse:
    settings: WebSettings = request.app.state.web_settings
    env: Environment = request.app.state.web_env
    lang = language(request)
    token = csrf_token(request)

    def link(name: LinkName, **params: object) -> str:
        return link_path(settings.links, name, **params)

    page: dict[str, Any] = {
        "lang": lang,
        "other_lang": "en" if lang == "de" else "de",
        "_": i18n.gettext(lang),
        "when": partial(i18n.when, lang=lang),
        "day": partial(i18n.day, lang=lang),
        "short_day": partial(i18n.short_day, lang=lang),
        "time_of": partial(i18n.time_of, lang=lang),
        "number": partial(i18n.number, lang=lang),
        "money": partial(i18n.money, lang=lang),
        "csrf_field": lambda: Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, token),
        "tenant": tenant,
        "site": settings.site(tenant) if tenant else None,
        "link": link,
        "here": request.url.path,
    }
    page.update(context or {})
    html = env.get_template(template).render(page)
    response = HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
    set_csrf_cookie(request, response)
    return response
