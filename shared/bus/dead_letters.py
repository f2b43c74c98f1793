"""The dead letters of one service (its ``dead_letters`` table, written by ``shared/bus/consumer.py``): listing,
dropping and retrying them. ``civic dlq`` and the services' admin API (``shared/http/dead_letters.py``) both use
these functions, so the command line and the operations page act alike.

Retrying needs the service's consumer (its handlers): ``Consumer.retry_dead_letter`` handles the entry again in
one transaction and marks it ``retried``, or keeps it ``open`` with the new error. ``retry`` here turns an entry
that does not parse or that the service does not handle into ``Unretryable`` instead of an exception nobody
expects.
"""

from __future__ import annotations

from typing import Any, Literal

from shared.bus.consumer import Consumer
from shared.db import Conn

Status = Literal["open", "retried", "dropped", "all"]

#: What a listing shows of each entry: never ``raw``, which may hold sealed personal data.
LISTED = "id, stream, entry_id, event_id, type, tenant, deliveries, status, created_at, resolved_at, error"


class Unretryable(Exception):
    """The entry cannot be handled as it is (it does not parse, or the service does not handle its type)."""


class NotOpen(Exception):
    """The dead letter was already retried or dropped."""


async def listing(conn: Conn, status: Status | str = "open", *, limit: int = 500, error_chars: int = 200) -> list[Any]:
    """The service's dead letters of ``status`` (``all``: every one), oldest first, the error cut short."""
    return list(
        await conn.fetch(
            f"select {LISTED.replace('error', 'left(error, $3) as error')} from dead_letters"
            " where $1 = 'all' or status = $1 order by id limit $2",
            status,
            limit,
            error_chars,
        )
    )


async def one(conn: Conn, dead_letter_id: int, *, raw: bool = False) -> Any:
    """One dead letter (with its raw entry only when ``raw``), or None."""
    columns = "*" if raw else LISTED
    return await conn.fetchrow(f"select {columns} from dead_letters where id = $1", dead_letter_id)


async def drop(conn: Conn, dead_letter_id: int) -> bool:
    """Mark an open dead letter dropped (it is kept as a record); False when there is no open one of that id.
    Dropping twice changes nothing."""
    done = await conn.execute(
        "update dead_letters set status = 'dropped', resolved_at = now() where id = $1 and status = 'open'",
        dead_letter_id,
    )
    return str(done).endswith(" 1")


async def retry(consumer: Consumer, dead_letter_id: int) -> bool:
    """Handle the dead letter again now: True if it went through (now ``retried``), False if it failed again
    (still ``open``, with the new error). ``LookupError`` when there is no such dead letter; ``Unretryable``
    when it cannot be handled as it is; ``NotOpen`` when it was already retried or dropped (a second click
    handles nothing twice)."""
    async with consumer.pool.acquire() as conn:
        status = await conn.fetchval("select status from dead_letters where id = $1", dead_letter_id)
    if status is None:
        raise LookupError(f"no dead letter {dead_letter_id}")
    if status != "open":
        raise NotOpen(f"dead letter {dead_letter_id} is {status}")
    try:
        return await consumer.retry_dead_letter(dead_letter_id)
    except LookupError as exc:  # also UnknownEventType: a type the registry does not know
        if str(exc).startswith("no dead letter"):
            raise
        raise Unretryable(str(exc)) from None
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise Unretryable(f"the entry does not parse: {str(exc)[:300]}") from None
