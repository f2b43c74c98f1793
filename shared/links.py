"""Every link civic prints, filled in from the installation's link templates (``CIVIC_LINK_*``, shared/settings.py).

Services call these helpers instead of building URLs, so a municipality with a front end of its own points all
mails, QR codes, calendar files and events at it by setting the templates.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

from shared.settings import LinkSettings

LinkName = Literal[
    "meeting",
    "ics",
    "manage",
    "survey",
    "process",
    "news",
    "page",
    "subscription_confirm",
    "unsubscribe",
    "short_link_missing",
]


def link(links: LinkSettings, base_url: str, name: LinkName, **params: object) -> str:
    """The absolute URL of ``name``: its template with each value percent-encoded, under ``base_url`` unless
    the template is an absolute address already."""
    template: str = getattr(links, name)
    path = template.format(**{k: quote(str(v), safe="") for k, v in params.items()})
    if path.startswith(("http://", "https://")):
        return path
    return base_url.rstrip("/") + path


def path(links: LinkSettings, name: LinkName, **params: object) -> str:
    """The template filled in, as written (a path for the defaults): what the web client routes."""
    template: str = getattr(links, name)
    return template.format(**{k: quote(str(v), safe="") for k, v in params.items()})
