"""Single-use access codes of letter-based surveys: issued by staff, checked before answering, used up by the
response (``responses.submit``)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from services.surveys import domain
from services.surveys.use_cases.common import Units, answerable, survey
from shared.errors import Conflict, Invalid


async def issue_codes(uows: Units, tenant: str, survey_id: UUID, count: int, *, most: int) -> list[str]:
    """New single-use codes; only their keyed hashes are stored, so they are shown this once."""
    if count > most:
        raise Invalid("too-many-tokens", detail="too many codes in one request")
    async with uows() as uow:
        s = await survey(uow.store, tenant, survey_id, for_update=True)
        if s.access != "token":
            raise domain.not_a_token_survey()
        if s.state == "closed":
            raise Conflict("survey-closed", detail="the survey is closed")
        secret = await uow.store.token_secret(tenant, survey_id)
        codes = list({domain.new_code() for _ in range(count)})
        await uow.store.add_codes(tenant, survey_id, [domain.code_hash(secret, c) for c in codes])
    return codes


async def check_code(uows: Units, tenant: str, ref: str, code: str, *, now: datetime) -> None:
    """Whether a letter's access code is known and unused (using it up is the submission's job)."""
    async with uows.reading() as store:
        s, secret = await answerable(store, tenant, ref)
        domain.check_open(s, now)
        if s.access != "token":
            raise domain.not_a_token_survey()
        if not await store.code_usable(tenant, s.id, domain.code_hash(secret, code)):
            raise domain.code_invalid()
