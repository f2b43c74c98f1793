"""A survey's life: drafted and changed by staff, published (frozen), opened and closed on time by the clock,
and, for token surveys, its rows mixed so nothing pairs a code with its response."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from services.surveys import domain
from services.surveys.domain import Survey
from services.surveys.store import SlugTaken, Store
from services.surveys.use_cases.common import Units, public_survey, survey
from shared.contracts.surveys import SurveyClosedV1, SurveyOpenedV1, SurveyPublishedV1
from shared.errors import Conflict


@dataclass(frozen=True)
class SurveyCommand:
    """What staff set of a survey (create and replace); ``definition`` is the questionnaire (its sections)."""

    title: str
    opens_at: datetime
    closes_at: datetime
    definition: dict[str, Any]
    slug: str | None = None
    introduction: str = ""
    estimated_minutes: int | None = None
    results_public: bool = False
    process_id: UUID | None = None
    access: str = "public"
    #: Hours before closing at which "deadline approaching" goes out; the service's default if None.
    reminder_offsets_hours: list[int] | None = None


def _checked(cmd: SurveyCommand, default_reminders: list[int]) -> dict[str, Any]:
    """The columns to store, once the survey passes the rules (else one 422 listing every problem)."""
    hours = cmd.reminder_offsets_hours if cmd.reminder_offsets_hours is not None else default_reminders
    offsets = [h * 3600 for h in hours]
    domain.check_settings(cmd.opens_at, cmd.closes_at, domain.questionnaire_from_dict(cmd.definition), offsets)
    fields = asdict(cmd)
    del fields["slug"], fields["reminder_offsets_hours"]
    return fields | {"reminder_offsets": offsets}


async def create(
    uows: Units, tenant: str, cmd: SurveyCommand, *, now: datetime, default_reminders: list[int]
) -> Survey:
    fields = _checked(cmd, default_reminders)
    sid = uuid4()
    slug = cmd.slug or str(sid)
    async with uows() as uow:
        s = await uow.store.insert_survey(sid, tenant, slug, fields, secrets.token_bytes(32), now)
        if s is None:
            raise Conflict("slug-taken", detail=f"the slug {slug!r} is already used")
    return s


async def replace(
    uows: Units, tenant: str, survey_id: UUID, cmd: SurveyCommand, *, now: datetime, default_reminders: list[int]
) -> Survey:
    fields = _checked(cmd, default_reminders)
    async with uows() as uow:
        s = await survey(uow.store, tenant, survey_id, for_update=True)
        if s.state != "draft":
            raise domain.frozen(s)
        try:
            return await uow.store.update_survey(tenant, survey_id, cmd.slug or s.slug, fields, now)
        except SlugTaken:
            raise Conflict("slug-taken", detail="the slug is already used") from None


async def publish(uows: Units, tenant: str, survey_id: UUID, *, now: datetime, url: Callable[[Survey], str]) -> Survey:
    """Freeze the draft: it opens and closes on time from now on, and its reminders are scheduled."""
    async with uows() as uow:
        s = await survey(uow.store, tenant, survey_id, for_update=True)
        domain.check_publishable(s, now)
        s = await uow.store.mark_published(tenant, survey_id, now)
        await uow.store.schedule_closing(s)
        await uow.record(
            SurveyPublishedV1(
                survey_id=s.id,
                title=s.title,
                opens_at=s.opens_at,
                closes_at=s.closes_at,
                url=url(s),
                process_id=s.process_id,
                results_public=s.results_public,
            ),
            tenant=tenant,
            subject=f"survey/{s.id}",
        )
    return s


# --- reading -------------------------------------------------------------------------------------


async def all_surveys(uows: Units, tenant: str) -> list[Survey]:
    async with uows.reading() as store:
        return await store.surveys(tenant)


async def staff_survey(uows: Units, tenant: str, survey_id: UUID) -> Survey:
    async with uows.reading() as store:
        return await survey(store, tenant, survey_id)


async def public(uows: Units, tenant: str, ref: str) -> Survey:
    """A published survey by id or slug, as its public link names it."""
    async with uows.reading() as store:
        return await public_survey(store, tenant, ref)


async def _with_sections(store: Store, s: Survey) -> dict[str, Any]:
    definition = await store.definition(s.tenant, s.id)
    # A section given without an id has the one the questionnaire gives it (s1, s2, ...), so clients can
    # name it, e.g. when saving a draft's section.
    for i, section in enumerate(definition.get("sections", [])):
        section.setdefault("id", f"s{i + 1}")
    return dict(definition)


async def staff_survey_with_questions(uows: Units, tenant: str, survey_id: UUID) -> tuple[Survey, dict[str, Any]]:
    async with uows.reading() as store:
        s = await survey(store, tenant, survey_id)
        return s, await _with_sections(store, s)


async def public_survey_with_questions(uows: Units, tenant: str, ref: str) -> tuple[Survey, dict[str, Any]]:
    async with uows.reading() as store:
        s = await public_survey(store, tenant, ref)
        return s, await _with_sections(store, s)


# --- the clock -----------------------------------------------------------------------------------


async def tick(uows: Units, now: datetime) -> list[tuple[str, UUID]]:
    """Open and close the surveys whose time has come; each transition (and its event) happens once,
    because the state change is guarded in SQL and the event is recorded in its transaction."""
    done: list[tuple[str, UUID]] = []
    async with uows() as uow:
        for r in await uow.store.open_due(now):
            await uow.record(
                SurveyOpenedV1(
                    survey_id=r["id"], title=r["title"], closes_at=r["closes_at"], process_id=r["process_id"]
                ),
                tenant=r["tenant"],
                subject=f"survey/{r['id']}",
            )
            done.append(("opened", r["id"]))
    async with uows.reading() as store:
        # Drafts end with their survey's window; nothing of them is kept after it.
        await store.delete_expired_drafts(now)
        due = await store.due_to_close(now)
    for tenant, survey_id in due:
        if await close(uows, tenant, survey_id, now):
            done.append(("closed", survey_id))
    return done


async def close(uows: Units, tenant: str, survey_id: UUID, now: datetime) -> bool:
    """Close a survey that is due (False when it was closed already) with its final count of responses."""
    async with uows() as uow:
        # Exclusive against responses: the count below is final.
        await uow.store.lock_exclusively(survey_id)
        closed = await uow.store.mark_closed(tenant, survey_id, now)
        if closed is None:
            return False
        count = await uow.store.response_count(tenant, survey_id)
        await uow.record(
            SurveyClosedV1(survey_id=survey_id, closed_at=now, responses=count, process_id=closed["process_id"]),
            tenant=tenant,
            subject=f"survey/{survey_id}",
        )
    return True


# --- unlinkability -------------------------------------------------------------------------------


async def unmixed(uows: Units) -> list[tuple[str, UUID]]:
    async with uows.reading() as store:
        return await store.unmixed()


async def mix(uows: Units, tenant: str, survey_id: UUID) -> None:
    """Rewrite a token survey's codes, responses and texts in one transaction and in random order.

    A response and the code it used up were written by one transaction, so until now they share a
    transaction id (xmin) and sit at the same end of their tables. Afterwards every row of the survey
    carries this transaction's id and a random place; the old row versions are dead and go with vacuum.
    """
    async with uows() as uow:
        await uow.store.lock_exclusively(survey_id)
        await uow.store.mix(tenant, survey_id)
