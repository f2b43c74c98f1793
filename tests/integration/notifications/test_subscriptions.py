"""Double opt-in, reminders before deadlines, news, one-click unsubscribe, erasure; one path over the real bus."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from uuid import UUID, uuid4

import redis.asyncio as aioredis

from services.notifications.domain import email_sha256
from shared.bus.deadlines import PAYLOADS
from shared.bus.outbox import Outbox
from shared.bus.relay import Relay
from shared.bus.streams import Keys
from shared.contracts.common import DeadlineApproachingV1, DeadlineKind
from shared.contracts.content import ContentPublishedV1
from shared.contracts.registration import (
    Contact,
    PersonErasedV1,
    RegistrationConfirmedV1,
    RegistrationsAnonymisedV1,
)
from shared.contracts.surveys import SurveyPublishedV1
from shared.settings import Settings
from tests.integration.notifications.support import (
    Running,
    envelope,
    mail_settings,
    meeting,
    running_service,
    smtp_server,
)
from tests.support import eventually, make_schema, running

# The mails' links lead to the web client's pages (CIVIC_LINK_*); the pages post the token to this API.
LINK = re.compile(r"http://civic\.test(/abo/\S+)")


async def subscribe_and_confirm(svc: Running, sink, address: str, process_id: UUID, locale: str = "de") -> None:  # type: ignore[no-untyped-def]
    r = await svc.client.post(
        "/api/notifications/subscriptions",
        json={"tenant": svc.tenant, "email": address, "process_id": str(process_id), "locale": locale},
    )
    assert r.status_code == 202, r.text
    mail = (await eventually(lambda: _async(sink.to(address)), what=f"opt-in mail to {address}"))[-1]
    link = LINK.search(mail.get_body(("plain",)).get_content()).group(1)
    assert link.startswith("/abo/bestaetigen?token=")
    token = link.split("token=", 1)[1]
    # Old links to the API lead on to the page, which confirms with a POST.
    old = await svc.client.get("/api/notifications/subscriptions/confirm", params={"token": token})
    assert old.status_code == 303 and old.headers["location"] == f"http://civic.test{link}"
    confirmed = await svc.client.post("/api/notifications/subscriptions/confirm", params={"token": token})
    assert confirmed.json()["state"] == "confirmed"


async def _async(value):  # type: ignore[no-untyped-def]
    return value


def reminder(kind: str, subject_id: UUID, due_at: datetime) -> DeadlineApproachingV1:
    return PAYLOADS[DeadlineKind(kind)](
        deadline_id=uuid4(), kind=kind, subject_id=str(subject_id), due_at=due_at, offset_seconds=86400
    )


async def test_opt_in_reminders_news_and_one_click_unsubscribe(settings: Settings) -> None:
    with smtp_server() as smtp:
        async with running_service(settings, mail_settings(smtp.port)) as svc:
            process = await svc.known_process()
            # Pending subscribers get nothing but the opt-in mail.
            pending = await svc.client.post(
                "/api/notifications/subscriptions",
                json={"tenant": svc.tenant, "email": "pending@example.org", "process_id": str(process)},
            )
            assert pending.status_code == 202
            await subscribe_and_confirm(svc, smtp.sink, "anna@example.org", process)
            await subscribe_and_confirm(svc, smtp.sink, "ben@example.org", process, locale="en")
            await subscribe_and_confirm(svc, smtp.sink, "registered@example.org", process)
            await subscribe_and_confirm(svc, smtp.sink, "elsewhere@example.org", await svc.known_process())

            m = meeting(process_id=process)
            await svc.feed(envelope(m, svc.tenant, f"meeting/{m.meeting_id}"))
            await svc.feed(
                envelope(
                    RegistrationConfirmedV1(
                        registration_id=uuid4(),
                        meeting_id=m.meeting_id,
                        contact=Contact(name="Reg Istered", email="registered@example.org"),
                        ticket_code="T-1",
                    ),
                    svc.tenant,
                    f"meeting/{m.meeting_id}",
                )
            )
            closes = reminder("registration_closes", m.meeting_id, datetime(2021, 10, 25, 22, 0, tzinfo=UTC))
            await svc.feed(envelope(closes, svc.tenant, None))
            await eventually(lambda: _async(len(_subject(smtp.sink, "Anmeldeschluss")) == 1), what="reminder de")
            await eventually(lambda: _async(len(_subject(smtp.sink, "Registration closes")) == 1), what="reminder en")
            de = _subject(smtp.sink, "Anmeldeschluss")[0]
            assert de["To"] == "anna@example.org"  # not the registered one, not the pending one, not elsewhere
            assert "Dienstag, 26. Oktober 2021, 00:00 Uhr" in de.get_body(("plain",)).get_content()
            assert de["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            unsubscribe_page = re.match(r"<http://civic\.test(.+)>", de["List-Unsubscribe"]).group(1)
            # The header names the web client's page, which hands a one-click POST on to this API.
            assert unsubscribe_page.startswith("/abo/abbestellen?token=")
            unsubscribe = "/api/notifications/unsubscribe?token=" + unsubscribe_page.split("token=", 1)[1]
            assert not smtp.sink.to("pending@example.org")[1:]

            # One click: a POST with the RFC 8058 body, no login.
            page = await svc.client.get(unsubscribe)
            # GET alone unsubscribes nobody: it leads to the page with one button.
            assert page.status_code == 303 and page.headers["location"] == f"http://civic.test{unsubscribe_page}"
            r = await svc.client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
            assert r.status_code == 200 and r.json()["state"] == "unsubscribed"
            bad = await svc.client.post(unsubscribe[:-3] + "xyz", data={"List-Unsubscribe": "One-Click"})
            assert bad.status_code == 400 and bad.headers["content-type"].startswith("application/problem+json")

            news = ContentPublishedV1(content_id=uuid4(), kind="news", process_id=process, title="Ergebnisse online")
            await svc.feed(envelope(news, svc.tenant, None, producer="content"))
            await eventually(lambda: _async(_subject(smtp.sink, "News: Ergebnisse online")), what="news en")
            await eventually(
                lambda: svc.rows("select 1 from deliveries where template = 'news' and state = 'sent'"), what="sent"
            )
            # anna unsubscribed; the registered person is a subscriber too
            assert [x["To"] for x in _subject(smtp.sink, "Neuigkeiten")] == ["registered@example.org"]
            assert [x["To"] for x in _subject(smtp.sink, "News:")] == ["ben@example.org"]

            # Survey closing: the subscribers of the survey's process.
            survey = SurveyPublishedV1(
                survey_id=uuid4(),
                title="Umfrage Digitalisierung",
                opens_at=datetime(2021, 10, 1, tzinfo=UTC),
                closes_at=datetime(2021, 10, 31, 22, 59, tzinfo=UTC),
                process_id=process,
                url="https://beteiligung.example.org/umfrage",
            )
            await svc.feed(envelope(survey, svc.tenant, f"survey/{survey.survey_id}", producer="surveys"))
            ending = reminder("survey_closes", survey.survey_id, survey.closes_at)
            await svc.feed(envelope(ending, svc.tenant, None, producer="surveys"))
            got = await eventually(lambda: _async(_subject(smtp.sink, "Survey closes soon")), what="survey reminder")
            assert [x["To"] for x in got] == ["ben@example.org"]
            got_de = await eventually(lambda: _async(_subject(smtp.sink, "Umfrage endet bald")), what="survey de")
            assert [x["To"] for x in got_de] == ["registered@example.org"]
            assert "Sunday, 31 October 2021, 11:59 PM" in got[0].get_body(("plain",)).get_content()

            # Meeting starts: the confirmed registrants, not the subscribers.
            starts = reminder("meeting_starts", m.meeting_id, m.starts_at)
            await svc.feed(envelope(starts, svc.tenant, None))
            got = await eventually(lambda: _async(_subject(smtp.sink, "Erinnerung")), what="start reminder")
            assert [x["To"] for x in got] == ["registered@example.org"]
            assert got[0]["List-Unsubscribe"] is None


async def test_erasure_blanks_addresses_and_stops_queued_mail(settings: Settings) -> None:
    # No SMTP server at all: everything stays queued or failed until the erasure arrives.
    async with running_service(settings, mail_settings(1, email_retry_initial_seconds=60)) as svc:
        process = await svc.known_process()
        m = meeting(process_id=process)
        await svc.feed(envelope(m, svc.tenant, f"meeting/{m.meeting_id}"))
        ids = [uuid4(), uuid4(), uuid4()]
        for i, rid in enumerate(ids):
            contact = Contact(name=f"Person {i}", email=f"erase{i}@example.org")
            confirmed = RegistrationConfirmedV1(
                registration_id=rid, meeting_id=m.meeting_id, contact=contact, ticket_code=f"T-{i}"
            )
            await svc.feed(envelope(confirmed, svc.tenant, f"meeting/{m.meeting_id}"))
        r = await svc.client.post(
            "/api/notifications/subscriptions",
            json={"tenant": svc.tenant, "email": "erase0@example.org", "process_id": str(process)},
        )
        assert r.status_code == 202
        sha = email_sha256("erase0@example.org")
        await svc.feed(
            envelope(PersonErasedV1(erasure_id=uuid4(), registration_ids=[ids[0]], email_sha256=sha), svc.tenant)
        )
        await svc.feed(
            envelope(RegistrationsAnonymisedV1(meeting_id=m.meeting_id, registration_ids=[ids[1]]), svc.tenant)
        )

        left = await svc.rows("select registration_id from registrations where tenant = $1", svc.tenant)
        assert [r["registration_id"] for r in left] == [ids[2]]
        assert await svc.rows("select 1 from recipients where email_sha256 = $1", sha) == []
        rows = await svc.rows("select * from deliveries where tenant = $1", svc.tenant)
        erased = [r for r in rows if r["registration_id"] in ids[:2] or r["template"] == "subscription_confirm"]
        assert len(erased) == 3
        assert all(r["address"] is None and r["personal"] == "{}" and r["state"] == "given_up" for r in erased)
        kept = [r for r in rows if r["registration_id"] == ids[2]]
        assert kept[0]["address"] == "erase2@example.org"


async def test_events_over_the_real_bus(settings: Settings, redis: aioredis.Redis) -> None:
    """Registration's events written to an outbox, published by a relay to Redis, read by the service's consumer."""
    producer = await make_schema(settings.database_url, f"registration_{secrets.token_hex(3)}")
    outbox = Outbox("registration")
    try:
        with smtp_server() as smtp:
            async with running_service(settings, mail_settings(smtp.port)) as svc:
                m = meeting()
                reg = RegistrationConfirmedV1(
                    registration_id=uuid4(),
                    meeting_id=m.meeting_id,
                    contact=Contact(name="Bus Fahrer", email="bus@example.org"),
                    ticket_code="T-BUS",
                )
                async with producer.acquire() as conn:
                    for payload in (m, reg):
                        async with conn.transaction():
                            await outbox.record(conn, payload, tenant=svc.tenant, subject=f"meeting/{m.meeting_id}")
                relay = Relay(
                    "registration",
                    producer,
                    redis,
                    database_url=settings.database_url,
                    keys=Keys(settings.stream_prefix),
                    poll_seconds=0.1,
                )
                async with running(relay.run):
                    got = await eventually(lambda: _async(smtp.sink.to("bus@example.org")), what="mail via bus")
                assert got[0]["Subject"].startswith("Anmeldung bestätigt")
    finally:
        await producer.close()


def _subject(sink, prefix: str) -> list:  # type: ignore[no-untyped-def, type-arg]
    return [x for x in sink.messages if x["Subject"].startswith(prefix)]
