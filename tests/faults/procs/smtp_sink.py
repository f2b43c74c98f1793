"""A real SMTP server (aiosmtpd) as a process of its own: it outlives the senders the fault tests kill.

Environment: CIVIC_SMTP_PORT, CIVIC_SMTP_LOG (a file that gets the Message-ID of each accepted mail, one a
line, written before the server answers 250), CIVIC_SMTP_DELAY (seconds each DATA takes, so a batch is still
on its way when the sender is killed).
"""

from __future__ import annotations

import signal

from tests.faults.procs.common import env, say
from tests.mail import Sink, SmtpServer


def main() -> None:
    log = open(env("CIVIC_SMTP_LOG"), "ab", buffering=0)  # noqa: SIM115 - open for the life of the process
    sink = Sink(delay=float(env("CIVIC_SMTP_DELAY", "0.02")), log=log)
    server = SmtpServer(port=int(env("CIVIC_SMTP_PORT")), sink=sink)
    server.start()
    say("listening")
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    server.stop()


if __name__ == "__main__":
    main()
