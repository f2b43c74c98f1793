"""/dev/mail shows a mail as its recipient sees it: the HTML part with its inline ticket QR (cid:), the plain
text, the attachments and the raw message, from the sink alone (no third-party requests)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import httpx
import pytest
from fastapi import FastAPI

from civic.devservers import free_port
from civic.mailsink import MailSink
from services.notifications.mails import ticket_qr
from shared.http import problems
from tests.qr import decode_png

ICS = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"


def _ticket_mail() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "beteiligung@kreis.example.org"
    msg["To"] = "alex@example.org"
    msg["Subject"] = "Ihre Anmeldung: Auftaktveranstaltung"
    msg["Message-ID"] = "<t1@civic.example>"
    msg.set_content("Hallo Alex,\nIhr Ticket hängt an.")
    msg.add_alternative(
        "<p>Hallo Alex,</p><p><img alt='Ticket' src=\"cid:ticket-qr@civic\"></p>"
        "<p><img alt='remote' src='https://tracker.example.net/pixel.gif'></p>",
        subtype="html",
    )
    html_part = msg.get_payload()[1]
    html_part.add_related(ticket_qr("TICKET-42"), "image", "png", cid="<ticket-qr@civic>", filename="ticket.png")
    msg.add_attachment(ICS, maintype="text", subtype="calendar", filename="termin.ics")
    return msg


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[tuple[MailSink, httpx.AsyncClient]]:
    mail = MailSink(tmp_path / "mail", port=free_port()).start()
    app = FastAPI()
    problems.install(app)  # as in civic.up, which mounts the sink on the services' app
    app.include_router(mail.router())
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            yield mail, client
    finally:
        mail.stop()


async def test_a_ticket_mail_as_the_recipient_sees_it(sink: tuple[MailSink, httpx.AsyncClient]) -> None:
    mail, client = sink
    sent = _ticket_mail()
    await aiosmtplib.send(sent, hostname="127.0.0.1", port=mail.port)
    ((mid, _),) = mail.messages()

    listing = await client.get("/dev/mail")
    assert f"/dev/mail/{mid}" in listing.text and "Ihre Anmeldung" in listing.text

    page = await client.get(f"/dev/mail/{mid}")
    assert page.status_code == 200
    assert f"src='/dev/mail/{mid}/html'" in page.text and "Ihr Ticket hängt an." in page.text
    assert "termin.ics" in page.text and f"/dev/mail/{mid}/raw" in page.text

    frame = await client.get(f"/dev/mail/{mid}/html")
    assert "cid:" not in frame.text
    # The remote image stays in the markup, but the policy lets the frame load only what the sink serves.
    policy = frame.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "img-src 'self' data:" in policy
    (qr_url,) = re.findall(r'src="(/dev/mail/[^"]+)"', frame.text)
    image = await client.get(qr_url)
    assert image.headers["content-type"] == "image/png"
    assert decode_png(image.content) == "TICKET-42"

    (ics_url,) = re.findall(r"href='(/dev/mail/[^']+)'>termin.ics", page.text)
    ics = await client.get(ics_url)
    assert ics.content == ICS and ics.headers["content-disposition"].startswith("attachment")

    raw = await client.get(f"/dev/mail/{mid}/raw")
    assert raw.headers["content-type"] == "message/rfc822"
    assert b"Message-ID: <t1@civic.example>" in raw.content


async def test_unknown_or_crafted_ids_are_not_found(sink: tuple[MailSink, httpx.AsyncClient]) -> None:
    _, client = sink
    for mid in ("nope", "..%2F..%2Fetc%2Fpasswd", "1-000001"):
        answer = await client.get(f"/dev/mail/{mid}")
        assert answer.status_code == 404, mid
