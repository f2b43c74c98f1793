"""The content service's use cases against a fake unit of work: publishing and scheduling, where new parts go,
retargeting a printed short link, taken slugs, fresh short-link codes and the process page built once per
version."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from uuid import UUID, uuid4

import pytest

from services.content import use_cases
from services.content.pages import Page, PageCache
from services.content.store import PageVersion, Store, Taken
from shared.contracts.content import ContentPublishedV1
from shared.errors import Conflict, NotFound, Unavailable
from shared.settings import LinkSettings
from shared.unit_of_work import FakeUnitOfWork

NOW = datetime(2021, 10, 20, 12, 0, tzinfo=UTC)
LINKS = use_cases.Links("https://beteiligung.example", LinkSettings())
TENANT = "stadt-detmold"


class FakeStore:
    """What the use cases ask of ``Store``, in dicts: processes, phases, articles and QR codes of one test."""

    def __init__(self) -> None:
        self.processes: dict[UUID, dict[str, Any]] = {}
        self.phases: list[dict[str, Any]] = []
        self.articles: dict[UUID, dict[str, Any]] = {}
        self.qr_codes: dict[str, dict[str, Any]] = {}
        self.version: tuple[object, ...] | None = (1,)
        self.boundaries: list[datetime] = []
        self.versions_read = 0
        self.pages_built = 0
        #: Called while a page is built, as a change committed meanwhile would be.
        self.while_building: Callable[[], None] = lambda: None

    def add_process(self, slug: str = "smart-city", status: str = "draft") -> UUID:
        id_ = uuid4()
        self.processes[id_] = {
            "tenant": TENANT,
            "id": id_,
            "slug": slug,
            "title": json.dumps({"de": "Modellprojekt Smart City"}),
            "summary": None,
            "status": status,
            "publish_at": None,
            "published_at": None,
        }
        return id_

    async def process(self, tenant: str, process_id: UUID) -> dict[str, Any] | None:
        return self.processes.get(process_id)

    async def status_for_update(self, what: str, tenant: str, id_: UUID) -> str | None:
        p = self.processes.get(id_)
        return None if p is None else str(p["status"])

    async def schedule(self, what: str, tenant: str, id_: UUID, at: datetime, now: datetime) -> dict[str, Any]:
        self.processes[id_].update(status="scheduled", publish_at=at)
        return {"id": id_, "status": "scheduled", "publish_at": at, "published_at": None}

    async def publish(self, what: str, tenant: str, id_: UUID, now: datetime) -> dict[str, Any] | None:
        p = self.processes[id_]
        if p["status"] == "published":
            return None
        p.update(status="published", published_at=now, publish_at=None)
        return dict(p)

    async def next_position(self, table: str, tenant: str, process_id: UUID) -> int:
        taken = [ph["position"] for ph in self.phases if ph["process_id"] == process_id]
        return max(taken) + 1 if taken else 0

    async def add_phase(
        self, tenant: str, id_: UUID, process_id: UUID, position: int, p: dict[str, Any]
    ) -> dict[str, Any]:
        phase = {"id": id_, "tenant": tenant, "process_id": process_id, "position": position, **p}
        phase["position"] = position
        self.phases.append(phase)
        return phase

    async def create_article(
        self, tenant: str, id_: UUID, a: dict[str, Any], body_html: dict[str, str] | None, now: datetime
    ) -> dict[str, Any]:
        if any(x["slug"] == a["slug"] and x["kind"] == a["kind"] for x in self.articles.values()):
            raise Taken("slug")
        self.articles[id_] = {"id": id_, **a, "body_html": body_html}
        return self.articles[id_]

    async def create_qr(self, tenant: str, code: str, q: dict[str, Any], now: datetime) -> dict[str, Any] | None:
        if code in self.qr_codes:
            return None
        self.qr_codes[code] = {"tenant": tenant, "code": code, **q}
        return self.qr_codes[code]

    async def update_qr(self, tenant: str, code: str, values: dict[str, Any], now: datetime) -> dict[str, Any] | None:
        rec = self.qr_codes.get(code)
        if rec is None or rec["tenant"] != tenant:
            return None
        rec.update(values)
        return rec

    async def page_version(self, tenant: str, slug: str, now: datetime) -> PageVersion | None:
        self.versions_read += 1
        return None if self.version is None else PageVersion(self.version, self.boundaries)

    async def process_page(
        self, tenant: str, slug: str, lang: str, now: datetime, news_page_no: int, news_per_page: int
    ) -> dict[str, Any] | None:
        self.pages_built += 1
        self.while_building()
        return {"slug": slug, "language": lang, "built": self.pages_built}


@asynccontextmanager
async def on(store: FakeStore) -> AsyncIterator[Store]:
    """The fake store as the page use case takes it: a connection it enters only when it needs one."""
    yield cast(Store, store)


@asynccontextmanager
async def unreachable() -> AsyncIterator[Store]:
    """A store the use case must not need: entering it fails the test."""
    raise AssertionError("the page was not answered from the cache")
    yield  # pragma: no cover


class Listener:
    def __init__(self, listening: bool) -> None:
        self.listening = listening


def unit() -> tuple[FakeUnitOfWork[Store], FakeStore]:
    store = FakeStore()
    return FakeUnitOfWork(cast(Store, store), "content"), store


# -- publishing ----------------------------------------------------------------------------------------------


async def test_publishing_now_records_the_event_with_the_public_link() -> None:
    uow, store = unit()
    pid = store.add_process()
    out = await use_cases.publish(uow, TENANT, "process", pid, at=None, now=NOW, links=LINKS)
    assert out == {"id": pid, "status": "published", "publish_at": None, "published_at": NOW}
    [event] = uow.payloads()
    assert isinstance(event, ContentPublishedV1)
    assert event.content_id == pid and event.kind == "process" and event.title == "Modellprojekt Smart City"
    assert event.url is not None and event.url.startswith(LINKS.base_url) and "smart-city" in event.url
    assert uow.events[0].subject == f"process/{pid}" and uow.events[0].tenant == TENANT


async def test_a_time_ahead_schedules_without_an_event_and_a_time_past_publishes_now() -> None:
    uow, store = unit()
    later, earlier = store.add_process("later"), store.add_process("earlier")
    at = NOW + timedelta(hours=2)
    scheduled = await use_cases.publish(uow, TENANT, "process", later, at=at, now=NOW, links=LINKS)
    assert scheduled["status"] == "scheduled" and scheduled["publish_at"] == at
    assert uow.payloads() == []
    past = await use_cases.publish(uow, TENANT, "process", earlier, at=NOW - timedelta(minutes=1), now=NOW, links=LINKS)
    assert past["status"] == "published"
    assert [e.content_id for e in uow.payloads()] == [earlier]


async def test_publishing_twice_is_a_conflict_and_records_nothing_more() -> None:
    uow, store = unit()
    pid = store.add_process()
    await use_cases.publish(uow, TENANT, "process", pid, at=None, now=NOW, links=LINKS)
    with pytest.raises(Conflict) as refused:
        await use_cases.publish(uow, TENANT, "process", pid, at=None, now=NOW, links=LINKS)
    assert refused.value.code == "already-published"
    assert len(uow.events) == 1 and uow.rollbacks == 1


async def test_publishing_what_does_not_exist_is_not_found() -> None:
    uow, _ = unit()
    with pytest.raises(NotFound) as refused:
        await use_cases.publish(uow, TENANT, "process", uuid4(), at=None, now=NOW, links=LINKS)
    assert refused.value.detail == "process not found"


# -- where phases go -----------------------------------------------------------------------------------------


async def test_phases_are_appended_unless_staff_place_them() -> None:
    uow, store = unit()
    pid = store.add_process()
    phase = {"title": {"de": "Strategie"}, "starts_on": date(2021, 10, 1), "ends_on": None}
    first = await use_cases.add_phase(uow, TENANT, pid, {**phase, "position": None})
    second = await use_cases.add_phase(uow, TENANT, pid, {**phase, "position": None})
    placed = await use_cases.add_phase(uow, TENANT, pid, {**phase, "position": 7})
    after = await use_cases.add_phase(uow, TENANT, pid, {**phase, "position": None})
    assert [first["position"], second["position"], placed["position"], after["position"]] == [0, 1, 7, 8]


async def test_a_phase_of_an_unknown_process_is_not_found_and_nothing_is_written() -> None:
    uow, store = unit()
    with pytest.raises(NotFound):
        await use_cases.add_phase(uow, TENANT, uuid4(), {"title": {"de": "X"}, "starts_on": date(2021, 1, 1)})
    assert store.phases == [] and uow.rollbacks == 1 and uow.commits == 0


# -- pages: a taken slug -------------------------------------------------------------------------------------


async def test_a_taken_page_slug_is_a_conflict_naming_the_field() -> None:
    uow, store = unit()
    page = {"kind": "page", "slug": "app", "process_id": None, "title": {"de": "App"}, "body": {"de": "**Hallo**"}}
    created = await use_cases.create_article(uow, TENANT, page, NOW)
    assert created["body_html"] == {"de": "<p><strong>Hallo</strong></p>"}  # rendered when written
    with pytest.raises(Conflict) as refused:
        await use_cases.create_article(uow, TENANT, {**page, "title": {"de": "Noch eine"}}, NOW)
    assert refused.value.code == "slug-taken"
    assert [(f.pointer, f.code) for f in refused.value.fields] == [("/slug", "unique")]
    assert len(store.articles) == 1


# -- short links ---------------------------------------------------------------------------------------------

QR = {"target_kind": "survey", "target_url": "https://example.org/a", "target_id": None, "label": "Plakat"}


async def test_a_printed_code_is_retargeted_and_nulls_clear_only_id_and_label() -> None:
    uow, _ = unit()
    rec = await use_cases.create_qr(uow, TENANT, {**QR, "error_correction": "Q"}, NOW, code=lambda: "abcd2345")
    assert rec["code"] == "abcd2345"
    changes = {"target_kind": "url", "target_url": "https://example.org/b", "label": None, "error_correction": None}
    out = await use_cases.retarget_qr(uow, TENANT, "abcd2345", changes, NOW)
    assert out["target_url"] == "https://example.org/b" and out["target_kind"] == "url"
    assert out["label"] is None and out["error_correction"] == "Q"  # null keeps the level, clears the label


async def test_retargeting_another_tenants_code_is_not_found() -> None:
    uow, _ = unit()
    await use_cases.create_qr(uow, TENANT, {**QR, "error_correction": "M"}, NOW, code=lambda: "abcd2345")
    with pytest.raises(NotFound):
        await use_cases.retarget_qr(uow, "kreis-dithmarschen", "abcd2345", {"target_url": "https://x.example"}, NOW)


async def test_a_taken_code_is_drawn_again_and_giving_up_is_unavailable() -> None:
    uow, store = unit()
    draws = iter(["taken234", "taken234", "fresh234"])
    await use_cases.create_qr(uow, TENANT, {**QR, "error_correction": "M"}, NOW, code=lambda: "taken234")
    rec = await use_cases.create_qr(uow, TENANT, {**QR, "error_correction": "M"}, NOW, code=lambda: next(draws))
    assert rec["code"] == "fresh234"
    with pytest.raises(Unavailable):
        await use_cases.create_qr(uow, TENANT, {**QR, "error_correction": "M"}, NOW, code=lambda: "taken234")
    assert sorted(store.qr_codes) == ["fresh234", "taken234"]


# -- the process page: built once per version ----------------------------------------------------------------


async def page(stores: AbstractAsyncContextManager[Store], pages: PageCache, lang: str = "de", **kw: Any) -> Page:
    return await use_cases.process_page(stores, pages, TENANT, "smart-city", lang, kw.pop("now", NOW), 1, 5, **kw)


async def test_the_process_page_is_built_once_per_version() -> None:
    _, store = unit()
    pages = PageCache()  # no listener: every request checks the version
    first = await page(on(store), pages)
    again = await page(on(store), pages)
    assert again.etag == first.etag and store.pages_built == 1 and store.versions_read == 2
    english = await page(on(store), pages, "en")
    assert english.etag != first.etag and store.pages_built == 2
    store.version = (2,)
    changed = await page(on(store), pages)
    assert store.pages_built == 3 and changed.etag != first.etag and changed.version == (2,)
    store.version = None
    with pytest.raises(NotFound):
        await page(on(store), pages)


async def test_while_notifications_arrive_a_cached_page_needs_no_connection() -> None:
    _, store = unit()
    listener = Listener(True)
    pages = PageCache(listener=listener)
    first = await page(on(store), pages, also=[("raw", b"")])
    assert (await page(unreachable(), pages, also=[("raw", b"lang=de")])).etag == first.etag
    # The route's keys for the raw requests, too: both spellings are answered before parsing from now on.
    assert pages.fresh(("raw", b""), NOW) is not None and pages.fresh(("raw", b"lang=de"), NOW) is not None

    # A notification for another tenant leaves the page alone; one for its tenant makes it ask again, and the
    # same version confirms it without building it again.
    pages.changed("another-tenant")
    await page(unreachable(), pages)
    pages.changed(TENANT)
    confirmed = await page(on(store), pages)
    assert confirmed.etag == first.etag and store.pages_built == 1 and store.versions_read == 2
    await page(unreachable(), pages)

    # Anything may have changed (the listener reconnected): everything asks again.
    pages.changed(None)
    store.version = (2,)
    await page(on(store), pages)
    assert store.pages_built == 2

    # While notifications do not arrive, every request checks the version.
    listener.listening = False
    await page(on(store), pages)
    assert store.versions_read == 4 and pages.fresh(("raw", b""), NOW) is None


async def test_a_cached_page_asks_again_when_the_clock_reaches_a_boundary() -> None:
    _, store = unit()
    pages = PageCache(listener=Listener(True))
    closes = NOW + timedelta(seconds=30)  # sooner than pages.LONGEST
    store.boundaries = [NOW - timedelta(days=1), closes]  # one passed already, one to come
    first = await page(on(store), pages)
    assert first.valid_until == closes
    await page(unreachable(), pages, now=closes - timedelta(seconds=1))
    store.version = (2,)  # the version counts the boundaries passed
    later = await page(on(store), pages, now=closes)
    assert later.etag != first.etag and store.pages_built == 2


async def test_a_page_read_while_a_change_was_notified_is_not_kept() -> None:
    _, store = unit()
    pages = PageCache(listener=Listener(True))
    store.while_building = lambda: pages.changed(TENANT)
    await page(on(store), pages)
    store.while_building = lambda: None
    await page(on(store), pages)  # asks again: what the first read saw may predate the change
    assert store.pages_built == 2
    await page(unreachable(), pages)


def test_preview_renders_as_a_stored_body_would() -> None:
    out = use_cases.preview("# Termin\n\n**Mittwoch** <script>alert(1)</script>")
    assert out["html"].startswith("<h1>Termin</h1>")
    assert "<strong>Mittwoch</strong>" in out["html"] and "script" not in out["html"]
