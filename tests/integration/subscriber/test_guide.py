"""docs/subscribing.md taken at its word: its plain FastStream app, the Node.js consumer it points to and its
webhook check, each run as written against civic's relay, real Redis and civic's own signing."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import sys
import time
from pathlib import Path
from uuid import uuid4

from shared.contracts.registration import MeetingCancelledV1, MeetingPublishedV1
from tests.conftest import REDIS_URL
from tests.integration.subscriber.conftest import Civic
from tests.integration.subscriber.test_neighbourhood_app import meeting
from tests.node import NODE_DIR, node_ready

ROOT = Path(__file__).resolve().parents[3]
GUIDE = ROOT / "docs" / "subscribing.md"


def guide_block(first_line: str) -> str:
    """The fenced code block of the guide that starts with ``first_line``."""
    text = GUIDE.read_text()
    for block in text.split("```")[1::2]:
        body = block.split("\n", 1)[1]
        if body.startswith(first_line):
            return body
    raise LookupError(f"no code block starting with {first_line!r} in {GUIDE}")


async def read_lines(stream: asyncio.StreamReader, n: int, start: str = "", timeout: float = 30) -> list[str]:
    """The next ``n`` lines starting with ``start`` (FastStream logs to the same output)."""
    lines: list[str] = []
    async with asyncio.timeout(timeout):
        while len(lines) < n:
            line = await stream.readline()
            if not line:
                break
            if line.decode().startswith(start):
                lines.append(line.decode().strip())
    return lines


async def test_the_guides_plain_faststream_app_consumes_civics_events(civic: Civic, prefix: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = tmp_path / "plain_faststream_app.py"
    app.write_text(guide_block("# plain_faststream_app.py"))
    before = await civic.record(meeting("Vorher"), subject="meeting/a")
    await civic.record(MeetingCancelledV1(meeting_id=uuid4()), subject="meeting/b")
    await civic.publish()  # before the app's first start: its group at 0 must still see it
    env = {**os.environ, "REDIS_URL": REDIS_URL, "CIVIC_STREAM_PREFIX": prefix, "CONSUMER": "app-1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(app), cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        first = await read_lines(proc.stdout, 1, "new meeting:")
        after = await civic.record(meeting("Nachher"), subject="meeting/c")
        await civic.publish()
        second = await read_lines(proc.stdout, 1, "new meeting:")
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)
    assert first == [f"new meeting: kreis-dithmarschen Vorher {before.id}"]
    assert second == [f"new meeting: kreis-dithmarschen Nachher {after.id}"]
    assert await civic.pending("registration", "my-app") == 0


async def test_the_node_consumer_reads_new_and_former_entries(civic: Civic, prefix: str) -> None:
    node = node_ready()
    sent = [await civic.record(meeting(f"Treffen {i}"), subject=f"meeting/{i}") for i in range(3)]
    await civic.publish()
    # An entry as civic wrote them before the move to __data__.
    legacy = await civic.record(MeetingCancelledV1(meeting_id=uuid4()), subject="meeting/0")
    await civic.redis.xadd(civic.stream("registration"), {"event": legacy.model_dump_json(), "position": "9"})
    await civic.pool.execute("update outbox set published_at = now() where id = $1", legacy.id)
    env = {
        **os.environ,
        "REDIS_URL": REDIS_URL,
        "STREAM": civic.stream("registration"),
        "GROUP": "node-app",
        "STOP_AFTER": "4",
    }
    proc = await asyncio.create_subprocess_exec(
        node, str(NODE_DIR / "consumer.mjs"), cwd=NODE_DIR, env=env, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    lines = await read_lines(proc.stdout, 4)
    assert await asyncio.wait_for(proc.wait(), 20) == 0
    got = [json.loads(line) for line in lines]
    assert [g["id"] for g in got] == [str(e.id) for e in [*sent, legacy]]
    assert got[0]["type"] == "civic.registration.meeting.published.v1" and got[0]["data"]["title"] == "Treffen 0"
    assert got[3]["type"] == "civic.registration.meeting.cancelled.v1"
    assert await civic.pending("registration", "node-app") == 0


def test_the_guides_webhook_check_accepts_civics_signature_and_nothing_else() -> None:
    from services.notifications.domain import webhook_signature

    namespace: dict[str, object] = {}
    exec(compile(guide_block("# verify_webhook.py"), "verify_webhook.py", "exec"), namespace)
    verify = namespace["verify"]
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    body = MeetingPublishedV1.model_validate(meeting().model_dump()).model_dump_json().encode()
    now = int(time.time())
    msg_id = str(uuid4())
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(now),
        "webhook-signature": webhook_signature(secret, msg_id, now, body),
    }
    assert verify(secret, headers, body) is True  # type: ignore[operator]
    assert verify(secret, headers, body + b" ") is False  # type: ignore[operator]
    other = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    assert verify(other, headers, body) is False  # type: ignore[operator]
    stale = {**headers, "webhook-timestamp": str(now - 3600)}
    stale["webhook-signature"] = webhook_signature(secret, msg_id, now - 3600, body)
    assert verify(secret, stale, body) is False  # type: ignore[operator]
