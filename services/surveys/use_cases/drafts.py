"""Save and resume without an account: a draft holds a person's answers so far, found by a random resume code
shown to them once (only a keyed hash of it is stored); it ends with its survey's window or its submission."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.surveys import domain
from services.surveys.domain import Survey
from services.surveys.use_cases.common import Units, answerable, questionnaire


@dataclass(frozen=True)
class Draft:
    survey: Survey
    questionnaire: domain.Questionnaire
    answers: dict[str, Any]
    #: The resume code, only when the draft was just started.
    code: str | None = None


async def start_draft(uows: Units, tenant: str, ref: str, *, now: datetime) -> Draft:
    """A new, empty draft; its resume code is returned this once."""
    async with uows.reading() as store:
        s, secret = await answerable(store, tenant, ref)
        domain.check_open(s, now)
        code = domain.new_code(domain.RESUME_CODE_LENGTH)
        await store.add_draft(tenant, s.id, domain.code_hash(secret, code), s.closes_at)
        return Draft(s, await questionnaire(store, s), {}, code)


async def read_draft(uows: Units, tenant: str, ref: str, code: str, *, now: datetime) -> Draft:
    async with uows.reading() as store:
        s, secret = await answerable(store, tenant, ref)
        domain.check_open(s, now)
        answers = await store.draft(tenant, s.id, domain.code_hash(secret, code), now)
        if answers is None:
            raise domain.draft_not_found()
        return Draft(s, await questionnaire(store, s), answers)


async def save_draft_section(
    uows: Units, tenant: str, ref: str, code: str, section_id: str, answers: dict[str, Any], *, partial: bool,
    now: datetime,
) -> Draft:  # fmt: skip
    """Answers of one section into the draft, checked as a submission would check them (bad answers:
    one 422 problem listing each, and nothing is saved)."""
    async with uows() as uow:
        s, secret = await answerable(uow.store, tenant, ref)
        domain.check_open(s, now)
        qn = await questionnaire(uow.store, s)
        section = domain.section_of(qn, section_id)
        if section is None:
            raise domain.not_found("section")
        code_hash = domain.code_hash(secret, code)
        stored = await uow.store.draft(tenant, s.id, code_hash, now, for_update=True)
        if stored is None:
            raise domain.draft_not_found()
        saved, errors = domain.save_section(qn, stored, section, answers, partial=partial)
        if errors:
            raise domain.invalid_answers(errors)
        await uow.store.save_draft(tenant, s.id, code_hash, saved)
    return Draft(s, qn, saved)


async def delete_draft(uows: Units, tenant: str, ref: str, code: str) -> None:
    async with uows.reading() as store:
        s, secret = await answerable(store, tenant, ref)
        if not await store.delete_draft(tenant, s.id, domain.code_hash(secret, code)):
            raise domain.draft_not_found()
