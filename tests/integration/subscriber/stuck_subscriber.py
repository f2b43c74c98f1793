"""A kit subscriber whose handler never returns: it holds what it read until it is killed (tests only).

python -m tests.integration.subscriber.stuck_subscriber REDIS_URL PREFIX GROUP CONSUMER
"""

from __future__ import annotations

import asyncio
import sys

from faststream.redis import RedisBroker

from civic.subscriber import CivicSubscriber
from civic.subscriber.events import RegistrationEvent


async def main(url: str, prefix: str, group: str, consumer: str) -> None:
    kit = CivicSubscriber(url, group=group, prefix=prefix, consumer=consumer)
    broker = RedisBroker(url, logger=None)

    @kit.subscriber(broker, "registration")
    async def hold(event: RegistrationEvent) -> None:
        print(f"holding {event.id}", flush=True)
        await asyncio.Event().wait()

    await kit.start()
    await broker.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
