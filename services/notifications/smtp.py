"""A small pool of connected SMTP clients, so a burst of mail does not open a connection per message."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator

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

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[tuple[aiosmtplib.SMTP, bool]]:
        async with self._slots:
            reused = bool(self._idle)
            client = self._idle.pop() if reused else await self._connect()
            healthy = False
            try:
                yield client, reused
                healthy = True
            finally:
                if healthy and client.is_connected:
                    self._idle.append(client)
                else:
                    # After an error the session state is unknown: a fresh connection next time.
                    with contextlib.suppress(Exception):
                        client.close()

    async def send(self, data: bytes, sender: str, recipient: str, *, utf8: bool = False) -> Answer:
        """Send one mail; every outcome is an ``Answer`` for this mail alone. ``utf8``: the recipient's local
        part is not ASCII, so the mail goes only with SMTPUTF8 (RFC 6531), where the server offers it."""
        for _ in range(2):
            try:
                async with self._client() as (client, reused):
                    if utf8 and client.is_ehlo_or_helo_needed:
                        await client.ehlo()  # what the server offers is known only after its EHLO answer
                    if utf8 and not client.supports_extension("smtputf8"):
                        return Answer(False, True, "the receiving server does not accept international addresses")
                    try:
                        _, response = await client.sendmail(
                            sender, [recipient], data, mail_options=["SMTPUTF8"] if utf8 else []
                        )
                    except aiosmtplib.SMTPServerDisconnected:
                        if reused:
                            # The server closed an idle pooled connection: try once more on a new one.
                            raise _Stale() from None
                        raise
                return smtp_answer(250, redact(response))
            except _Stale:
                continue
            except aiosmtplib.SMTPRecipientsRefused as exc:
                first = exc.recipients[0] if exc.recipients else None
                return smtp_answer(first.code if first else None, redact(first.message if first else str(exc)))
            except aiosmtplib.SMTPResponseException as exc:
                return smtp_answer(exc.code, redact(exc.message))
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                return smtp_answer(None, f"no connection: {type(exc).__name__}: {redact(str(exc))}")
        return smtp_answer(None, "no connection: server keeps closing")

    async def close(self) -> None:
        while self._idle:
            client = self._idle.pop()
            with contextlib.suppress(Exception):
                await client.quit()


class _Stale(Exception):
    pass
