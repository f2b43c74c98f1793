"""The whole of civic as one process (``python -m civic.up --no-demo``) on a fault test's own servers, a rush of
registrations and of survey responses through its HTTP API, and the ledger of what was attempted, acknowledged
and delivered.

Used by the server-failover tests: PostgreSQL stopped and restarted mid-rush, a Redis primary killed under
Sentinel. Every registration is a different person with an address of its own, so the ledger can follow each
one from its HTTP answer to its row, its events at the consumers and its confirmation mail. Every survey
response carries a submission key of its own (``Idempotency-Key``), retried unchanged after a 503 or a broken
connection, so the ledger can follow each from its answer to its stored submission, the result counters and its
``response.completed`` event in the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from civic.devservers import free_port
from services.surveys.domain import RESPONSES as RESPONSES_COUNTER
from services.surveys.domain import submission_key_hash
from shared.bus.streams import Keys, ensure_group, entry_event
from shared.contracts.registry import REGISTRY
from tests.mail import MailFolder
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
    # A mail claimed just before PostgreSQL went away stays 'sending' for the lease: the default two minutes
    # would be most of the test's run time (the SMTP sink answers in milliseconds, so no lease runs out early).
    "CIVIC_NOTIFICATIONS_LEASE_SECONDS": "10",
    "CIVIC_LOG_JSON": "false",
    "PYTHONUNBUFFERED": "1",
    # Every rush comes from one address, faster than any school class behind one: the rate limits
    # (registrations per address, the per-survey throttle) would answer it with 429s.
    "CIVIC_RATE_LIMITS": "false",
}
#: The consumer group the ledger reads the surveys stream with; created before the survey exists, it also
#: holds back trimming, so every entry is still there to count at the end.
LEDGER_GROUP = "faults-ledger"
COMPLETED = "civic.surveys.response.completed.v1"
SURVEYS_STREAM = Keys().stream(REGISTRY.get(COMPLETED).stream)


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
        return MailFolder(self.folder / "state" / "mail").read()

    def mails_per_recipient(self) -> tuple[Counter[str], int]:
        """Distinct mails per address, and how many arrived more than once with the same ``Message-ID``.

        The sender is at-least-once (services/notifications/loops.py): a mail whose outcome could not be
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

    async def open_survey(self, redis: aioredis.Redis) -> Survey:
        """A public survey open from a minute ago; the ledger's group on its stream exists before any event."""
        await ensure_group(redis, SURVEYS_STREAM, LEDGER_GROUP)
        staff = staff_headers(TENANT, "staff")
        now = datetime.now(UTC)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10, headers=staff) as client:
            created = await client.post(
                "/api/surveys/surveys",
                json={
                    "title": "Radverkehr im Kreis",
                    "slug": "radverkehr",
                    "opens_at": (now - timedelta(minutes=1)).isoformat(),
                    "closes_at": (now + timedelta(days=30)).isoformat(),
                    "sections": [
                        {
                            "id": "rad",
                            "title": "Ihr Weg",
                            "questions": [
                                {"id": "online", "kind": "yes_no", "text": "Fahren Sie Rad?", "required": True},
                                {"id": "sat", "kind": "scale", "text": "Wie zufrieden sind Sie?", "min": 1, "max": 5},
                            ],
                        }
                    ],
                },
            )
            assert created.status_code == 201, created.text
            survey = Survey(str(created.json()["id"]), str(created.json()["slug"]))
            published = await client.post(f"/api/surveys/surveys/{survey.id}/publish")
            assert published.status_code == 200, published.text

        async def accepting() -> bool:
            async with httpx.AsyncClient(base_url=self.base_url, timeout=5) as c:
                answer = await c.get(f"/api/surveys/public/{TENANT}/{survey.slug}")
                return answer.status_code == 200 and answer.json()["status"] == "open"

        await eventually(accepting, what="the survey taking responses")
        return survey


@dataclass(kw_only=True)
class Flow:
    """What concurrent clients' answers were: the bookkeeping every rush shares."""

    unavailable: int = 0
    without_retry_after: int = 0
    unexpected: list[str] = field(default_factory=list)
    #: (monotonic time, outcome) of every answer, to measure gaps.
    timeline: list[tuple[float, str]] = field(default_factory=list)

    def _ok(self) -> None:
        self.timeline.append((time.monotonic(), "ok"))

    def _broken(self, what: str, exc: httpx.HTTPError) -> None:
        """No answer at all: a hang (timeout) or a refused or broken connection; both are unexpected."""
        self.unexpected.append(f"{what}: {'hung' if isinstance(exc, httpx.TimeoutException) else ''}{exc!r}")
        self.timeline.append((time.monotonic(), "hung" if isinstance(exc, httpx.TimeoutException) else "error"))

    def _unavailable(self, answer: httpx.Response) -> None:
        self.unavailable += 1
        if "retry-after" not in answer.headers or answer.json().get("status") != 503:
            self.without_retry_after += 1
        self.timeline.append((time.monotonic(), "503"))

    def _other(self, what: str, answer: httpx.Response) -> None:
        self.unexpected.append(f"{what}: {answer.status_code} {answer.text[:300]}")
        self.timeline.append((time.monotonic(), str(answer.status_code)))

    def first_ok_after(self, moment: float) -> float | None:
        return next((t for t, what in sorted(self.timeline) if t >= moment and what == "ok"), None)


@dataclass
class Rush(Flow):
    """Concurrent people registering, each with an address of their own; what each answer was."""

    base_url: str
    meeting_id: str
    workers: int = 8
    #: After each acknowledged registration: a rush that lasts through a fault without filling the mail queue.
    pause: float = 0.02
    attempted: set[str] = field(default_factory=set)
    acknowledged: dict[str, str] = field(default_factory=dict)  # address -> registration id
    _counter: int = 0

    async def run(self, stop: asyncio.Event, target: int) -> None:
        """Until told to stop and ``target`` registrations are acknowledged: told to stop only once the fault is
        over, the rush is sure to be flowing through all of it however fast the machine is."""
        async with httpx.AsyncClient(base_url=self.base_url, timeout=httpx.Timeout(15.0)) as client:
            await asyncio.gather(*(self._worker(client, stop, target) for _ in range(self.workers)))

    def _next(self) -> str:
        self._counter += 1
        return f"person{self._counter:05d}@example.org"

    async def _worker(self, client: httpx.AsyncClient, stop: asyncio.Event, target: int) -> None:
        while not (stop.is_set() and len(self.acknowledged) >= target):
            address = self._next()
            self.attempted.add(address)
            try:
                answer = await client.post(
                    f"/api/registration/meetings/{self.meeting_id}/registrations",
                    json={"name": f"Person {address[6:11]}", "email": address, "privacy_consent": True},
                )
            except httpx.HTTPError as exc:
                self._broken(address, exc)
                if not isinstance(exc, httpx.TimeoutException):
                    await asyncio.sleep(0.1)
                continue
            if answer.status_code == 201:
                self.acknowledged[address] = str(answer.json()["id"])
                self._ok()
                await asyncio.sleep(self.pause)
            elif answer.status_code == 503:
                self._unavailable(answer)
                await asyncio.sleep(0.05)
            else:
                self._other(address, answer)


@dataclass
class Survey:
    id: str
    slug: str


@dataclass
class ResponseRush(Flow):
    """Concurrent people answering a survey until told to stop, each submission with a key of its own that is
    sent again, unchanged, after a 503 or a broken connection: the retry must not store a second response."""

    base_url: str
    survey: Survey
    workers: int = 4
    #: Between one worker's submissions: responses keep coming for as long as the registrations take, without
    #: taking the (shared, small) machine from them.
    pause: float = 0.05
    attempted: set[str] = field(default_factory=set)
    acknowledged: set[str] = field(default_factory=set)  # submission keys answered 201 or 200 (a replay)
    #: Retries answered 200 with ``Idempotent-Replayed``: the first attempt was stored though its answer was lost.
    replayed: int = 0
    _counter: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=httpx.Timeout(15.0)) as client:
            await asyncio.gather(*(self._worker(client, stop) for _ in range(self.workers)))

    def _next(self) -> str:
        self._counter += 1
        return f"faults-response-{self._counter:06d}"

    async def _worker(self, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        url = f"/api/surveys/public/{TENANT}/{self.survey.slug}/responses"
        while not stop.is_set():
            key = self._next()
            self.attempted.add(key)
            n = self._counter
            body = {"answers": {"online": n % 2 == 0, "sat": 1 + n % 5}}
            while key not in self.acknowledged:  # this key until it is answered, even after stop
                try:
                    answer = await client.post(url, json=body, headers={"Idempotency-Key": key})
                except httpx.HTTPError as exc:
                    self._broken(key, exc)
                    await asyncio.sleep(0.1)
                    continue
                if answer.status_code in (200, 201):
                    self.acknowledged.add(key)
                    self.replayed += answer.status_code == 200
                    self._ok()
                elif answer.status_code == 503:
                    self._unavailable(answer)
                    await asyncio.sleep(0.05)
                else:
                    self._other(key, answer)
                    break
            await asyncio.sleep(self.pause)


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

    consumed = ALL["notifications"].event_types
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


@dataclass
class SurveyLedger:
    """What the response rush was told against the surveys schema and the surveys stream."""

    acknowledged: int
    #: Acknowledged submission keys without a stored submission.
    lost: int
    #: Stored submissions whose key nobody sent.
    unexpected: int
    stored: int
    submissions: int
    #: The result counter of responses (summed over its shards) and what the staff results API reports.
    counted: int
    reported: int
    #: ``response.completed`` rows in the outbox, those not yet published, and where their ids stand in the stream.
    events: int
    unpublished: int
    missing_in_stream: int
    stray_in_stream: int
    #: Entries read more than once: the relay published a batch again whose marking PostgreSQL did not commit
    #: (at-least-once; consumers' processed-event records absorb it). Reported, not a duplicate effect.
    republished: int
    replayed: int

    @property
    def duplicate_effects(self) -> int:
        return (self.stored - self.submissions) + abs(self.counted - self.stored) + abs(self.reported - self.stored)

    def line(self) -> str:
        return (
            f"survey responses: {self.acknowledged} acknowledged ({self.replayed} as replays of a retried key), "
            f"{self.stored} stored, counted {self.counted} (results API {self.reported}); lost {self.lost}, "
            f"duplicate effects {self.duplicate_effects}; response.completed events {self.events}, "
            f"unpublished {self.unpublished}, missing in the stream {self.missing_in_stream}, "
            f"published again {self.republished}"
        )

    def assert_clean(self) -> None:
        assert self.acknowledged, "no survey response was acknowledged: the test proved nothing"
        assert self.lost == 0, f"lost {self.lost} acknowledged survey responses"
        assert self.unexpected == 0, f"{self.unexpected} stored submissions nobody attempted"
        assert self.stored == self.submissions, f"{self.stored} responses for {self.submissions} submission keys"
        assert self.counted == self.stored, f"result counter {self.counted} for {self.stored} stored responses"
        assert self.reported == self.stored, f"results API says {self.reported} for {self.stored} stored responses"
        assert self.events == self.stored, f"{self.events} response.completed events for {self.stored} responses"
        assert self.unpublished == 0, f"{self.unpublished} response.completed events never published"
        assert self.missing_in_stream == 0, f"{self.missing_in_stream} response.completed events missing in the stream"
        assert self.stray_in_stream == 0, f"{self.stray_in_stream} response.completed entries not in the outbox"


async def read_ledger_group(redis: aioredis.Redis, seen: Counter[str]) -> None:
    """Read what the ledger's group has not read yet, counting the ``response.completed`` event ids."""
    import json

    while True:
        reply = await redis.xreadgroup(LEDGER_GROUP, "ledger", {SURVEYS_STREAM: ">"}, count=1000)
        entries = reply[0][1] if reply else []
        if not entries:
            return
        for _id, fields in entries:
            event = json.loads(entry_event(fields) or b"{}")
            if event.get("type") == COMPLETED:
                seen[str(event["id"])] += 1


async def survey_ledger(
    system: System, answers: ResponseRush, database_url: str, redis: aioredis.Redis, seen: Counter[str]
) -> SurveyLedger:
    """Compare what the response rush was told with the surveys schema and the stream, once drained."""
    await read_ledger_group(redis, seen)
    conn = await asyncpg.connect(database_url)
    try:
        survey_id = answers.survey.id
        keys = {
            bytes(r["key_hash"])
            for r in await conn.fetch("select key_hash from surveys.submissions where survey_id = $1", survey_id)
        }
        stored = int(await conn.fetchval("select count(*) from surveys.responses where survey_id = $1", survey_id))
        counted = int(
            await conn.fetchval(
                "select coalesce(sum(count), 0) from surveys.result_counters where survey_id = $1 and key = $2",
                survey_id,
                RESPONSES_COUNTER,
            )
        )
        rows = await conn.fetch("select id, published_at from surveys.outbox where type = $1", COMPLETED)
    finally:
        await conn.close()
    async with httpx.AsyncClient(base_url=system.base_url, timeout=10, headers=staff_headers(TENANT, "staff")) as c:
        results = await c.get(f"/api/surveys/surveys/{survey_id}/results")
        assert results.status_code == 200, results.text
    outbox = {str(r["id"]) for r in rows}
    hashes = {submission_key_hash(k): k for k in answers.attempted}
    return SurveyLedger(
        acknowledged=len(answers.acknowledged),
        lost=sum(1 for k in answers.acknowledged if submission_key_hash(k) not in keys),
        unexpected=sum(1 for h in keys if h not in hashes),
        stored=stored,
        submissions=len(keys),
        counted=counted,
        reported=int(results.json()["responses"]),
        events=len(rows),
        unpublished=sum(1 for r in rows if r["published_at"] is None),
        missing_in_stream=len(outbox - set(seen)),
        stray_in_stream=len(set(seen) - outbox),
        republished=sum(n - 1 for n in seen.values()),
        replayed=answers.replayed,
    )


async def drained(
    system: System,
    rush: Rush,
    database_url: str,
    answers: ResponseRush | None = None,
    redis: Callable[[], Awaitable[aioredis.Redis]] | None = None,
    seen: Counter[str] | None = None,
) -> Any:
    """True once every stored registration has its confirmation mail and no event is still on its way (and,
    with a response rush, every response's event is published and read by the ledger's group)."""
    try:
        current = await ledger(system, rush, database_url)
        if current.mails_missing or current.events_missing:
            return False
        if answers is None:
            return True
        assert redis is not None and seen is not None
        survey = await survey_ledger(system, answers, database_url, await redis(), seen)
    except (OSError, asyncpg.PostgresError, RedisError):
        return False
    return survey.unpublished == 0 and survey.missing_in_stream == 0
