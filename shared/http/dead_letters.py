"""The dead letters of a service over HTTP, for operators (role ``admin``): the ``civic dlq`` commands as an API.

``shared/http/app.py`` mounts ``router_for(name)`` for every service under ``/api/<name>/admin/dead-letters``;
the routes call the functions ``civic dlq`` calls (``shared/bus/dead_letters.py``). Dead letters are an
operator's matter, not a tenant's: an admin token sees the service's dead letters of every tenant (each row
names its tenant where the entry did). The raw entry is never answered: it may hold sealed personal data, and
``civic dlq show`` on the command line is there for whoever must read it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from shared.bus import dead_letters
from shared.bus.consumer import Consumer
from shared.http.auth import Principal, require
from shared.http.openapi import problems
from shared.http.problems import Problem
from shared.service import context_of

Admin = Annotated[Principal, Depends(require("admin"))]
#: bigserial: a larger number names nothing (and must not reach PostgreSQL as an overflow).
DeadLetterId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class DeadLetterOut(BaseModel):
    id: int
    service: str
    stream: str
    entry_id: str
    event_id: UUID | None
    type: str | None
    tenant: str | None
    deliveries: int = Field(description="How often the entry was delivered before it was set aside.")
    status: Literal["open", "retried", "dropped"]
    error: str = Field(description="The last error (cut short in listings).")
    created_at: datetime
    resolved_at: datetime | None

    @classmethod
    def of(cls, service: str, row: Any) -> DeadLetterOut:
        return cls(service=service, **{k: row[k] for k in dead_letters.LISTED.split(", ")})


class RetryOut(BaseModel):
    retried: bool = Field(description="True: handled now (status `retried`); false: failed again (still `open`).")
    dead_letter: DeadLetterOut


def _not_found(dead_letter_id: int) -> Problem:
    return Problem(404, "Not Found", type_="not-found", detail=f"No dead letter {dead_letter_id}.")


def _not_open(row: Any) -> Problem:
    return Problem(
        409, "Conflict", type_="dead-letter-not-open", detail=f"The dead letter was already {row['status']}."
    )


def router_for(name: str) -> APIRouter:
    """The dead-letter routes of service ``name`` (one router per service: the operation ids name it)."""
    router = APIRouter(tags=["dead letters"])

    def consumer_of(request: Request) -> Consumer:
        for runtime in request.app.state.runtimes:
            if runtime.definition.name == name and runtime.consumer is not None:
                found: Consumer = runtime.consumer
                return found
        raise Problem(503, "Service Unavailable", type_="unavailable", detail=f"{name} is not running here.")

    async def fetch(request: Request, dead_letter_id: int) -> Any:
        async with context_of(request, name).pool.acquire() as conn:
            row = await dead_letters.one(conn, dead_letter_id)
        if row is None:
            raise _not_found(dead_letter_id)
        return row

    @router.get("", response_model=list[DeadLetterOut])
    async def list_dead_letters(
        request: Request,
        _admin: Admin,
        status: Annotated[Literal["open", "retried", "dropped", "all"], Query()] = "open",
    ) -> list[DeadLetterOut]:
        """The service's dead letters (default: the open ones), oldest first, each error cut to 200 characters."""
        async with context_of(request, name).pool.acquire() as conn:
            rows = await dead_letters.listing(conn, status)
        return [DeadLetterOut.of(name, r) for r in rows]

    @router.get("/{dead_letter_id}", response_model=DeadLetterOut)
    async def get_dead_letter(request: Request, _admin: Admin, dead_letter_id: DeadLetterId) -> DeadLetterOut:
        """One dead letter with its whole last error (not its raw entry)."""
        return DeadLetterOut.of(name, await fetch(request, dead_letter_id))

    @router.post("/{dead_letter_id}/retry", response_model=RetryOut, responses=problems(409))
    async def retry_dead_letter(request: Request, _admin: Admin, dead_letter_id: DeadLetterId) -> RetryOut:
        """Handle the entry again now, as ``civic dlq retry`` does. 409 when it was already retried or dropped,
        or cannot be handled as it is (it does not parse): drop it then."""
        try:
            ok = await dead_letters.retry(consumer_of(request), dead_letter_id)
        except dead_letters.NotOpen:
            raise _not_open(await fetch(request, dead_letter_id)) from None
        except dead_letters.Unretryable as exc:
            raise Problem(409, "Conflict", type_="dead-letter-unretryable", detail=str(exc)) from None
        except LookupError:
            raise _not_found(dead_letter_id) from None
        return RetryOut(retried=ok, dead_letter=DeadLetterOut.of(name, await fetch(request, dead_letter_id)))

    @router.post("/{dead_letter_id}/drop", response_model=DeadLetterOut, responses=problems(409))
    async def drop_dead_letter(request: Request, _admin: Admin, dead_letter_id: DeadLetterId) -> DeadLetterOut:
        """Set the entry aside for good (kept as a record, status ``dropped``), as ``civic dlq drop`` does."""
        row = await fetch(request, dead_letter_id)
        if row["status"] != "open":
            raise _not_open(row)
        async with context_of(request, name).pool.acquire() as conn:
            await dead_letters.drop(conn, dead_letter_id)
        return DeadLetterOut.of(name, await fetch(request, dead_letter_id))

    return router
