"""The send queue's migration takes over what an installation had queued, failed or on the wire before it."""

from __future__ import annotations

import secrets

import asyncpg

from services.notifications.service import definition
from shared import db

STATES = ("queued", "failed", "sending", "sent", "given_up")


async def test_rows_still_to_send_move_to_the_queue_and_a_lease_stays_a_lease(database_url: str) -> None:
    schema = f"notif_mig_{secrets.token_hex(3)}"
    migrations = definition.all_migrations()
    before = [m for m in migrations if not m.version.endswith("004_send_queue")]
    assert len(before) == len(migrations) - 1
    await db.migrate(database_url, schema, before)
    conn = await asyncpg.connect(database_url, server_settings={"search_path": schema})
    try:
        for i, state in enumerate(STATES):
            await conn.execute(
                "insert into deliveries (tenant, cause_event_id, channel, recipient_key, template, transactional,"
                " address, state, attempts, next_attempt_at, lease_until, created_at)"
                " values ('kreis-test', gen_random_uuid(), 'email', $1, 'confirmed', true, $2, $3, $4,"
                " now() + interval '1 minute', case when $3 = 'sending' then now() + interval '5 minutes' end,"
                " now())",
                f"k{i}",
                f"{state}@example.org",
                state,
                2 if state in ("failed", "sending") else 0,
            )
        await db.migrate(database_url, schema, migrations)
        queue = {
            r["address"]: r
            for r in await conn.fetch(
                "select d.address, d.state, q.attempts, q.lease_until, q.due_at = d.next_attempt_at as due"
                " from send_queue q join deliveries d on d.id = q.delivery_id"
            )
        }
        assert sorted(queue) == ["failed@example.org", "queued@example.org", "sending@example.org"]
        assert all(r["due"] for r in queue.values())
        assert queue["sending@example.org"]["lease_until"] is not None
        assert queue["queued@example.org"]["lease_until"] is None and queue["failed@example.org"]["lease_until"] is None
        # The claim had counted an attempt: before it, the row had failed once.
        assert queue["sending@example.org"]["state"] == "failed" and queue["sending@example.org"]["attempts"] == 2
        shown = {r["address"]: r["state"] for r in await conn.fetch("select address, state from delivery_log")}
        assert shown == {f"{s}@example.org": s for s in STATES}
    finally:
        await conn.close()
        admin = await asyncpg.connect(database_url)
        await admin.execute(f'drop schema "{schema}" cascade')
        await admin.close()
