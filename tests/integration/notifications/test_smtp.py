"""The SMTP pool against a real server: a mail sent in two halves (envelope, then content) is delivered once; an
envelope given back undelivered leaves nothing at the server and its connection usable; refusals are answers."""

from __future__ import annotations

from services.notifications.smtp import Opened, SmtpPool, wire_size
from tests.integration.notifications.support import mail_settings
from tests.mail import smtp_server

MAIL = b"Subject: Test\nTo: a@example.org\n\nHallo\n"


async def test_an_envelope_given_back_delivers_nothing_and_the_connection_sends_the_next_mail() -> None:
    with smtp_server() as smtp:
        pool = SmtpPool(mail_settings(smtp.port, smtp_pool_size=1))
        try:
            opened = await pool.envelope("beteiligung@example.org", "first@example.org", size=wire_size(MAIL))
            assert isinstance(opened, Opened)
            await pool.abort(opened)
            answer = await pool.send(MAIL, "beteiligung@example.org", "second@example.org")
            assert answer.ok, answer.text
            refused = await pool.envelope("beteiligung@example.org", "reject@example.org")
            assert not isinstance(refused, Opened) and refused.permanent and "<recipient>" in refused.text
            again = await pool.send(MAIL, "beteiligung@example.org", "third@example.org")
            assert again.ok, again.text
        finally:
            await pool.close()
        assert smtp.sink.envelopes == [["second@example.org"], ["third@example.org"]]
        assert smtp.sink.messages[0]["Subject"] == "Test"
        # One slot: had a refusal or the reset kept it, the last send would have waited for ever.
        assert len(smtp.sink.sessions) == 2  # the refused envelope's connection was closed, a new one opened


def test_the_wire_size_counts_each_line_ending_as_crlf() -> None:
    assert wire_size(b"a\nb\r\nc") == len(b"a\r\nb\r\nc")
