"""The statements a run of registration events is queued with, against real PostgreSQL: the same rows and caps
as one statement per mail would give (tests/unit/notifications/test_use_cases.py covers the use case)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from uuid import uuid4

import asyncpg

from services.notifications.domain import CAPPED, EmailDelivery, Policy
from services.notifications.store import Store
from shared.settings import Settings
from tests.integration.notifications.support import mail_settings, running_service
from tests.support import eventually

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
POLICY = Policy(signing_secret="test-secret", unconfirmed_mails_per_hour=2)


def delivery(tenant: str, address: str, registration_id: object = None) -> EmailDelivery:
    return EmailDelivery(
        tenant=tenant,
        cause_event_id=uuid4(),
        recipient_key=POLICY.recipient_key(address),
        address=address,
        template="waitlisted",
        transactional=True,
        registration_id=registration_id,  # type: ignore[arg-type]
        meeting_id=uuid4(),
        personal={"name": "Alex", "position": 3},
    )


async def test_mails_queued_at_once_are_capped_per_inbox_as_one_by_one(settings: Settings) -> None:
    async with running_service(settings, mail_settings(1)) as svc:
        async with svc.ctx.pool.acquire() as conn, conn.transaction():
            store = Store(conn)
            # The inbox of full@ had two mails within the hour already: the third is held back.
            for _ in range(2):
                await store.enqueue_email(delivery(svc.tenant, "full@example.org"), NOW, POLICY.cap("full@example.org"))
            wanted = [delivery(svc.tenant, a) for a in ("full+tag@example.org", "fresh@example.org")]
            inserted = await store.enqueue_emails([(d, POLICY.cap(d.address)) for d in wanted], NOW)
            again = await store.enqueue_emails([(d, POLICY.cap(d.address)) for d in wanted], NOW)
        assert (inserted, again) == (2, 0)  # a redelivered run inserts nothing
        rows = {
            r["address"]: r
            for r in await svc.rows("select address, state, last_answer, personal::text as personal from deliveries")
        }
        assert rows["full+tag@example.org"]["state"] == "given_up"
        assert rows["full+tag@example.org"]["last_answer"] == CAPPED
        # Queued to be sent (the running service's senders may have claimed it already), not held back.
        assert rows["fresh@example.org"]["state"] != "given_up"
        assert rows["fresh@example.org"]["last_answer"] != CAPPED
        assert '"position": 3' in rows["fresh@example.org"]["personal"]


async def test_projection_rows_and_versions_of_a_run_in_one_statement_each(settings: Settings) -> None:
    async with running_service(settings, mail_settings(1)) as svc:
        first, second, foreign = uuid4(), uuid4(), uuid4()
        async with svc.ctx.pool.acquire() as conn, conn.transaction():
            store = Store(conn)
            await store.upsert_registration(
                tenant="another-tenant", registration_id=foreign, meeting_id=uuid4(), status="confirmed"
            )
            a, b = f"registrations:{first}", f"registrations:{second}"
            assert await store.accept_newer_many([(a, 2), (b, None)]) == [True, True]
            assert await store.accept_newer_many([(a, 1), (b, 1)]) == [False, True]  # older than 2; b's first
            common = {"meeting_id": uuid4(), "status": "waitlisted", "email_sha256": None, "name": "Kim"}
            common["locale"] = "en"
            rows = await store.upsert_registrations(
                [
                    {"tenant": svc.tenant, "registration_id": first, "address": "kim@example.org", **common},
                    {"tenant": svc.tenant, "registration_id": second, "address": None, **common},
                    {"tenant": svc.tenant, "registration_id": foreign, "address": "x@example.org", **common},
                ]
            )
        assert set(rows) == {first, second}  # another tenant's registration is not touched
        assert rows[first]["address"] == "kim@example.org" and rows[first]["locale"] == "en"
        assert rows[second]["address"] is None and rows[second]["status"] == "waitlisted"
        (kept,) = await svc.rows("select status from registrations where registration_id = $1", foreign)
        assert kept["status"] == "confirmed"


async def test_an_erasure_waits_for_an_outcome_of_the_same_mail_instead_of_deadlocking(settings: Settings) -> None:
    async with running_service(settings, mail_settings(1)) as svc:
        pool = svc.ctx.pool
        d = delivery(svc.tenant, "erase-me@example.org", registration_id=uuid4())
        async with pool.acquire() as conn:
            assert await Store(conn).enqueue_email(d, NOW)
            mail = await conn.fetchval("select id from deliveries where recipient_key = $1", d.recipient_key)
            # On the wire, as far as the senders can tell: its lease does not run out during the test.
            await conn.execute(
                "update send_queue set lease_until = now() + interval '1 hour' where delivery_id = $1", mail
            )
        # A connection of its own: the service's pool is not there to lend one for the whole test.
        outcome = await asyncpg.connect(settings.database_url, server_settings={"search_path": "notifications"})
        try:
            recording = outcome.transaction()
            await recording.start()
            # An outcome's statement locks the mail's row in the queue first, then its row in the log.
            await outcome.execute("select 1 from send_queue where delivery_id = $1 for update", mail)

            async def erase() -> None:
                async with pool.acquire() as conn, conn.transaction():
                    await Store(conn).erase_registrations(svc.tenant, [d.registration_id])

            erasing = asyncio.create_task(erase())

            async def erasure_waits() -> bool:
                assert not erasing.done(), erasing  # it has a row to wait for
                return bool(
                    await outcome.fetchval(
                        "select count(*) from pg_stat_activity"
                        " where datname = current_database() and wait_event_type = 'Lock'"
                    )
                )

            await eventually(erasure_waits, timeout=5, interval=0.02, what="the erasure waiting for a lock")
            # The erasure waits for the queue's row; it must not hold the log's row meanwhile.
            await outcome.execute("update deliveries set last_answer = '250 ok' where id = $1", mail)
            await recording.commit()
            await asyncio.wait_for(erasing, 5)
        finally:
            await outcome.close()
        (row,) = await svc.rows("select address, state from deliveries where id = $1", mail)
        assert row["address"] is None and row["state"] == "given_up"
        assert await svc.rows("select 1 from send_queue where delivery_id = $1", mail) == []
