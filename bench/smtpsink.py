"""A lean SMTP server for the benchmarks: accepts every mail, keeps only who it was for and when.

In production the mail server is Postfix or a provider's, written in C and on machines of its own; in a
benchmark on two cores it shares them with civic. aiosmtpd (what the tests use) reads a line at a time and
answers each command with a write of its own, and took about a sixth of the machine in ``bench-rush``: CPU the
services measured there did not get. This server does what a production server does with pipelined commands
(RFC 2920): it answers everything that arrived in one read with one write. It speaks enough of RFC 5321 for
any client: EHLO/HELO, MAIL, RCPT, DATA (dot-stuffed content up to the lone dot), RSET, NOOP, QUIT; anything
else gets a 502.

``accepted`` holds ``(recipient, time.monotonic())`` per recipient of every accepted mail, the clock all
processes of a machine share. ``python -m bench.smtpsink PORT`` runs it in a process of its own, answering
commands on stdin, one a line: ``count`` (the number of recipients accepted), ``dump`` (all of them with their
moments, as one line of JSON); the end of stdin stops it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import cast

#: What EHLO offers (the last line without the dash): pipelining, as Postfix, Exim and the large providers do.
EHLO = b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 33554432\r\n250 SMTPUTF8\r\n"
END_OF_DATA = b"\r\n.\r\n"


def address(arg: bytes) -> str:
    """The path of ``MAIL FROM:<a>`` / ``RCPT TO:<a>`` (parameters after it ignored), lower case."""
    _, _, rest = arg.partition(b":")
    rest = rest.strip()
    path = rest[1:].partition(b">")[0] if rest.startswith(b"<") else rest.split(b" ", 1)[0]
    return path.decode("utf-8", "replace").lower()


class Session(asyncio.Protocol):
    def __init__(self, accepted: list[tuple[str, float]]) -> None:
        self.accepted = accepted
        self.buffer = b""
        #: How far the content has been searched for its end already (a mail may come in several reads).
        self.scanned = 0
        self.in_data = False
        self.sender: str | None = None
        self.recipients: list[str] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        replies: list[bytes] = []
        closing = False
        while not closing:
            if self.in_data:
                # The content ends at CRLF.CRLF, or at a lone dot right after the 354 (an empty mail).
                if self.buffer.startswith(b".\r\n"):
                    end, skip = 0, 3
                else:
                    end = self.buffer.find(END_OF_DATA, self.scanned)
                    skip = 5
                    if end < 0:
                        self.scanned = max(0, len(self.buffer) - len(END_OF_DATA) + 1)
                        break
                self.buffer = self.buffer[end + skip :]
                self.in_data, self.scanned = False, 0
                now = time.monotonic()
                self.accepted.extend((r, now) for r in self.recipients)
                self.sender, self.recipients = None, []
                replies.append(b"250 2.0.0 OK\r\n")
                continue
            line, sep, rest = self.buffer.partition(b"\r\n")
            if not sep:
                break
            self.buffer = rest
            verb = line[:4].upper()
            if verb == b"EHLO":
                self.sender, self.recipients = None, []
                replies.append(EHLO)
            elif verb == b"HELO":
                self.sender, self.recipients = None, []
                replies.append(b"250 sink\r\n")
            elif verb == b"MAIL":
                self.sender, self.recipients = address(line), []
                replies.append(b"250 2.1.0 OK\r\n")
            elif verb == b"RCPT":
                if self.sender is None:
                    replies.append(b"503 5.5.1 MAIL first\r\n")
                else:
                    self.recipients.append(address(line))
                    replies.append(b"250 2.1.5 OK\r\n")
            elif verb == b"DATA":
                if not self.recipients:
                    replies.append(b"503 5.5.1 RCPT first\r\n")
                else:
                    self.in_data = True
                    replies.append(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            elif verb == b"RSET":
                self.sender, self.recipients = None, []
                replies.append(b"250 2.0.0 OK\r\n")
            elif verb == b"NOOP":
                replies.append(b"250 2.0.0 OK\r\n")
            elif verb == b"QUIT":
                replies.append(b"221 2.0.0 Bye\r\n")
                closing = True
            else:
                replies.append(b"502 5.5.2 Command not recognized\r\n")
        assert self.transport is not None
        if replies:
            self.transport.write(b"".join(replies))
        if closing:
            self.transport.close()


async def serve(port: int, accepted: list[tuple[str, float]], host: str = "127.0.0.1") -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: Session(accepted), host, port, backlog=1024)


async def run(port: int) -> None:
    accepted: list[tuple[str, float]] = []
    server = await serve(port, accepted)
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    print("ready", flush=True)
    while line := await commands.readline():
        if line.strip() == b"count":
            print(len(accepted), flush=True)
        elif line.strip() == b"dump":
            print(json.dumps(accepted), flush=True)
    server.close()


def main(port: int) -> None:
    import uvloop

    uvloop.run(run(port))


if __name__ == "__main__":
    main(int(sys.argv[1]))
