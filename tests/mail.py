"""Mail in tests, one module: a real SMTP server (aiosmtpd) keeping what it accepts, and the reader of the .eml
folder that civic's own development sink (civic/mailsink.py, behind ``civic.up``) writes.

- ``Sink``: the aiosmtpd handler. It keeps every accepted message parsed (``messages``, ``to(address)``), their
  envelope recipients and sessions, answers 550 for recipients starting with ``reject``, and offers PIPELINING
  as production servers do (``pipelining=False``: a server that does not); for the fault tests'
  SMTP process it can also take ``delay`` seconds per DATA and append each Message-ID to a file (``log``) before
  answering 250, so a test knows what was accepted even after it killed the sender.
- ``SmtpServer`` / ``smtp_server()``: that sink on a port of its own, which can be stopped and started again
  (the "mail server down" case).
- ``MailFolder``: the messages a ``civic.up`` process received, oldest first.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import re
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any, BinaryIO

from aiosmtpd.controller import Controller

from civic.devservers import free_port

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)\s*$", re.MULTILINE | re.IGNORECASE)


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


class Sink:
    """aiosmtpd handler keeping every accepted message; addresses starting with ``reject`` get a 550."""

    def __init__(self, *, delay: float = 0.0, log: BinaryIO | None = None, pipelining: bool = True) -> None:
        self.messages: list[EmailMessage] = []
        self.sessions: set[int] = set()
        #: The envelope recipients (RCPT TO) of each accepted message.
        self.envelopes: list[list[str]] = []
        self.delay = delay
        self.log = log
        self.pipelining = pipelining

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        # aiosmtpd reads commands from a buffered stream one line at a time, so commands that arrive together
        # are answered in order: what RFC 2920 asks of a server that offers PIPELINING.
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]] if self.pipelining else responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.startswith("reject"):
            return f"550 5.1.1 <{address}>: Recipient address rejected"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        raw: bytes = envelope.original_content or b""
        if self.log is not None:
            found = _MESSAGE_ID.search(raw)
            self.log.write((found.group(1) if found else b"<none>") + b"\n")
        self.sessions.add(id(session))
        self.envelopes.append(list(envelope.rcpt_tos))
        self.messages.append(parse(raw))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


class SmtpServer:
    """An SMTP server on a fixed port that can be stopped and started again (the 'server down' case)."""

    def __init__(
        self, *, smtputf8: bool = False, port: int | None = None, sink: Sink | None = None, pipelining: bool = True
    ) -> None:
        self.port = port or free_port()
        self.sink = sink or Sink(pipelining=pipelining)
        self.smtputf8 = smtputf8
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=self.smtputf8)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@contextlib.contextmanager
def smtp_server(*, smtputf8: bool = False, pipelining: bool = True) -> Iterator[SmtpServer]:
    server = SmtpServer(smtputf8=smtputf8, pipelining=pipelining)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class MailFolder:
    """The .eml files an SMTP sink (civic/mailsink.py) stored, oldest first; each file is parsed once, so
    polling a folder of hundreds of messages stays cheap."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._parsed: dict[Path, EmailMessage] = {}

    def read(self) -> list[EmailMessage]:
        out = []
        for path in sorted(self.folder.glob("*.eml")):
            msg = self._parsed.get(path)
            if msg is None:
                msg = parse(path.read_bytes())
                # A file the sink may still be writing is read again next time.
                if time.time() - path.stat().st_mtime > 1.0:
                    self._parsed[path] = msg
            out.append(msg)
        return out
