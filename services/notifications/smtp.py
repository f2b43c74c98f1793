"""The mail senders' SMTP client: a small pool of open sessions, so a burst of mail does not open a connection
per message, and a lean session of our own that pipelines where the server offers it.

With PIPELINING (RFC 2920, offered by Postfix, Exim, Exchange and the big providers) a mail's ``MAIL FROM``,
``RCPT TO`` and ``DATA`` go to the server in one write and their replies come back together: two round trips a
mail (envelope, content) instead of four. A round trip is what a mail costs most, in time to a server across a
network and in CPU on both ends (on the two cores of a benchmark machine a wake-up across processes costs more
than building the mail). Without PIPELINING the commands go one at a time, as RFC 5321 has them. aiosmtplib,
which this replaced, sends one command at a time whatever the server offers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import socket
import ssl
from collections import deque
from typing import NamedTuple, cast

from services.notifications.domain import Answer, smtp_answer
from services.notifications.settings import NotificationSettings

_ADDRESS = re.compile(r"[^\s<>@]+@[^\s<>@]+")
_LEADING_DOT = re.compile(rb"(?m)^\.")
#: A reply longer than this (all its lines) ends the session: a server that never ends a line cannot fill memory.
MAX_REPLY_BYTES = 32 * 1024


def redact(text: str) -> str:
    """SMTP answers often quote the address; the log and the bus get the answer without it."""
    return _ADDRESS.sub("<recipient>", text)


class Reply(NamedTuple):
    code: int
    text: str


class SmtpError(Exception):
    """The session cannot go on: the server refused a step of the session itself (greeting, EHLO, STARTTLS,
    AUTH) with ``reply``, or the connection broke (``reply`` None)."""

    def __init__(self, message: str, reply: Reply | None = None) -> None:
        super().__init__(message)
        self.reply = reply


class Disconnected(SmtpError):
    """The connection closed or broke."""


class Session(asyncio.Protocol):
    """One SMTP connection. Replies are parsed as they arrive and kept in order, so the replies to pipelined
    commands are matched to them one by one."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._lines: list[str] = []
        self._replies: deque[Reply] = deque()
        self._waiting: tuple[int, asyncio.Future[None]] | None = None
        self._lost: Exception | None = None
        #: What the server offered in its EHLO reply: keyword (upper case) -> parameters.
        self.extensions: dict[str, str] = {}
        #: The server has answered a pipelined ``DATA`` and waits for a mail's content.
        self.in_data = False

    # -- asyncio.Protocol ---------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\n")) != -1:
            line = bytes(self._buffer[: end + 1]).rstrip(b"\r\n")
            del self._buffer[: end + 1]
            try:
                code = int(line[:3])
            except ValueError:
                self._fail(SmtpError(f"malformed reply line: {line[:80]!r}"))
                return
            self._lines.append(line[4:].decode("utf-8", "replace").strip())
            if line[3:4] != b"-":  # the last line of a reply
                self._replies.append(Reply(code, "\n".join(self._lines)))
                self._lines = []
        if len(self._buffer) + sum(map(len, self._lines)) > MAX_REPLY_BYTES:
            self._fail(SmtpError("reply too long"))
            return
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._lost = Disconnected(f"connection lost: {exc}" if exc else "connection closed by the server")
        self._wake()

    # -- use ----------------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.transport is not None and not self.transport.is_closing() and self._lost is None

    def send(self, data: bytes) -> None:
        if not self.connected:
            raise self._lost or Disconnected("not connected")
        assert self.transport is not None
        self.transport.write(data)

    async def replies(self, n: int, timeout: float) -> list[Reply]:
        """The next ``n`` replies, in order."""
        if len(self._replies) < n:
            if self._lost is not None:
                raise self._lost
            done = asyncio.get_running_loop().create_future()
            self._waiting = (n, done)
            try:
                async with asyncio.timeout(timeout):
                    await done
            except TimeoutError:
                self.close()
                raise
            finally:
                self._waiting = None
        return [self._replies.popleft() for _ in range(n)]

    async def command(self, line: bytes, timeout: float) -> Reply:
        self.send(line + b"\r\n")
        (reply,) = await self.replies(1, timeout)
        return reply

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        self._lost = self._lost or Disconnected("closed")

    def _fail(self, exc: Exception) -> None:
        self._lost = exc
        if self.transport is not None:
            self.transport.abort()
        self._wake()

    def _wake(self) -> None:
        if self._waiting is None:
            return
        n, done = self._waiting
        if not done.done() and (len(self._replies) >= n or self._lost is not None):
            if len(self._replies) >= n:
                done.set_result(None)
            else:
                assert self._lost is not None
                done.set_exception(self._lost)


class Client:
    """An open, greeted (and, as configured, encrypted and logged-in) session with what the server offers."""

    def __init__(self, session: Session, timeout: float) -> None:
        self.session = session
        self.timeout = timeout

    def offers(self, keyword: str) -> bool:
        return keyword in self.session.extensions

    @property
    def connected(self) -> bool:
        return self.session.connected

    async def expect(self, line: bytes, *codes: int) -> Reply:
        reply = await self.session.command(line, self.timeout)
        if reply.code not in codes:
            raise SmtpError(f"{line.split(b' ')[0].decode()} refused", reply)
        return reply

    async def ehlo(self, hostname: str) -> None:
        reply = await self.session.command(b"EHLO " + hostname.encode(), self.timeout)
        if reply.code == 250:
            lines = reply.text.split("\n")[1:]  # the first line names the server
            self.session.extensions = {
                word.upper(): rest for word, _, rest in (line.partition(" ") for line in lines) if word
            }
            return
        await self.expect(b"HELO " + hostname.encode(), 250)  # a server without ESMTP
        self.session.extensions = {}

    async def quit(self) -> None:
        with contextlib.suppress(SmtpError, OSError, TimeoutError):
            await self.session.command(b"QUIT", min(self.timeout, 5.0))
        self.session.close()


async def open_client(settings: NotificationSettings, hostname: str) -> Client:
    """Connect, read the greeting, EHLO; STARTTLS and EHLO again when configured; AUTH when a user is set."""
    s = settings
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(s.smtp_timeout_seconds):
        _, session = await loop.create_connection(Session, s.smtp_host, s.smtp_port)
    client = Client(session, s.smtp_timeout_seconds)
    try:
        (greeting,) = await session.replies(1, s.smtp_timeout_seconds)
        if greeting.code != 220:
            raise SmtpError("greeting refused", greeting)
        await client.ehlo(hostname)
        if s.smtp_starttls:
            if not client.offers("STARTTLS"):
                raise SmtpError("the server does not offer STARTTLS")
            await client.expect(b"STARTTLS", 220)
            assert session.transport is not None
            async with asyncio.timeout(s.smtp_timeout_seconds):
                tls = await loop.start_tls(
                    session.transport, session, ssl.create_default_context(), server_hostname=s.smtp_host
                )
            if tls is None:
                raise Disconnected("connection closed during the TLS handshake")
            session.transport = tls
            await client.ehlo(hostname)
        if s.smtp_user:
            await _login(client, s.smtp_user, s.smtp_password or "")
    except BaseException:
        session.close()
        raise
    return client


async def _login(client: Client, user: str, password: str) -> None:
    methods = client.session.extensions.get("AUTH", "").upper().split()
    if "PLAIN" in methods or not methods:
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        await client.expect(f"AUTH PLAIN {token}".encode(), 235)
    elif "LOGIN" in methods:
        await client.expect(b"AUTH LOGIN", 334)
        await client.expect(base64.b64encode(user.encode()), 334)
        await client.expect(base64.b64encode(password.encode()), 235)
    else:
        raise SmtpError(f"no AUTH method in common (the server offers {' '.join(methods)})")


class Opened:
    """A mail whose envelope the server accepted, on a connection held for it."""

    __slots__ = ("client",)

    def __init__(self, client: Client) -> None:
        self.client = client

    @property
    def in_data(self) -> bool:
        """The server has answered ``DATA`` already (pipelined) and waits for the content."""
        return self.client.session.in_data


class SmtpPool:
    def __init__(self, settings: NotificationSettings) -> None:
        self.settings = settings
        self._idle: list[Client] = []
        self._slots = asyncio.Semaphore(max(1, settings.smtp_pool_size))
        self._hostname: str | None = None

    async def _connect(self) -> Client:
        if self._hostname is None:
            # What EHLO names us; looked up once (it may ask the resolver), as the name of this process's host.
            self._hostname = await asyncio.to_thread(socket.getfqdn)
        return await open_client(self.settings, self._hostname)

    async def send(self, data: bytes, sender: str, recipient: str, *, utf8: bool = False) -> Answer:
        """Send one mail; every outcome is an ``Answer`` for this mail alone. ``utf8``: the recipient's local
        part is not ASCII, so the mail goes only with SMTPUTF8 (RFC 6531), where the server offers it."""
        opened = await self.envelope(sender, recipient, utf8=utf8, size=wire_size(data))
        if isinstance(opened, Answer):
            return opened
        return await self.data(opened, data)

    async def envelope(
        self, sender: str, recipient: str, *, utf8: bool = False, size: int | None = None
    ) -> Opened | Answer:
        """The first half of a mail: a connection of the pool, held, with ``MAIL FROM`` and ``RCPT TO`` accepted
        (and ``DATA``, where the server pipelines); nothing is delivered until ``data``, and ``abort`` gives
        the connection back without delivering. An ``Answer`` instead when the server refused a step (the
        connection is then closed). ``size``: the mail's size on the wire, declared where the server offers
        SIZE (RFC 1870), so one too large for it is refused before its content is sent."""
        if not _plain(sender, recipient):
            return Answer(False, True, "undeliverable address: a control character or angle bracket")
        for _ in range(2):
            try:
                client, reused = await self._take()
            except (SmtpError, OSError, TimeoutError) as exc:
                # No session (server down, greeting or login refused): worth another try later, whatever the code.
                said = f": {exc.reply.code} {exc.reply.text}" if isinstance(exc, SmtpError) and exc.reply else ""
                return smtp_answer(None, f"no connection: {type(exc).__name__}: {redact(str(exc))}{redact(said)}")
            try:
                commands = _envelope_commands(client, sender, recipient, utf8, size)
                if isinstance(commands, Answer):
                    self._give_back(client)
                    return commands
                mail, rcpt = commands
                session, timeout = client.session, client.timeout
                try:
                    if client.offers("PIPELINING"):
                        session.send(mail + rcpt + b"DATA\r\n")
                        replies = await session.replies(3, timeout)
                    else:
                        session.send(mail)
                        replies = await session.replies(1, timeout)
                        if replies[0].code == 250:
                            session.send(rcpt)
                            replies += await session.replies(1, timeout)
                except Disconnected:
                    if reused:
                        # The server closed an idle pooled connection: try once more on a new one.
                        self._discard(client)
                        continue
                    raise
                return self._accepted(client, replies)
            except (SmtpError, OSError, TimeoutError) as exc:
                return self._failed(client, exc)
            except BaseException:
                self._discard(client)
                raise
        return smtp_answer(None, "no connection: server keeps closing")

    def _accepted(self, client: Client, replies: list[Reply]) -> Opened | Answer:
        """An envelope's replies: the mail opened, or the first refusal (the connection is then closed)."""
        refused = next((r for r in replies if r.code not in (250, 251, 354)), None)
        if refused is not None:
            # A pipelined DATA after a refused step is refused too; nothing was accepted for delivery.
            self._discard(client)
            if refused.code == 530:
                # "Authentication (or STARTTLS) required" (RFC 4954): the settings are wrong, not the mail, so
                # it waits for them to be fixed rather than being given up.
                return Answer(False, False, redact(f"{refused.code} {refused.text}"))
            return smtp_answer(refused.code, redact(refused.text))
        client.session.in_data = len(replies) == 3
        return Opened(client)

    async def data(self, opened: Opened, data: bytes) -> Answer:
        """The second half: the mail's content; its answer is the mail's."""
        answer, _ = await self._content(opened, data, None)
        return answer

    async def data_then(
        self, opened: Opened, data: bytes, sender: str, recipient: str, *, utf8: bool = False, size: int | None = None
    ) -> tuple[Answer, Opened | Answer | None]:
        """The mail's content and, in the same write, the next mail's envelope on the same connection, where the
        server pipelines (RFC 2920 lets a mail's content begin a group): one round trip a mail in a run of
        mails. Returns this mail's answer and the next mail as ``envelope`` would return it, or None where the
        next envelope was not sent (no pipelining, or this mail failed): then it goes through ``envelope``."""
        client = opened.client
        commands = _envelope_commands(client, sender, recipient, utf8, size) if _plain(sender, recipient) else None
        if not opened.in_data or not client.offers("PIPELINING") or not isinstance(commands, tuple):
            return await self.data(opened, data), None
        mail, rcpt = commands
        return await self._content(opened, data, mail + rcpt + b"DATA\r\n")

    async def _content(self, opened: Opened, data: bytes, then: bytes | None) -> tuple[Answer, Opened | Answer | None]:
        client = opened.client
        session = client.session
        try:
            if not opened.in_data:
                reply = await session.command(b"DATA", client.timeout)
                if reply.code != 354:
                    self._discard(client)
                    return smtp_answer(reply.code, redact(reply.text)), None
            session.send(dot_stuffed(data) + (then or b""))
            (reply,) = await session.replies(1, client.timeout)
        except (SmtpError, OSError, TimeoutError) as exc:
            return self._failed(client, exc), None
        except BaseException:
            self._discard(client)
            raise
        session.in_data = False
        if reply.code != 250:
            self._discard(client)
            return smtp_answer(reply.code, redact(reply.text)), None
        answer = smtp_answer(250, redact(reply.text))
        if then is None:
            self._give_back(client)
            return answer, None
        try:
            replies = await session.replies(3, client.timeout)
        except (SmtpError, OSError, TimeoutError) as exc:
            return answer, self._failed(client, exc)
        except BaseException:
            self._discard(client)
            raise
        return answer, self._accepted(client, replies)

    def _failed(self, client: Client, exc: Exception) -> Answer:
        """The answer of an exchange that failed: the server's refusal, or no connection; the connection is
        not used again."""
        self._discard(client)
        if isinstance(exc, SmtpError) and exc.reply is not None:
            return smtp_answer(exc.reply.code, redact(exc.reply.text))
        return smtp_answer(None, f"no connection: {type(exc).__name__}: {redact(str(exc))}")

    async def abort(self, opened: Opened) -> None:
        """An envelope not to be delivered: reset, or closed where the server waits for the content already
        (a mail cut off before its final dot is not delivered) or the reset fails."""
        if opened.in_data:
            self._discard(opened.client)
            return
        try:
            reply = await opened.client.session.command(b"RSET", opened.client.timeout)
        except Exception:
            self._discard(opened.client)
            return
        if reply.code == 250:
            self._give_back(opened.client)
        else:
            self._discard(opened.client)

    async def _take(self) -> tuple[Client, bool]:
        """A connection and whether it was pooled; holds a slot until ``_give_back`` or ``_discard``."""
        await self._slots.acquire()
        try:
            while self._idle:
                client = self._idle.pop()
                if client.connected:
                    return client, True
            return await self._connect(), False
        except BaseException:
            self._slots.release()
            raise

    def _give_back(self, client: Client) -> None:
        if client.connected:
            self._idle.append(client)
        self._slots.release()

    def _discard(self, client: Client) -> None:
        # After an error the session state is unknown: a fresh connection next time.
        client.session.close()
        self._slots.release()

    async def close(self) -> None:
        while self._idle:
            await self._idle.pop().quit()


def _plain(*addresses: str) -> bool:
    """No character in the addresses that could end or break out of a command line."""
    return not any(c in address for address in addresses for c in "\r\n\0<>")


def _envelope_commands(
    client: Client, sender: str, recipient: str, utf8: bool, size: int | None
) -> tuple[bytes, bytes] | Answer:
    """``MAIL FROM`` and ``RCPT TO`` for this server, or the answer that it cannot take the mail."""
    if utf8 and not client.offers("SMTPUTF8"):
        return Answer(False, True, "the receiving server does not accept international addresses")
    options = ""
    if size is not None and client.offers("SIZE"):
        options += f" SIZE={size}"
    if utf8:
        options += " SMTPUTF8"
    encoding = "utf-8" if utf8 else "ascii"
    return f"MAIL FROM:<{sender}>{options}\r\n".encode(encoding), f"RCPT TO:<{recipient}>\r\n".encode(encoding)


def dot_stuffed(data: bytes) -> bytes:
    """A mail's content as DATA sends it: every line ending CRLF, a leading dot doubled (RFC 5321 4.5.2), and
    the final line with the lone dot."""
    data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    if data.startswith(b".") or b"\n." in data:
        data = _LEADING_DOT.sub(b"..", data)
    return data + b".\r\n"


def wire_size(data: bytes) -> int:
    """The size of ``data`` as DATA sends it: every line ending as CRLF (mails are flattened with LF)."""
    return len(data) + data.count(b"\n") - data.count(b"\r\n")
