"""A real SMTP server (aiosmtpd) as a process of its own: it outlives the senders the fault tests kill.

Environment: CIVIC_SMTP_PORT, CIVIC_SMTP_LOG (a file that gets the Message-ID of each accepted mail, one a
line, written before the server answers 250), CIVIC_SMTP_DELAY (seconds each DATA takes, so a batch is still
on its way when the sender is killed).
"""

from __future__ import annotations

import asyncio
import re
import signal
from typing import Any

from aiosmtpd.controller import Controller

from tests.faults.procs.common import env, say

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)\s*$", re.MULTILINE | re.IGNORECASE)


class Recording:
    def __init__(self, path: str, delay: float) -> None:
        self.log = open(path, "ab", buffering=0)  # noqa: SIM115 - open for the life of the process
        self.delay = delay

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        found = _MESSAGE_ID.search(envelope.original_content or b"")
        self.log.write((found.group(1) if found else b"<none>") + b"\n")
        return "250 Message accepted for delivery"


def main() -> None:
    handler = Recording(env("CIVIC_SMTP_LOG"), float(env("CIVIC_SMTP_DELAY", "0.02")))
    controller = Controller(handler, hostname="127.0.0.1", port=int(env("CIVIC_SMTP_PORT")))
    controller.start()
    say("listening")
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


if __name__ == "__main__":
    main()
