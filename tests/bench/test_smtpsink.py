"""bench.smtpsink, the benchmarks' SMTP server, against real clients: civic's pipelining pool and aiosmtplib
deliver to it; a mail's end found across reads; pipelined commands answered in order in one write; commands out
of order refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiosmtplib
import pytest

from bench import smtpsink
from civic.devservers import free_port
from services.notifications.smtp import SmtpPool
from tests.integration.notifications.support import mail_settings


@pytest.fixture
async def sink() -> AsyncIterator[tuple[int, list[tuple[str, float]]]]:
    accepted: list[tuple[str, float]] = []
    port = free_port()
    server = await smtpsink.serve(port, accepted)
    try:
        yield port, accepted
    finally:
        server.close()
        await server.wait_closed()


async def test_civic_pool_and_aiosmtplib_deliver_every_recipient(sink: tuple[int, list[tuple[str, float]]]) -> None:
    port, accepted = sink
    pool = SmtpPool(mail_settings(port, smtp_pool_size=2))
    try:
        answers = [
            await pool.send(b"Subject: x\n\n.leading dot\n", "beteiligung@example.org", f"p-{i}@example.org")
            for i in range(5)
        ]
    finally:
        await pool.close()
    assert all(a.ok for a in answers), answers
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
    await client.connect()
    await client.sendmail("a@example.org", ["Upper@Example.org", "second@example.org"], b"Subject: y\r\n\r\nHallo\r\n")
    await client.quit()
    assert [r for r, _ in accepted] == [f"p-{i}@example.org" for i in range(5)] + [
        "upper@example.org",
        "second@example.org",
    ]


async def test_pipelined_commands_are_answered_in_order_and_a_mail_may_end_in_a_later_read(
    sink: tuple[int, list[tuple[str, float]]],
) -> None:
    port, accepted = sink
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert (await reader.readline()).startswith(b"220")
    writer.write(b"EHLO me\r\n")
    ehlo = await reader.readuntil(b"250 SMTPUTF8\r\n")
    assert b"250-PIPELINING" in ehlo
    writer.write(b"RCPT TO:<early@example.org>\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
    assert [await reader.readline() for _ in range(4)] == [
        b"503 5.5.1 MAIL first\r\n",
        b"250 2.1.0 OK\r\n",
        b"250 2.1.5 OK\r\n",
        b"354 End data with <CR><LF>.<CR><LF>\r\n",
    ]
    # The end of the content split over three writes; the next envelope in the same write as the end.
    for part in (b"Subject: z\r\n\r\nline\r", b"\n..stuffed\r\n.", b"\r\nRSET\r\nNOOP\r\nQUIT\r\n"):
        writer.write(part)
        await writer.drain()
        await asyncio.sleep(0.02)
    assert [await reader.readline() for _ in range(4)] == [
        b"250 2.0.0 OK\r\n",
        b"250 2.0.0 OK\r\n",
        b"250 2.0.0 OK\r\n",
        b"221 2.0.0 Bye\r\n",
    ]
    assert await reader.read() == b""  # closed after QUIT
    writer.close()
    assert [r for r, _ in accepted] == ["b@example.org"]
