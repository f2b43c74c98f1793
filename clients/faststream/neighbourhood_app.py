"""A neighbourhood app's subscriber: posts every meeting a municipality publishes on civic to the app's board.

It reads civic's registration stream with the subscriber kit (civic/subscriber, ``pip install civic[subscriber]``)
and FastStream, in a consumer group of its own. Run it with

    NEIGHBOURHOOD_TENANT=kreis-dithmarschen NEIGHBOURHOOD_BOARD_URL=https://board.example/api/posts \\
    REDIS_URL=redis://127.0.0.1:6379/0 python clients/faststream/neighbourhood_app.py

(``app`` is an ordinary FastStream application). Its AsyncAPI document, as FastStream makes it:
``python clients/faststream/neighbourhood_app.py --asyncapi`` (kept in neighbourhood_app.asyncapi.json).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from faststream import FastStream
from faststream.redis import RedisBroker
from faststream.specification import AsyncAPI

from civic.subscriber import CivicSubscriber
from civic.subscriber.events import RegistrationMeetingPublishedV1


@dataclass
class Settings:
    tenant: str = field(default_factory=lambda: os.environ.get("NEIGHBOURHOOD_TENANT", "kreis-dithmarschen"))
    board_url: str = field(
        default_factory=lambda: os.environ.get("NEIGHBOURHOOD_BOARD_URL", "http://127.0.0.1:8080/posts")
    )
    redis_url: str = field(default_factory=lambda: os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    #: civic's CIVIC_STREAM_PREFIX.
    prefix: str = field(default_factory=lambda: os.environ.get("CIVIC_STREAM_PREFIX", "civic"))
    group: str = "nachbarschaft"
    consumer: str | None = None
    reclaim_idle_ms: int = 30_000
    max_deliveries: int = 5


def board_post(event: RegistrationMeetingPublishedV1) -> dict[str, Any]:
    """What goes on the board: plain words, the date as people say it, and the link to register."""
    m = event.data
    when = m.starts_at.astimezone(ZoneInfo(m.timezone)).strftime("%d.%m.%Y, %H:%M Uhr")  # local time
    where = f" in {m.venue.name}" if m.venue else ""
    text = f"{m.title} am {when}{where}."
    if m.seats_left is not None:
        text += f" Noch {m.seats_left} freie Plätze."
    return {"title": f"Neue Veranstaltung: {m.title}", "text": text, "link": m.url, "source": "civic"}


@dataclass
class Neighbourhood:
    app: FastStream
    broker: RedisBroker
    kit: CivicSubscriber


def create(settings: Settings | None = None, *, client: httpx.AsyncClient | None = None) -> Neighbourhood:
    s = settings or Settings()
    http = client or httpx.AsyncClient(timeout=10)
    kit = CivicSubscriber(
        s.redis_url,
        group=s.group,
        prefix=s.prefix,
        consumer=s.consumer,
        reclaim_idle_ms=s.reclaim_idle_ms,
        max_deliveries=s.max_deliveries,
    )
    broker = RedisBroker(s.redis_url)

    @kit.subscriber(
        broker,
        "registration",
        types=[RegistrationMeetingPublishedV1],
        title="new-meetings",
        description="Meetings published on civic, posted to the neighbourhood board",
    )
    async def meeting_published(event: RegistrationMeetingPublishedV1) -> None:
        if event.tenant != s.tenant:
            return  # another municipality of the same installation
        # The event id as idempotency key: a redelivered event does not make a second post.
        response = await http.post(s.board_url, json=board_post(event), headers={"idempotency-key": str(event.id)})
        response.raise_for_status()  # the entry stays pending and is delivered again later

    async def close() -> None:
        await kit.stop()
        if client is None:
            await http.aclose()

    return Neighbourhood(FastStream(broker, on_startup=[kit.start], on_shutdown=[close]), broker, kit)


def asyncapi_json() -> str:
    """The app's AsyncAPI document as FastStream makes it (for a deployment with Redis at redis:6379)."""
    n = create(Settings(redis_url="redis://redis:6379/0", consumer="neighbourhood-1"))
    spec = AsyncAPI(n.broker, title="Nachbarschafts-App: neue Veranstaltungen", version="1.0.0").to_specification()
    return json.dumps(json.loads(spec.to_json()), indent=2, ensure_ascii=False) + "\n"


app = create().app

if __name__ == "__main__":
    if "--asyncapi" in sys.argv:
        print(asyncapi_json(), end="")
    else:
        asyncio.run(app.run())
