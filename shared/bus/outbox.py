"""Recording events in the same transaction as the state change they describe."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from uuid import UUID, uuid4

from shared.clock import Clock, SystemClock
from shared.contracts.envelope import Envelope, Payload
from shared.contracts.registry import REGISTRY, Registry
from shared.db import Conn
from shared.logs import current_correlation_id, event_id_var
from shared.tracing import current_traceparent


def notify_channel(service: str) -> str:
    return f"civic_outbox_{service}"


class Outbox:
    """The outbox of one producing service. ``record`` must run inside the caller's transaction."""

    def __init__(self, service: str, *, clock: Clock | None = None, registry: Registry = REGISTRY) -> None:
        self.service = service
        self.clock = clock or SystemClock()
        self.registry = registry

    def envelope(
        self,
        payload: Payload,
        *,
        tenant: str,
        subject: str | None,
        sequence: int | None = None,
        correlation_id: str | None = None,
        causation_id: str | UUID | None = None,
        time: datetime | None = None,
        traceparent: str | None = None,
    ) -> Envelope:
        spec = self.registry.for_payload(self.service, payload)
        # Within a handler the event being handled is the cause and its correlation id carries on; within
        # a request the request id starts the chain. A payload that names the event it answers (a delivery's
        # ``cause_event_id``: mails and webhooks go out after the handler returned) names the cause itself.
        cause = causation_id or getattr(payload, "cause_event_id", None) or event_id_var.get()
        return Envelope(
            id=uuid4(),
            source=f"/civic/{self.service}",
            type=spec.type,
            time=time or self.clock.now(),
            subject=subject,
            dataschema=f"urn:civic:event:{spec.type}",
            tenant=tenant,
            correlationid=correlation_id or current_correlation_id(),
            causationid=str(cause) if cause else None,
            aggregatesequence=sequence,
            # CloudEvents' distributed tracing extension; absent unless traces are exported.
            **({"traceparent": tp} if (tp := traceparent or current_traceparent()) else {}),
            data=payload.model_dump(mode="json"),
        )

    async def record(
        self,
        conn: Conn,
        payload: Payload,
        *,
        tenant: str,
        subject: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | UUID | None = None,
    ) -> Envelope:
        if not conn.is_in_transaction():
            raise RuntimeError("Outbox.record must run inside the transaction of the state change")
        sequence = None
        if subject is not None:
            sequence = await conn.fetchval(
                "insert into aggregate_sequences (subject, last) values ($1, 1) "
                "on conflict (subject) do update set last = aggregate_sequences.last + 1 returning last",
                subject,
            )
        env = self.envelope(
            payload,
            tenant=tenant,
            subject=subject,
            sequence=sequence,
            correlation_id=correlation_id,
            causation_id=causation_id,
        )
        await conn.execute(
            "insert into outbox (id, tenant, stream, type, subject, envelope) values ($1, $2, $3, $4, $5, $6);",
            env.id,
            tenant,
            self.registry.get(env.type).stream,
            env.type,
            subject,
            env.model_dump_json(),
        )
        # Delivered at commit, and only then: wakes the relay without polling.
        await conn.execute("select pg_notify($1, '')", notify_channel(self.service))
        return env

    async def record_many(self, conn: Conn, items: list[tuple[Payload, str, str | None]]) -> list[Envelope]:
        """Record several events (payload, tenant, subject) with one round trip for the sequence numbers and
        one for the rows. Events of one subject get consecutive sequence numbers in the order given."""
        counts = Counter(subject for _, _, subject in items if subject is not None)
        next_sequence: dict[str, int] = {}
        if counts:
            subjects = sorted(counts)  # rows locked in one order: concurrent writers cannot deadlock
            rows = await conn.fetch(
                "insert into aggregate_sequences as a (subject, last) "
                "select u.subject, u.n from unnest($1::text[], $2::bigint[]) as u(subject, n) order by u.subject "
                "on conflict (subject) do update set last = a.last + excluded.last returning subject, last",
                subjects,
                [counts[s] for s in subjects],
            )
            next_sequence = {r["subject"]: r["last"] - counts[r["subject"]] + 1 for r in rows}
        envs = []
        for payload, tenant, subject in items:
            seq = None
            if subject is not None:
                seq = next_sequence[subject]
                next_sequence[subject] = seq + 1
            envs.append(self.envelope(payload, tenant=tenant, subject=subject, sequence=seq))
        await conn.executemany(
            "insert into outbox (id, tenant, stream, type, subject, envelope) values ($1, $2, $3, $4, $5, $6)",
            [(e.id, e.tenant, self.registry.get(e.type).stream, e.type, e.subject, e.model_dump_json()) for e in envs],
        )
        await conn.execute("select pg_notify($1, '')", notify_channel(self.service))
        return envs
