"""Recording events in the same transaction as the state change they describe."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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


#: Numbers ``$2[i]`` events of subject ``$1[i]``; returns (subject, last number reserved) per subject reserved.
RESERVE_SEQUENCES = "select subject, last from reserve_sequences($1::text[], $2::bigint[])"


@dataclass(frozen=True)
class Reserved:
    """Sequence numbers reserved for ``count`` events of a subject, the last of them ``last``."""

    last: int
    count: int


@dataclass(frozen=True)
class Pending:
    """An event to record: its payload, tenant and subject (the aggregate it is about, which numbers it).
    Correlation, cause and trace default to the current request's or handled event's."""

    payload: Payload
    tenant: str
    subject: str | None = None
    correlation_id: str | None = None
    causation_id: str | UUID | None = None
    traceparent: str | None = None


def first_reserved(events: Sequence[Pending], reserved: Mapping[str, Reserved]) -> dict[str, int]:
    """The first number reserved per subject, once it is checked that ``events`` are exactly as many per
    subject as were reserved (fewer would leave a gap in the subject's numbers, more would reuse one)."""
    counts = Counter(e.subject for e in events if e.subject is not None)
    if {s: r.count for s, r in reserved.items() if r.count} != dict(counts):
        raise RuntimeError(f"events {dict(counts)} do not match the numbers reserved for them {dict(reserved)}")
    return {s: r.last - r.count + 1 for s, r in reserved.items() if r.count}


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
        # (Looked up among the model's fields: getattr on a payload without one raises and catches per event.)
        named = payload.__dict__.get("cause_event_id") if "cause_event_id" in type(payload).model_fields else None
        cause = causation_id or named or event_id_var.get()
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
        """One event; see ``write``."""
        pending = Pending(payload, tenant, subject, correlation_id=correlation_id, causation_id=causation_id)
        return (await self.write(conn, [pending]))[0]

    async def write(
        self, conn: Conn, events: Sequence[Pending], *, reserved: Mapping[str, Reserved] | None = None
    ) -> list[Envelope]:
        """The outbox's one writer: record ``events`` in the caller's transaction, in the order given.

        One statement reserves the sequence numbers of every subject among them (events of one subject get
        consecutive numbers), one writes the rows through the bus's ``record_events`` SQL function, which also
        wakes the relay at commit. Without a subject, a single round trip. ``reserved``: the numbers were
        reserved already, by the caller's own statement in this transaction (``reserve_sequences``, see
        ``RESERVE_SEQUENCES``): then the rows are all that is written, and the events must be exactly as many
        per subject as were reserved.
        """
        if not events:
            return []
        if not conn.is_in_transaction():
            raise RuntimeError("events must be recorded in the transaction of the state change they describe")
        counts = Counter(e.subject for e in events if e.subject is not None)
        next_sequence: dict[str, int] = {}
        if reserved is not None:
            next_sequence = first_reserved(events, reserved)
        elif counts:
            subjects = sorted(counts)
            rows = await conn.fetch(RESERVE_SEQUENCES, subjects, [counts[s] for s in subjects])
            next_sequence = {r["subject"]: r["last"] - counts[r["subject"]] + 1 for r in rows}
        envs = []
        for e in events:
            seq = None
            if e.subject is not None:
                seq = next_sequence[e.subject]
                next_sequence[e.subject] = seq + 1
            envs.append(
                self.envelope(
                    e.payload,
                    tenant=e.tenant,
                    subject=e.subject,
                    sequence=seq,
                    correlation_id=e.correlation_id,
                    causation_id=e.causation_id,
                    traceparent=e.traceparent,
                )
            )
        await conn.execute(
            "select record_events($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7)",
            [e.id for e in envs],
            [e.tenant for e in envs],
            [self.registry.get(e.type).stream for e in envs],
            [e.type for e in envs],
            [e.subject for e in envs],
            [e.model_dump_json() for e in envs],
            notify_channel(self.service),
        )
        return envs
