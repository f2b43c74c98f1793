"""The whole of civic as one process (``python -m civic.up --no-demo``) on a fault test's own servers, a rush of
registrations through its HTTP API, and the ledger of what was attempted, acknowledged and delivered.

Used by the server-failover tests: PostgreSQL stopped and restarted mid-rush, a Redis primary killed under
Sentinel. Every registration is a different person with an address of its own, so the ledger can follow each
one from its HTTP answer to its row, its events at the consumers and its confirmation mail.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from civic.devservers import free_port
from tests.support import eventually, staff_headers

ROOT = Path(__file__).resolve().parents[2]
TENANT = "kreis-nordfriesland"
SERVER_VARIABLES = ("DATABASE_URL", "REDIS_URL", "REDIS_SENTINELS")
FAST = {
    "CIVIC_CONSUMER_BLOCK_MS": "100",
    "CIVIC_RELAY_POLL_SECONDS": "0.2",
    "CIVIC_RECLAIM_IDLE_MS": "1000",
    "CIVIC_RECLAIM_INTERVAL_SECONDS": "0.5",
    "CIVIC_MAINTENANCE_INTERVAL_SECONDS": "0.5",
    "CIVIC_NOTIFICATIONS_SENDER_POLL_SECONDS": "0.2",
    "CIVIC_LOG_JSON": "false",
    "PYTHONUNBUFFERED": "1",
}


@dataclass
class System:
    folder: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    smtp_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.folder / "civic.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def start(self) -> System:
        environ = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith("CIVIC_") and k not in ("DATABASE_URL", "REDIS_URL")
            },
            **FAST,
            "CIVIC_STATE_DIR": str(self.folder / "state"),
            "PYTHONPATH": str(ROOT),
            **self.env,
        }
        argv = [
            sys.executable,
            "-m",
            "civic.up",
            "--no-demo",
            "--port",
            str(self.port),
            "--smtp-port",
            str(self.smtp_port),
        ]
        self.process = self._spawn(argv, environ)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2) as client:

            async def ready() -> bool:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise AssertionError(f"civic.up exited ({self.process.returncode}):\n{self.log()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    return (await client.get("/readyz")).status_code == 200
                return False

            await eventually(ready, timeout=90, interval=0.1, what="civic ready")
        return self

    def _spawn(self, argv: list[str], environ: dict[str, str]) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as out:
            return subprocess.Popen(argv, env=environ, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def mails(self) -> list[EmailMessage]:
        out = []
        for path in sorted((self.folder / "state" / "mail").glob("*.eml")):
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            out.append(msg)
        return out

    def mails_per_recipient(self) -> tuple[Counter[str], int]:
        """Distinct mails per address, and how many arrived more than once with the same ``Message-ID``.

        The sender is at-least-once (services/notifications/sender.py): a mail whose outcome could not be
        recorded (PostgreSQL went away right after the SMTP server's 250) is sent again, as the same message,
        which mail clients show once. A second *different* mail to the same person is a duplicate effect.
        """
        seen = [(str(m["To"]).strip().lower(), str(m["Message-ID"])) for m in self.mails()]
        distinct = set(seen)
        return Counter(address for address, _ in distinct), len(seen) - len(distinct)

    async def create_meeting(self, capacity: int) -> str:
        staff = staff_headers(TENANT, "staff")
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10, headers=staff) as client:
            created = await client.post(
                "/api/registration/staff/meetings",
                json={
                    "title": "Auftaktveranstaltung Klimaschutzkonzept",
                    "venue": {"name": "Kreishaus", "street": "Marktstraße 6", "postal_code": "25813", "city": "Husum"},
                    "starts_at": "2099-06-01T18:00:00",
                    "ends_at": "2099-06-01T20:00:00",
                    "capacity": capacity,
                    "waitlist": False,
                    "registration_closes_at": "2099-05-30T23:59:00",
                },
            )
            assert created.status_code == 201, created.text
            meeting_id = str(created.json()["id"])
            published = await client.post(f"/api/registration/staff/meetings/{meeting_id}/publish")
            assert published.status_code == 200, published.text

        async def arrived() -> bool:
            # The notifications service renders confirmations only once it knows the meeting.
            async with httpx.AsyncClient(base_url=self.base_url, timeout=5) as c:
                return (await c.get(f"/api/registration/meetings/{meeting_id}")).status_code == 200

        await eventually(arrived, what="the published meeting")
        return meeting_id


@dataclass
class Rush:
    """Concurrent people registering, each with an address of their own; what each answer was."""

    base_url: str
    meeting_id: str
    workers: int = 8
    attempted: set[str] = field(default_factory=set)
    acknowledged: dict[str, str] = field(default_factory=dict)  # address -> registration id
    unavailable: int = 0
    without_retry_after: int = 0
    unexpected: list[str] = field(default_factory=list)
    #: (monotonic time, outcome) of every answer, to measure gaps.
    timeline: list[tuple[float, str]] = field(default_factory=list)
    _counter: int = 0

    async def run(self, stop: asyncio.Event, target: int) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=httpx.Timeout(15.0)) as client:
            await asyncio.gather(*(self._worker(client, stop, target) for _ in range(self.workers)))

    def _next(self) -> str:
        self._counter += 1
        return f"person{self._counter:05d}@example.org"

    async def _worker(self, client: httpx.AsyncClient, stop: asyncio.Event, target: int) -> None:
        while not stop.is_set() and len(self.acknowledged) < target:
            address = self._next()
            self.attempted.add(address)
            try:
                answer = await client.post(
                    f"/api/registration/meetings/{self.meeting_id}/registrations",
                    json={"name": f"Person {address[6:11]}", "email": address, "privacy_consent": True},
                )
            except httpx.TimeoutException as exc:
                self.unexpected.append(f"{address}: hung ({exc!r})")
                self.timeline.append((time.monotonic(), "hung"))
                continue
            except httpx.HTTPError as exc:
                self.unexpected.append(f"{address}: {exc!r}")
                self.timeline.append((time.monotonic(), "error"))
                await asyncio.sleep(0.1)
                continue
            if answer.status_code == 201:
                self.acknowledged[address] = str(answer.json()["id"])
                self.timeline.append((time.monotonic(), "ok"))
            elif answer.status_code == 503:
                self.unavailable += 1
                if "retry-after" not in answer.headers or answer.json().get("status") != 503:
                    self.without_retry_after += 1
                self.timeline.append((time.monotonic(), "503"))
                await asyncio.sleep(0.05)
            else:
                self.unexpected.append(f"{address}: {answer.status_code} {answer.text[:300]}")
                self.timeline.append((time.monotonic(), str(answer.status_code)))

    def first_ok_after(self, moment: float) -> float | None:
        return next((t for t, what in sorted(self.timeline) if t >= moment and what == "ok"), None)


@dataclass
class Ledger:
    lost: set[str]
    duplicate_seats: int
    events_missing: int
    mails_missing: set[str]
    duplicate_mails: dict[str, int]
    unexpected_rows: set[str]
    #: Events a consumer gave up on: missing at that consumer as surely as if they were never sent.
    dead_letters: list[str]
    #: The same message delivered again (at-least-once sending); reported, not a duplicate effect.
    resent_mails: int

    def assert_clean(self) -> None:
        assert not self.dead_letters, f"{len(self.dead_letters)} dead letters: {self.dead_letters[:3]}"
        assert not self.lost, f"lost {len(self.lost)} acknowledged registrations: {sorted(self.lost)[:10]}"
        assert self.duplicate_seats == 0, f"{self.duplicate_seats} duplicate seats"
        assert self.events_missing == 0, f"{self.events_missing} events missing at the notifications service"
        assert not self.mails_missing, (
            f"no confirmation for {len(self.mails_missing)}: {sorted(self.mails_missing)[:5]}"
        )
        assert not self.duplicate_mails, f"duplicate mails: {dict(list(self.duplicate_mails.items())[:5])}"
        assert not self.unexpected_rows, f"registrations nobody attempted: {sorted(self.unexpected_rows)[:5]}"


async def ledger(system: System, rush: Rush, database_url: str) -> Ledger:
    """Compare what the rush was told with the rows, the consumers' records and the mail, once drained."""
    from civic.services import ALL

    consumed = sorted(ALL["notifications"].subscriptions)
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "select email, count(*) as n from registration.registrations where meeting_id = $1 group by email",
            rush.meeting_id,
        )
        stored = {str(r["email"]).lower(): int(r["n"]) for r in rows}
        # The meeting's seat counter against the rows it counts: a seat counted twice (or not at all) shows.
        counter, counted = await conn.fetchrow(
            "select m.confirmed_seats, (select coalesce(sum(seats), 0) from registration.registrations r "
            "where r.meeting_id = m.id and r.status = 'confirmed') from registration.meetings m where m.id = $1",
            rush.meeting_id,
        )
        missing = await conn.fetchval(
            "select count(*) from registration.outbox o where o.type = any($1::text[]) and not exists "
            "(select 1 from notifications.processed_events p where p.event_id = o.id)",
            consumed,
        )
        dead: list[str] = []
        for schema in ALL:
            for r in await conn.fetch(f'select stream, type, error from "{schema}".dead_letters'):
                dead.append(f"{schema}: {r['type']} from {r['stream']}: {r['error'][:300]}")
    finally:
        await conn.close()
    mails, resent = system.mails_per_recipient()
    return Ledger(
        lost=set(rush.acknowledged) - set(stored),
        duplicate_seats=sum(n - 1 for n in stored.values() if n > 1) + abs(int(counter) - int(counted)),
        events_missing=int(missing),
        mails_missing={a for a in stored if mails[a] == 0},
        duplicate_mails={a: n for a, n in mails.items() if n > 1},
        unexpected_rows=set(stored) - rush.attempted,
        dead_letters=dead,
        resent_mails=resent,
    )


async def drained(system: System, rush: Rush, database_url: str) -> Any:
    """True once every stored registration has its confirmation mail and no event is still on its way."""
    try:
        current = await ledger(system, rush, database_url)
    except (OSError, asyncpg.PostgresError):
        return False
    return not current.mails_missing and current.events_missing == 0
