"""The public process page reflects registrations and surveys arriving over the bus, in their contracts.

The registration and surveys services are stood in for by their outboxes on a scratch schema with a relay, as
they publish for real: the content app's consumer reads the streams and updates its own projection.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from services.content.service import definition
from shared.bus.outbox import Outbox
from shared.bus.relay import Relay
from shared.bus.streams import Keys
from shared.contracts import registration as reg
from shared.contracts import surveys as sv
from shared.contracts.envelope import Payload
from shared.http.app import create_app
from shared.settings import Settings
from tests.integration.content.helpers import START, clock, make_process, ok, staff
from tests.support import eventually, make_schema, running, serve


async def _record(pool: asyncpg.Pool, outbox: Outbox, payload: Payload, tenant: str, subject: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await outbox.record(conn, payload, tenant=tenant, subject=subject)


async def _record_stale(
    pool: asyncpg.Pool, outbox: Outbox, payload: Payload, tenant: str, subject: str, seq: int
) -> UUID:
    """An event that arrives late: an old sequence number for its subject."""
    env = outbox.envelope(payload, tenant=tenant, subject=subject, sequence=seq)
    await pool.execute(
        "insert into outbox (id, tenant, stream, type, subject, envelope) values ($1, $2, $3, $4, $5, $6)",
        env.id,
        tenant,
        outbox.registry.get(env.type).stream,
        env.type,
        subject,
        env.model_dump_json(),
    )
    return env.id


async def test_page_follows_registrations_and_surveys_over_the_bus(settings: Settings, prefix: str) -> None:
    tenant = prefix
    c = clock()
    producer = await make_schema(settings.database_url, f"producer_{secrets.token_hex(3)}")
    registration, surveys = Outbox("registration", clock=c), Outbox("surveys", clock=c)
    relay = Relay(
        "registration",
        producer,
        None,  # type: ignore[arg-type]
        database_url=settings.database_url,
        keys=Keys(settings.stream_prefix),
        batch_size=100,
        poll_seconds=0.1,
    )
    app = create_app([definition], settings, clock=c)
    try:
        async with serve(app) as client:
            relay.redis = app.state.civic["content"].redis
            h = staff(tenant, settings)
            p = await make_process(client, h)
            meeting_id, survey_id = uuid4(), uuid4()
            for kind, ref in (("meeting", meeting_id), ("survey", survey_id)):
                await ok(
                    await client.post(
                        f"/api/content/staff/processes/{p['id']}/references",
                        headers=h,
                        json={"kind": kind, "ref_id": str(ref)},
                    ),
                    201,
                )
            await ok(await client.post(f"/api/content/staff/processes/{p['id']}/publish", headers=h))
            url = f"/api/content/public/{tenant}/processes/smart-city"

            page = await ok(await client.get(url))
            assert page["meetings"][0]["registration"] == "unknown"
            assert page["surveys"][0]["status"] == "unknown"

            subject = f"meeting/{meeting_id}"
            starts = START + timedelta(days=8)
            await _record(
                producer,
                registration,
                reg.MeetingPublishedV1(
                    meeting_id=meeting_id,
                    title="Auftaktveranstaltung",
                    starts_at=starts,
                    ends_at=starts + timedelta(hours=2),
                    venue=reg.Venue(name="Berufsbildungszentrum", city="Heide"),
                    capacity=2,
                    seats_left=2,
                    waitlist=False,
                    registration_closes_at=START + timedelta(days=5),
                ),
                tenant,
                subject,
            )
            await _record(
                producer,
                surveys,
                sv.SurveyPublishedV1(
                    survey_id=survey_id, title="Online-Umfrage", opens_at=START, closes_at=START + timedelta(days=11)
                ),
                tenant,
                f"survey/{survey_id}",
            )

            async def meeting() -> dict[str, Any]:
                return dict((await ok(await client.get(url)))["meetings"][0])

            async def seats(n: int) -> bool:
                return (await meeting())["seats_left"] == n

            async with running(relay.run):
                m = await eventually(lambda: _title_known(meeting), what="meeting published reaches the page")
                assert m["seats_left"] == 2 and m["registration"] == "open" and m["registration_open"] is True
                assert m["venue"] == {"name": "Berufsbildungszentrum", "city": "Heide"}
                # Seat counts reach content only through seats_changed: the per-registration events are private.
                await _record(
                    producer,
                    registration,
                    reg.SeatsChangedV1(meeting_id=meeting_id, capacity=2, confirmed=1, waitlisted=0, seats_left=1),
                    tenant,
                    subject,
                )
                await eventually(lambda: seats(1), what="a confirmed registration lowers seats_left")
                await _record(
                    producer,
                    registration,
                    reg.SeatsChangedV1(meeting_id=meeting_id, capacity=2, confirmed=2, waitlisted=0, seats_left=0),
                    tenant,
                    subject,
                )
                await eventually(lambda: seats(0), what="seats changed to 0")
                assert (await meeting())["registration"] == "full"

                # A stale seat count (sequence 2 after 3 was applied) must not roll the page back.
                stale = await _record_stale(
                    producer,
                    registration,
                    reg.SeatsChangedV1(meeting_id=meeting_id, capacity=2, confirmed=1, waitlisted=0, seats_left=1),
                    tenant,
                    subject,
                    seq=2,
                )
                content_pool = app.state.civic["content"].pool

                async def handled() -> bool:
                    q = "select count(*) from processed_events where event_id = $1"
                    return bool(await content_pool.fetchval(q, stale))

                await eventually(handled, what="the stale event handled")
                assert (await meeting())["seats_left"] == 0

                async def survey_is(status: str) -> bool:
                    return bool((await ok(await client.get(url)))["surveys"][0]["status"] == status)

                await eventually(lambda: survey_is("open"), what="survey published reaches the page")
                await _record(
                    producer,
                    surveys,
                    sv.SurveyClosedV1(survey_id=survey_id, closed_at=START, responses=17),
                    tenant,
                    f"survey/{survey_id}",
                )

                await eventually(lambda: survey_is("closed"), what="survey closed reaches the page")

                # Registration closes by the window in the projection and the clock, without any event.
                etag = (await client.get(url)).headers["etag"]
                assert (await client.get(url, headers={"If-None-Match": etag})).status_code == 304
                await _record(
                    producer,
                    registration,
                    reg.SeatsChangedV1(meeting_id=meeting_id, capacity=2, confirmed=1, waitlisted=0, seats_left=1),
                    tenant,
                    subject,
                )
                await eventually(lambda: seats(1), what="a seat freed")
                assert (await meeting())["registration"] == "open"
                # A conditional request sees the change too (the projection's revision is in the page version).
                assert (await client.get(url, headers={"If-None-Match": etag})).status_code == 200
                etag = (await client.get(url)).headers["etag"]
                assert (await client.get(url, headers={"If-None-Match": etag})).status_code == 304
                c.advance(timedelta(days=5))
                # Registration closed by the clock alone: no event, yet the old ETag is stale.
                assert (await client.get(url, headers={"If-None-Match": etag})).status_code == 200
                assert (await meeting())["registration"] == "closed"

                await _record(producer, registration, reg.MeetingCancelledV1(meeting_id=meeting_id), tenant, subject)

                async def cancelled() -> bool:
                    return bool((await meeting())["cancelled"])

                await eventually(cancelled, what="cancellation reaches the page")
                assert (await meeting())["registration"] == "cancelled"
    finally:
        await producer.close()


async def _title_known(probe: Any) -> Any:
    m = await probe()
    return m if m["title"] else None
