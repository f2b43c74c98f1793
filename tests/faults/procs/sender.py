"""The notifications service's mail workers as a process, exactly as the service runs them (one per SMTP
connection, sharing pool, recorder and prototypes), so a test can SIGKILL them in the middle of a batch.

Environment: DATABASE_URL, REDIS_URL, CIVIC_PREFIX and the service's own ``CIVIC_NOTIFICATIONS_*`` settings.
"""

from __future__ import annotations

import asyncio

from services.notifications.loops import loops
from services.notifications.settings import NotificationSettings
from shared.bus.outbox import Outbox
from shared.bus.streams import redis_client
from shared.clock import SystemClock
from shared.db import create_pool
from shared.service import ServiceContext
from shared.settings import Settings
from tests.faults.procs.common import configure_logging, install_stop, keys, say


async def main() -> None:
    configure_logging()
    stop = asyncio.Event()
    install_stop(stop)
    settings = Settings()
    nsettings = NotificationSettings()
    pool = await create_pool(settings.database_url, "notifications", max_size=nsettings.smtp_pool_size + 2)
    redis = redis_client(settings.redis_url)
    ctx = ServiceContext(
        "notifications", settings, pool, redis, Outbox("notifications"), SystemClock(), keys(), nsettings
    )
    mail_workers = loops(ctx)[:-1]  # the last one is the webhook sender
    say("started")
    await asyncio.gather(*(worker(stop) for worker in mail_workers))
    await redis.aclose()
    await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
