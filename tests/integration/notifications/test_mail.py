"""Mail end to end: events in, real SMTP out (aiosmtpd), the delivery log and its events in between."""

from __future__ import annotations

from datetime import datetime
from uuid import uuid4
from zoneinfo import ZoneInfo

import icalendar

from services.notifications.store import Store
from shared.contracts.registration import (
    Contact,
    RegistrationCancelledV1,
    RegistrationConfirmedV1,
    RegistrationWaitlistedV1,
)
from shared.settings import Settings
from tests.integration.notifications.support import (
    envelope,
    mail_settings,
    meeting,
    running_service,
    smtp_server,
)
from tests.support import eventually, staff_headers

SENT = "civic.notifications.notification.sent.v1"
FAILED = "civic.notifications.notification.failed.v1"


def confirmed(meeting_id, address: str, locale: str = "de", **kw):  # type: ignore[no-untyped-def]
    return RegistrationConfirmedV1(
        registration_id=uuid4(),
        meeting_id=meeting_id,
        contact=Contact(name="Erika Beispiel", email=address, locale=locale),
        ticket_code=f"T-{uuid4().hex[:10]}",
        manage_url="https://beteiligung.example.org/anmeldung/abc",
        **kw,
    )


async def test_confirmation_mail_has_german_date_calendar_file_and_qr_ticket(settings: Settings) -> None:
    with smtp_server() as smtp:
        async with running_service(settings, mail_settings(smtp.port)) as svc:
            m = meeting()
            await svc.feed(envelope(m, svc.tenant, f"meeting/{m.meeting_id}"))
            reg = confirmed(m.meeting_id, "erika@example.org")
            env = envelope(reg, svc.tenant, f"meeting/{m.meeting_id}")
            await svc.feed(env)
            reg_en = confirmed(m.meeting_id, "guest@example.org", locale="en")
            await svc.feed(envelope(reg_en, svc.tenant, f"meeting/{m.meeting_id}"))

            await eventually(lambda: _count(smtp.sink.messages, 2), what="two mails")
            msg = smtp.sink.to("erika@example.org")[0]
            assert msg["Subject"] == "Anmeldung bestätigt: Auftaktveranstaltung Digitalstrategie"
            assert msg["List-Unsubscribe"] is None  # transactional
            text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            assert "Donnerstag, 28. Oktober 2021, 18:00\u201320:00 Uhr" in text
            assert reg.ticket_code in text
            html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
            assert "Berufsbildungszentrum, Musterstraße 2, 25746 Heide" in html
            parts = list(msg.walk())
            pngs = [p for p in parts if p.get_content_type() == "image/png"]
            assert len(pngs) == 1 and pngs[0].get_content().startswith(b"\x89PNG")
            assert f"cid:{pngs[0]['Content-ID'].strip('<>')}" in html
            ics = [p for p in parts if p.get_content_type() == "text/calendar"]
            assert len(ics) == 1
            cal = icalendar.Calendar.from_ical(ics[0].get_content())
            event = next(iter(cal.walk("VEVENT")))
            start = event.decoded("DTSTART")
            assert start == datetime(2021, 10, 28, 18, 0, tzinfo=ZoneInfo("Europe/Berlin"))
            assert str(event["SUMMARY"]) == m.title

            en = smtp.sink.to("guest@example.org")[0]
            assert en["Subject"] == "Registration confirmed: Auftaktveranstaltung Digitalstrategie"
            assert "Thursday, 28 October 2021, 6:00 PM" in en.get_body(("plain",)).get_content()  # type: ignore[union-attr]

            # Each outcome is recorded right after its own 250: wait for this one's.
            sent = await eventually(lambda: svc.outbox_events(SENT, env.id), what="its sent event")
            assert [e["data"]["cause_event_id"] for e in sent] == [str(env.id)]
            assert all(e["causationid"] == e["data"]["cause_event_id"] for e in sent)
            assert all("erika" not in str(e) for e in sent)
            rows = await svc.rows(
                "select state, attempts, last_answer from deliveries where cause_event_id = $1", env.id
            )
            assert [(r["state"], r["attempts"]) for r in rows] == [("sent", 1)]
            assert rows[0]["last_answer"].startswith("250")


async def test_waitlist_and_cancellation_mails_name_the_situation(settings: Settings) -> None:
    with smtp_server() as smtp:
        async with running_service(settings, mail_settings(smtp.port)) as svc:
            m = meeting()
            subject = f"meeting/{m.meeting_id}"
            await svc.feed(envelope(m, svc.tenant, subject))
            contact = Contact(name="Max Muster", email="max@example.org")
            rid = uuid4()
            await svc.feed(
                envelope(
                    RegistrationWaitlistedV1(registration_id=rid, meeting_id=m.meeting_id, contact=contact, position=3),
                    svc.tenant,
                    subject,
                )
            )
            await svc.feed(
                envelope(
                    RegistrationCancelledV1(registration_id=rid, meeting_id=m.meeting_id, cancelled_by="staff"),
                    svc.tenant,
                    subject,
                )
            )
            await eventually(lambda: _count(smtp.sink.messages, 2), what="two mails")
            subjects = sorted(x["Subject"] for x in smtp.sink.to("max@example.org"))
            assert subjects == [
                "Anmeldung storniert: Auftaktveranstaltung Digitalstrategie",
                "Warteliste: Auftaktveranstaltung Digitalstrategie",
            ]
            wait = next(x for x in smtp.sink.messages if x["Subject"].startswith("Warteliste"))
            assert "Platz 3 der Warteliste" in wait.get_body(("plain",)).get_content()  # type: ignore[union-attr]


async def test_the_same_cause_three_times_yields_one_mail(settings: Settings) -> None:
    with smtp_server() as smtp:
        async with running_service(settings, mail_settings(smtp.port)) as svc:
            m = meeting()
            await svc.feed(envelope(m, svc.tenant, f"meeting/{m.meeting_id}"))
            env = envelope(confirmed(m.meeting_id, "once@example.org"), svc.tenant, f"meeting/{m.meeting_id}")
            await svc.feed(env)  # delivered
            await svc.feed(env)  # redelivered (the consumer's processed-event record absorbs it)
            # Replayed after the processed-event record was cleaned up: the handler runs again.
            await svc.ctx.pool.execute("delete from processed_events where event_id = $1", env.id)
            await svc.feed(env)
            await eventually(lambda: svc.rows("select 1 from deliveries where state = 'sent'"), what="sent")
            # Nothing is left to send: the sender finds no due row, and the server saw one message.
            async with svc.ctx.pool.acquire() as conn, conn.transaction():
                assert await Store(conn).claim("email", svc.ctx.clock.now(), svc.ctx.clock.now(), 10) == []
            assert len(smtp.sink.to("once@example.org")) == 1
            assert len(await svc.rows("select 1 from deliveries where cause_event_id = $1", env.id)) == 1


async def test_server_down_for_a_while_nothing_lost_nothing_twice(settings: Settings) -> None:
    with smtp_server() as smtp:
        async with running_service(settings, mail_settings(smtp.port, smtp_pool_size=4)) as svc:
            m = meeting()
            await svc.feed(envelope(m, svc.tenant, f"meeting/{m.meeting_id}"))
            smtp.stop()
            addresses = [f"person{i}@example.org" for i in range(12)]
            for a in addresses:
                await svc.feed(envelope(confirmed(m.meeting_id, a), svc.tenant, f"meeting/{m.meeting_id}"))
            # Attempts fail while the server is away, and each failure is published.
            await eventually(
                lambda: svc.rows("select 1 from deliveries where state = 'failed' and attempts >= 2"),
                what="failed attempts",
            )
            failed = [e for e in await svc.outbox_events(FAILED) if e["tenant"] == svc.tenant]
            assert failed and all(e["data"]["permanent"] is False for e in failed)
            assert smtp.sink.messages == []
            smtp.start()
            await eventually(lambda: _all_sent(svc, len(addresses)), timeout=20, what="all sent")
            received = sorted(x["To"] for x in smtp.sink.messages)
            assert received == sorted(addresses)  # every one, none twice
            # Connections are pooled: fewer SMTP sessions than mails.
            assert len(smtp.sink.sessions) <= 4 < len(addresses)


async def test_permanent_refusal_gives_up_at_once(settings: Settings) -> None:
    with smtp_server() as smtp:
        async with running_service(settings, mail_settings(smtp.port)) as svc:
            m = meeting()
            await svc.feed(envelope(m, svc.tenant, f"meeting/{m.meeting_id}"))
            env = envelope(confirmed(m.meeting_id, "reject-me@example.org"), svc.tenant, f"meeting/{m.meeting_id}")
            await svc.feed(env)
            rows = await eventually(
                lambda: svc.rows("select * from deliveries where state = 'given_up'"), what="given up"
            )
            assert rows[0]["attempts"] == 1 and rows[0]["last_answer"].startswith("550")
            assert "reject-me" not in rows[0]["last_answer"]  # the answer is kept without the address
            failed = await eventually(lambda: svc.outbox_events(FAILED, env.id), what="failed event")
            assert failed[0]["data"]["permanent"] is True and "reject-me" not in failed[0]["data"]["reason"]

            # Staff see it per cause and per recipient; other tenants see nothing.
            headers = staff_headers(svc.tenant, settings=settings)
            by_cause = await svc.client.get(f"/api/notifications/causes/{env.id}/deliveries", headers=headers)
            assert by_cause.status_code == 200 and by_cause.json()[0]["state"] == "given_up"
            by_recipient = await svc.client.get(
                "/api/notifications/deliveries", params={"email": "Reject-Me@example.org"}, headers=headers
            )
            assert [d["cause_event_id"] for d in by_recipient.json()] == [str(env.id)]
            other = await svc.client.get(
                f"/api/notifications/causes/{env.id}/deliveries", headers=staff_headers("other", settings=settings)
            )
            assert other.json() == []
            anonymous = await svc.client.get(f"/api/notifications/causes/{env.id}/deliveries")
            assert anonymous.status_code == 401
            assert anonymous.headers["content-type"].startswith("application/problem+json")
            missing = await svc.client.get("/api/notifications/deliveries", headers=headers)
            assert missing.status_code == 422 and missing.json()["errors"]


async def _count(messages: list, n: int) -> bool:  # type: ignore[type-arg]
    return len(messages) >= n


async def _all_sent(svc, n: int) -> bool:  # type: ignore[no-untyped-def]
    rows = await svc.rows("select state from deliveries")
    return len(rows) == n and all(r["state"] == "sent" for r in rows)


async def test_a_crash_mid_send_resends_once_and_never_beyond_the_attempt_limit(settings: Settings) -> None:
    """Rows left 'sending' by a dead sender: an expired lease is taken over; on the last attempt it is given up."""
    with smtp_server() as smtp:
        nsettings = mail_settings(smtp.port, email_max_attempts=3, lease_seconds=30, email_retry_initial_seconds=120)
        async with running_service(settings, nsettings) as svc:
            m = meeting()
            await svc.feed(envelope(m, svc.tenant, f"meeting/{m.meeting_id}"))
            smtp.stop()
            for address in ("crashed@example.org", "exhausted@example.org", "leased@example.org"):
                await svc.feed(envelope(confirmed(m.meeting_id, address), svc.tenant, f"meeting/{m.meeting_id}"))
            await eventually(lambda: _all_failed(svc, 3), what="first attempts failed")
            smtp.start()  # the failed rows wait a minute or more: nothing goes out until they are altered below
            # As a sender that died after claiming would leave them:
            await svc.ctx.pool.execute(
                "update send_queue q set lease_until = now() - interval '1 second',"
                " attempts = case when d.address = 'exhausted@example.org' then 3 else 1 end"
                " from deliveries d where d.id = q.delivery_id and d.address <> 'leased@example.org'"
            )
            await svc.ctx.pool.execute(
                "update send_queue q set lease_until = now() + interval '1 hour', attempts = 1"
                " from deliveries d where d.id = q.delivery_id and d.address = 'leased@example.org'"
            )
            await eventually(
                lambda: svc.rows("select 1 from deliveries where state in ('sent', 'given_up') having count(*) = 2"),
                what="settled",
            )
            rows = {r["address"]: r for r in await svc.rows("select * from delivery_log")}
            assert rows["crashed@example.org"]["state"] == "sent"
            assert rows["exhausted@example.org"]["state"] == "given_up"
            assert rows["exhausted@example.org"]["last_answer"].startswith("outcome unknown")
            assert rows["leased@example.org"]["state"] == "sending"  # another sender's lease is respected
            assert [x["To"] for x in smtp.sink.messages] == ["crashed@example.org"]


async def _all_failed(svc, n: int) -> bool:  # type: ignore[no-untyped-def]
    rows = await svc.rows("select state from deliveries")
    return len(rows) == n and all(r["state"] == "failed" for r in rows)
