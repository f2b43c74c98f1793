"""The SMTP pool against a real server: a mail sent in two halves (envelope, then content) is delivered once; an
envelope given back undelivered leaves nothing at the server and its connection usable; refusals are answers;
the envelope is pipelined where the server offers it; STARTTLS and AUTH."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from civic.devservers import free_port
from services.notifications.smtp import Opened, SmtpPool, dot_stuffed, wire_size
from tests.integration.notifications.support import mail_settings
from tests.mail import Sink, smtp_server

MAIL = b"Subject: Test\nTo: a@example.org\n\nHallo\n"


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-command-at-a-time"])
async def test_an_envelope_given_back_delivers_nothing_and_the_connection_sends_the_next_mail(
    pipelining: bool,
) -> None:
    with smtp_server(pipelining=pipelining) as smtp:
        pool = SmtpPool(mail_settings(smtp.port, smtp_pool_size=1))
        try:
            opened = await pool.envelope("beteiligung@example.org", "first@example.org", size=wire_size(MAIL))
            assert isinstance(opened, Opened)
            assert opened.in_data is pipelining  # pipelined, the server has answered DATA already
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


async def test_where_the_server_offers_pipelining_the_envelope_goes_in_one_write() -> None:
    """A server that answers nothing of an envelope before it has MAIL, RCPT and DATA: a client that waited for
    each reply would wait until its timeout."""
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 test\r\n")
        await reader.readline()  # EHLO
        writer.write(b"250-test\r\n250-PIPELINING\r\n250 SIZE 1000000\r\n")
        lines = [await reader.readline() for _ in range(3)]
        seen.extend(lines)
        writer.write(b"250 sender ok\r\n250 recipient ok\r\n354 go ahead\r\n")
        while (line := await reader.readline()) not in (b".\r\n", b""):
            seen.append(line)
        writer.write(b"250 queued as 1\r\n")
        await reader.readline()  # QUIT
        writer.write(b"221 bye\r\n")
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = SmtpPool(mail_settings(port, smtp_pool_size=1, smtp_timeout_seconds=2.0))
    try:
        answer = await pool.send(b"Subject: x\n\n.leading dot\n", "a@example.org", "b@example.org")
        await pool.close()
    finally:
        server.close()
    assert answer.ok and answer.text == "250 queued as 1"
    assert seen[:3] == [b"MAIL FROM:<a@example.org> SIZE=28\r\n", b"RCPT TO:<b@example.org>\r\n", b"DATA\r\n"]
    assert seen[3:] == [b"Subject: x\r\n", b"\r\n", b"..leading dot\r\n"]  # CRLF, the leading dot doubled


def test_the_wire_size_counts_each_line_ending_as_crlf() -> None:
    assert wire_size(b"a\nb\r\nc") == len(b"a\r\nb\r\nc")
    assert len(dot_stuffed(b"a\nb\r\nc")) == wire_size(b"a\nb\r\nc") + len(b"\r\n.\r\n")


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "civic test SMTP")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


async def test_starttls_and_login_before_the_first_mail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = _certificate(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts this certificate, and only it
    logins: list[tuple[str, bytes]] = []

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        logins.append((data.login.decode(), data.password))
        return AuthResult(success=data.login == b"civic" and data.password == b"geheim", handled=False)

    sink, port = Sink(), free_port()
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        tls_context=tls,
        require_starttls=True,
        authenticator=authenticate,
        auth_require_tls=True,
    )
    controller.start()
    try:
        good = mail_settings(port, smtp_starttls=True, smtp_user="civic", smtp_password="geheim")
        pool = SmtpPool(good)
        answer = await pool.send(MAIL, "beteiligung@example.org", "a@example.org")
        await pool.close()
        assert answer.ok, answer.text
        assert [m["To"] for m in sink.messages] == ["a@example.org"]

        wrong = SmtpPool(mail_settings(port, smtp_starttls=True, smtp_user="civic", smtp_password="falsch"))
        refused = await wrong.send(MAIL, "beteiligung@example.org", "b@example.org")
        assert not refused.ok and not refused.permanent and "535" in refused.text  # a setting to fix: retried

        plain = SmtpPool(mail_settings(port))  # no STARTTLS where the server requires it: refused, retried
        unencrypted = await plain.send(MAIL, "beteiligung@example.org", "c@example.org")
        assert not unencrypted.ok and not unencrypted.permanent
    finally:
        controller.stop()
    assert logins == [("civic", b"geheim"), ("civic", b"falsch")]
    assert len(sink.messages) == 1
