"""The mail senders are woken by the NOTIFY of newly queued deliveries, not by their poll."""

from __future__ import annotations

import asyncio
from uuid import uuid4

from shared.contracts.registration import Contact, RegistrationConfirmedV1
from shared.settings import Settings
from tests.integration.notifications.support import envelope, mail_settings, meeting, running_service, smtp_server
from tests.support import eventually


async def test_queued_mail_goes_out_without_waiting_for_the_poll(settings: Settings) -> None:
    # A poll an hour apart: a mail that arrives within the test's patience was sent because the sender was woken.
    with smtp_server() as smtp:
        async with running_service(settings, mail_settings(smtp.port, sender_poll_seconds=3600)) as svc:
            m = meeting()
            await svc.feed(envelope(m, svc.tenant, f"meeting/{m.meeting_id}"))
            await asyncio.sleep(0.5)  # every sender has found nothing and waits
            for address in ("erika@example.org", "guest@example.org"):
                reg = RegistrationConfirmedV1(
                    registration_id=uuid4(),
                    meeting_id=m.meeting_id,
                    contact=Contact(name="Erika Beispiel", email=address, locale="de"),
                    ticket_code=f"T-{uuid4().hex[:10]}",
                )
                await svc.feed(envelope(reg, svc.tenant, f"meeting/{m.meeting_id}"))
                await eventually(lambda a=address: _has(smtp.sink.to(a)), what=f"the mail to {address}")


async def _has(messages: list) -> bool:  # type: ignore[type-arg]
    return bool(messages)
