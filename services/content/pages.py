"""The process pages this process served recently, and how they are kept right without asking PostgreSQL.

A cached page is answered without a query while three things hold: notifications reach this process (its LISTEN
connection on ``CHANNEL`` is up), none came for the page's tenant since the page was built or last confirmed,
and the clock has not reached the page's ``valid_until`` (the next instant at which the clock alone changes it:
a registration window, a meeting's start, a survey opening or closing, midnight in Berlin; at most ``LONGEST``
ahead). Triggers (migration 002) notify the channel with the tenant in every transaction that changes what a
page shows, whoever commits it: a staff edit on any replica, an event handler, the publishing loop. This
process's own staff writes drop the tenant's pages at once as well (api.py), since a notification arrives a
moment after the commit.

Otherwise (the listener is down or reconnecting, a notification came, a boundary passed) the page is checked
with one small query (``Store.page_version``) and built again only if its version changed: what a conditional
request cost before pages were kept this way. So a cache that misses notifications never serves a stale page;
it only asks PostgreSQL again.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from cachetools import LRUCache

from shared.bus.wakeup import Wakeup
from shared.loops import Loop
from shared.service import ServiceContext

#: The channel the content tables' triggers notify, with the tenant whose pages changed.
CHANNEL = "civic_content_pages"
#: The longest a page is answered without a query even while notifications flow: a safety net for a change
#: that would reach no notification, not the way changes are seen (those are seen when they are notified).
LONGEST = timedelta(minutes=1)
#: How often the listening connection is checked: a connection that died silently is given up within two.
HEARTBEAT_SECONDS = 5.0


class Listening(Protocol):
    """What the cache asks of its listener (a ``Wakeup``): whether notifications reach this process now."""

    @property
    def listening(self) -> bool: ...


@dataclass(frozen=True)
class Page:
    """A served process page: its JSON bytes and their ETag, with what says whether it is still right."""

    tenant: str
    #: ``Store.page_version``'s key when the page was built or last confirmed.
    version: tuple[object, ...]
    body: bytes
    etag: str
    #: The instant from which the clock alone may change the page.
    valid_until: datetime
    #: ``PageCache.stamp(tenant)`` before the page's data was read.
    stamp: tuple[int, int]


class PageCache:
    """The most recently served process pages of this process (a cachetools LRU), by what they were asked
    for; see the module's docstring for when one is used."""

    def __init__(self, size: int = 4096, listener: Listening | None = None) -> None:
        self._pages: LRUCache[Hashable, Page] = LRUCache(maxsize=size)
        self.listener = listener
        self._epoch = 0  # raised when anything may have changed (the listener (re)connected)
        self._tenants: dict[str, int] = {}  # raised per notification of a tenant

    @property
    def listening(self) -> bool:
        return self.listener is not None and self.listener.listening

    def stamp(self, tenant: str) -> tuple[int, int]:
        """Changes whenever a notification for ``tenant`` arrives (or any, after a reconnect)."""
        return self._epoch, self._tenants.get(tenant, 0)

    def changed(self, tenant: str | None) -> None:
        """Something a page of ``tenant`` shows has changed; None: of any tenant, or we cannot know."""
        if tenant is None:
            self._epoch += 1
            self._pages.clear()
        else:
            self._tenants[tenant] = self._tenants.get(tenant, 0) + 1

    def fresh(self, key: Hashable, now: datetime) -> Page | None:
        """The page under ``key`` if it is right without asking PostgreSQL."""
        page = self._pages.get(key)
        if page is None or now >= page.valid_until or not self.listening or page.stamp != self.stamp(page.tenant):
            return None
        return page

    def get(self, key: Hashable, version: tuple[object, ...]) -> Page | None:
        """The page under ``key`` if it was built at ``version``."""
        page = self._pages.get(key)
        return page if page is not None and page.version == version else None

    def put(self, page: Page, *keys: Hashable) -> None:
        """Keep ``page`` under ``keys``, unless a notification for its tenant came while it was read (what it
        was built from may be older than that change)."""
        if page.stamp == self.stamp(page.tenant):
            for key in keys:
                self._pages[key] = page


def page_cache(ctx: ServiceContext) -> PageCache:
    """This process's page cache (one per service context: tests run several apps in one process)."""
    pages = ctx.state.get("pages")
    if not isinstance(pages, PageCache):
        pages = ctx.state["pages"] = PageCache()
    return pages


def listener(ctx: ServiceContext) -> Loop:
    """The loop that keeps ``page_cache(ctx)`` informed: LISTEN on ``CHANNEL`` on a connection of its own."""
    pages = page_cache(ctx)
    wakeup = Wakeup(ctx.settings.database_url, CHANNEL, on_notify=pages.changed, heartbeat=HEARTBEAT_SECONDS)
    pages.listener = wakeup
    return wakeup.run
