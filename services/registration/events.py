"""Recording a command's events about one meeting in few round trips: the meeting's lock is held meanwhile,
so every round trip saved is throughput in a registration rush."""

from __future__ import annotations

from collections.abc import Sequence

from shared.bus.outbox import Outbox, notify_channel
from shared.contracts.envelope import Payload
from shared.db import Conn


async def record(
    conn: Conn,
    outbox: Outbox,
    tenant: str,
    subject: str,
    payloads: Sequence[Payload],
    *,
    correlation_ids: Sequence[str | None] | None = None,
    traceparents: Sequence[str | None] | None = None,
) -> None:
    """Like ``Outbox.record_many`` for one subject: one statement reserves the sequence numbers, one writes the
    rows and wakes the relay at commit. ``correlation_ids`` (one per payload) for events of several requests
    recorded together; otherwise the current request's or event's."""
    if not payloads:
        return
    if not conn.is_in_transaction():
        raise RuntimeError("events must be recorded in the transaction of the state change")
    last = await conn.fetchval(
        "insert into aggregate_sequences (subject, last) values ($1, $2) "
        "on conflict (subject) do update set last = aggregate_sequences.last + $2 returning last",
        subject,
        len(payloads),
    )
    first = int(last) - len(payloads) + 1
    correlations = correlation_ids or [None] * len(payloads)
    traces = traceparents or [None] * len(payloads)
    envs = [
        outbox.envelope(p, tenant=tenant, subject=subject, sequence=first + i, correlation_id=c, traceparent=t)
        for i, (p, c, t) in enumerate(zip(payloads, correlations, traces, strict=True))
    ]
    await conn.execute(
        "with rows as (insert into outbox (id, tenant, stream, type, subject, envelope) "
        "select * from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) returning 1) "
        "select pg_notify($7, '') from (select count(*) from rows) as done",
        [e.id for e in envs],
        [e.tenant for e in envs],
        [outbox.registry.get(e.type).stream for e in envs],
        [e.type for e in envs],
        [e.subject for e in envs],
        [e.model_dump_json() for e in envs],
        notify_channel(outbox.service),
    )
