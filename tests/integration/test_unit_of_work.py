"""The unit of work commits a state change and its events together, or neither."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import pytest
import redis.asyncio as aioredis

from shared.contracts.content import QrScannedV1
from shared.db import Conn
from shared.settings import Settings
from shared.unit_of_work import UnitsOfWork
from tests.integration.bus_fixtures import BusRig, make_rig


class Store:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def add_note(self, text: str) -> None:
        await self.conn.execute("create table if not exists uow_notes (text text)")
        await self.conn.execute("insert into uow_notes values ($1)", text)


@pytest.fixture
async def rig(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[BusRig]:
    r = await make_rig(settings, redis)
    try:
        yield r
    finally:
        await r.close()


def _scan(n: int) -> QrScannedV1:
    return QrScannedV1(code=f"u{n}", target_kind="survey", day=date(2021, 10, 1), scans=n)


async def test_commit_writes_state_and_events_together(rig: BusRig) -> None:
    uows = UnitsOfWork(rig.producer_pool, rig.outbox, Store)
    async with uows() as uow:
        await uow.store.add_note("kept")
        await uow.record(_scan(1), tenant="stadt-a", subject="qr/u")
        await uow.record(_scan(2), tenant="stadt-a", subject="qr/u")
    notes = await rig.producer_pool.fetch("select text from uow_notes")
    rows = await rig.producer_pool.fetch("select type, subject, envelope from outbox order by position")
    assert [r["text"] for r in notes] == ["kept"]
    assert [r["subject"] for r in rows] == ["qr/u", "qr/u"]
    assert ['"aggregatesequence":1' in r["envelope"] for r in rows] == [True, False]


async def test_an_exception_rolls_back_state_and_events(rig: BusRig) -> None:
    uows = UnitsOfWork(rig.producer_pool, rig.outbox, Store)
    async with uows() as uow:
        await uow.store.add_note("first")
    with pytest.raises(LookupError):
        async with uows() as uow:
            await uow.store.add_note("lost")
            await uow.record(_scan(3), tenant="stadt-a")
            raise LookupError("refused")
    assert [r["text"] for r in await rig.producer_pool.fetch("select text from uow_notes")] == ["first"]
    assert await rig.producer_pool.fetchval("select count(*) from outbox") == 0
    # The connection went back to the pool in both cases.
    assert rig.producer_pool.get_idle_size() == rig.producer_pool.get_size()


async def test_a_joined_unit_of_work_leaves_the_commit_to_its_owner(rig: BusRig) -> None:
    uows = UnitsOfWork(rig.producer_pool, rig.outbox, Store)
    async with rig.producer_pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        async with uows.joined(conn) as uow:
            await uow.store.add_note("handler")
            await uow.record(_scan(4), tenant="stadt-a")
        await tx.rollback()
    assert await rig.producer_pool.fetchval("select count(*) from outbox") == 0
    assert await rig.producer_pool.fetchval("select to_regclass('uow_notes')") is None
