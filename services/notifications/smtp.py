"""A small pool of connected SMTP clients, so a burst of mail does not open a connection per message."""

from __future__ import annotations

import asyncio
import contextlib
import re

import aiosmtplib

from services.notifications.domain import Answer, smtp_answer
from services.notifications.settings import NotificationSettings

_ADDRESS = re.compile(r"[^\s<>@]+@[^\s<>@]+")


def redact(text: str) -> str:
    """SMTP answers often quote the address; the log and the bus get the answer without it."""
    return _ADDRESS.sub("<recipient>", text)


class SmtpPool:
    def __init__(self, settings: NotificationSettings) -> None:
        self.settings = settings
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(max(1, settings.smtp_pool_size))

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            timeout=s.smtp_timeout_seconds,
            start_tls=s.smtp_starttls,
            username=s.smtp_user,
            password=s.smtp_password,
        )
        await client.connect()
        return client

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
        """The first half of a mail: a connection of the pool, held, with ``MAIL FROM`` and ``RCPT TO`` accepted;
        nothing is delivered until ``data``, and ``abort`` gives the connection back without delivering. An
        ``Answer`` instead when the server refused either (the connection is back in the pool or closed).
        ``size``: the mail's size on the wire, declared where the server offers SIZE (RFC 1870), so one too
        large for it is refused before its content is sent."""
        for _ in range(2):
            slot = await self._take()
            client, reused = slot
            try:
                if client.is_ehlo_or_helo_needed:
                    await client.ehlo()  # what the server offers is known only after its EHLO answer
                if utf8 and not client.supports_extension("smtputf8"):
                    self._give_back(client)
                    return Answer(False, True, "the receiving server does not accept international addresses")
                options = ["SMTPUTF8"] if utf8 else []
                if size is not None and client.supports_extension("size"):
                    options.insert(0, f"SIZE={size}")
                encoding = "utf-8" if utf8 else "ascii"
                try:
                    await client.mail(sender, options=options, encoding=encoding)
                except aiosmtplib.SMTPServerDisconnected:
                    if reused:
                        # The server closed an idle pooled connection: try once more on a new one.
                        self._discard(client)
                        continue
                    raise
                await client.rcpt(recipient, encoding=encoding)
                return Opened(client)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                return self._failed(client, exc)
            except BaseException:
                self._discard(client)
                raise
        return smtp_answer(None, "no connection: server keeps closing")

    async def data(self, opened: Opened, data: bytes) -> Answer:
        """The second half: the mail's content; its answer is the mail's."""
        client = opened.client
        try:
            response = await client.data(data)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return self._failed(client, exc)
        except BaseException:
            self._discard(client)
            raise
        self._give_back(client)
        return smtp_answer(250, redact(response.message))

    def _failed(self, client: aiosmtplib.SMTP, exc: Exception) -> Answer:
        """The answer of an exchange that failed: the server's refusal, or no connection; the connection is
        not used again."""
        self._discard(client)
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            return smtp_answer(exc.code, redact(exc.message))
        return smtp_answer(None, f"no connection: {type(exc).__name__}: {redact(str(exc))}")

    async def abort(self, opened: Opened) -> None:
        """An envelope not to be delivered: reset, or closed if the reset fails."""
        try:
            await opened.client.rset()
        except Exception:
            self._discard(opened.client)
        else:
            self._give_back(opened.client)

    async def _take(self) -> tuple[aiosmtplib.SMTP, bool]:
        """A connection and whether it was pooled; holds a slot until ``_give_back`` or ``_discard``."""
        await self._slots.acquire()
        try:
            if self._idle:
                return self._idle.pop(), True
            return await self._connect(), False
        except BaseException:
            self._slots.release()
            raise

    def _give_back(self, client: aiosmtplib.SMTP) -> None:
        if client.is_connected:
            self._idle.append(client)
        self._slots.release()

    def _discard(self, client: aiosmtplib.SMTP) -> None:
        # After an error the session state is unknown: a fresh connection next time.
        with contextlib.suppress(Exception):
            client.close()
        self._slots.release()

    async def close(self) -> None:
        while self._idle:
            client = self._idle.pop()
            with contextlib.suppress(Exception):
                await client.quit()


def wire_size(data: bytes) -> int:
    """The size of ``data`` as DATA sends it: every line ending as CRLF (mails are flattened with LF)."""
    return len(data) + data.count(b"\n") - data.count(b"\r\n")


class Opened:
    """A mail whose envelope the server accepted, on a connection held for it."""

    __slots__ = ("client",)

    def __init__(self, client: aiosmtplib.SMTP) -> None:
        self.client = client
