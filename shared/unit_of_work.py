"""The unit of work: one transaction with the outbox attached, so a use case's state change and its events
commit together or not at all.

A use case takes a ``UnitOfWork`` and never sees a pool or a transaction::

    async def cancel_registration(uow: UnitOfWork[Store], ...) -> ...:
        async with uow:
            row = await uow.store.registration(...)
            ...
            await uow.record(RegistrationCancelledV2(...), tenant=tenant, subject=f"meeting/{meeting_id}")

``store`` is the service's ``store.py`` class bound to the transaction's connection (all SQL of the service
lives there). Leaving the block without an exception commits; an exception rolls back and passes on.

``PostgresUnitOfWork`` opens a transaction on a pooled connection; ``joined`` runs inside a transaction that is
already open (an event handler's, whose commit the consumer owns, together with the processed-event row);
``FakeUnitOfWork`` holds a fake store and collects the events, for unit tests of use cases.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar
from uuid import UUID

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from asyncpg.transaction import Transaction

from shared.bus.outbox import Outbox, Pending, Reserved, first_reserved
from shared.contracts.envelope import Envelope, Payload
from shared.db import Conn

S = TypeVar("S")


class UnitOfWork(Protocol[S]):
    store: S

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def record(
        self,
        payload: Payload,
        *,
        tenant: str,
        subject: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | UUID | None = None,
    ) -> Envelope: ...

    async def write(
        self, events: Sequence[Pending], *, reserved: Mapping[str, Reserved] | None = None
    ) -> list[Envelope]: ...


class PostgresUnitOfWork(Generic[S]):
    """A transaction on a connection from ``pool`` (or on ``conn``, joined: see ``joined``)."""

    def __init__(
        self,
        pool: asyncpg.Pool | None,
        outbox: Outbox,
        store: Callable[[Conn], S],
        *,
        conn: Conn | None = None,
    ) -> None:
        self._pool = pool
        self._outbox = outbox
        self._make_store = store
        self._conn = conn
        self._joined = conn is not None
        self._pooled: PoolConnectionProxy | None = None
        self._tx: Transaction | None = None
        self.store: S

    @classmethod
    def joined(cls, conn: Conn, outbox: Outbox, store: Callable[[Conn], S]) -> PostgresUnitOfWork[S]:
        """A unit of work inside ``conn``'s open transaction: it neither commits nor rolls back."""
        return cls(None, outbox, store, conn=conn)

    @property
    def conn(self) -> Conn:
        assert self._conn is not None, "use the unit of work inside `async with`"
        return self._conn

    async def __aenter__(self) -> Self:
        if not self._joined:
            assert self._pool is not None
            self._pooled = await self._pool.acquire()
            self._conn = self._pooled
            try:
                self._tx = self._pooled.transaction()
                await self._tx.start()
            except BaseException:
                await self._pool.release(self._pooled)
                self._conn = self._pooled = None
                raise
        elif not self.conn.is_in_transaction():
            raise RuntimeError("a joined unit of work needs an open transaction")
        self.store = self._make_store(self.conn)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._joined:
            return
        assert self._pool is not None and self._pooled is not None and self._tx is not None
        try:
            if kind is None:
                await self._tx.commit()
            else:
                await self._tx.rollback()
        finally:
            pooled, self._pooled, self._conn, self._tx = self._pooled, None, None, None
            await self._pool.release(pooled)

    async def record(
        self,
        payload: Payload,
        *,
        tenant: str,
        subject: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | UUID | None = None,
    ) -> Envelope:
        return await self._outbox.record(
            self.conn,
            payload,
            tenant=tenant,
            subject=subject,
            correlation_id=correlation_id,
            causation_id=causation_id,
        )

    async def write(
        self, events: Sequence[Pending], *, reserved: Mapping[str, Reserved] | None = None
    ) -> list[Envelope]:
        return await self._outbox.write(self.conn, events, reserved=reserved)


class UnitsOfWork(Generic[S]):
    """What a service's routes, handlers and loops hold: makes a unit of work per use case call.

    ``uows()`` for a new transaction, ``uows.joined(conn)`` for a handler's; ``uows.reading()`` hands a store on
    a pooled connection without a transaction, for queries (one round trip less than BEGIN ... COMMIT).
    """

    def __init__(self, pool: asyncpg.Pool, outbox: Outbox, store: Callable[[Conn], S]) -> None:
        self.pool = pool
        self.outbox = outbox
        self.store = store

    def __call__(self) -> PostgresUnitOfWork[S]:
        return PostgresUnitOfWork(self.pool, self.outbox, self.store)

    def joined(self, conn: Conn) -> PostgresUnitOfWork[S]:
        return PostgresUnitOfWork.joined(conn, self.outbox, self.store)

    def reading(self) -> Reading[S]:
        return Reading(self.pool, self.store)


class Reading(Generic[S]):
    """``async with uows.reading() as store:`` a store on a pooled connection, outside any transaction."""

    def __init__(self, pool: asyncpg.Pool, store: Callable[[Conn], S]) -> None:
        self._pool = pool
        self._make_store = store
        self._conn: PoolConnectionProxy | None = None

    async def __aenter__(self) -> S:
        self._conn = await self._pool.acquire()
        return self._make_store(self._conn)

    async def __aexit__(self, *exc: object) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._pool.release(conn)


class FakeUnitOfWork(Generic[S]):
    """For unit tests of use cases: ``store`` is a fake of the service's store (``service`` the producer, whose
    contracts decide which payloads it may record); recorded events land in ``events`` only when the block
    commits, as they would in the outbox."""

    def __init__(self, store: S, service: str) -> None:
        self.store = store
        # A real outbox's envelopes: a payload the service does not produce is refused here too.
        self._outbox = Outbox(service)
        self.events: list[Pending] = []
        self.commits = 0
        self.rollbacks = 0
        self._pending: list[Pending] = []

    async def __aenter__(self) -> Self:
        self._pending = []
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self.events.extend(self._pending)
            self.commits += 1
        else:
            self.rollbacks += 1
        self._pending = []

    async def record(
        self,
        payload: Payload,
        *,
        tenant: str,
        subject: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | UUID | None = None,
    ) -> Envelope:
        pending = Pending(payload, tenant, subject, correlation_id=correlation_id, causation_id=causation_id)
        return (await self.write([pending]))[0]

    async def write(
        self, events: Sequence[Pending], *, reserved: Mapping[str, Reserved] | None = None
    ) -> list[Envelope]:
        if reserved is not None:
            first_reserved(events, reserved)  # checked as the real outbox checks them
        envs = [
            self._outbox.envelope(e.payload, tenant=e.tenant, subject=e.subject, correlation_id=e.correlation_id)
            for e in events
        ]
        self._pending.extend(events)
        return envs

    def payloads(self) -> list[Any]:
        return [e.payload for e in self.events]
