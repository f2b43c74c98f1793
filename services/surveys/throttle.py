"""Flood throttling per client without keeping who the client is.

The counter's key is an HMAC of the client's address under a secret that exists for one day only (created
at random in Redis, expiring after two days), in a fixed window (INCR + EXPIRE). Once the day's secret is
gone, nobody can tell which address a key belonged to; the counters themselves expire after two windows.

When Redis cannot be reached the throttle lets the response through (fails open) and logs that it did: a
survey stays answerable during a Redis outage, and duplicates are prevented by submission keys in
PostgreSQL, not by the throttle.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shared.clock import Clock

log = logging.getLogger(__name__)


class Throttle:
    def __init__(self, redis: aioredis.Redis, prefix: str, *, limit: int, window_seconds: int, clock: Clock) -> None:
        self.redis = redis
        self.prefix = f"{prefix}:surveys:throttle"
        self.limit = limit
        self.window = max(1, window_seconds)
        self.clock = clock
        self._secrets: dict[str, bytes] = {}
        self._last_warning = 0.0

    async def _secret(self, day: str) -> bytes:
        if day not in self._secrets:
            key = f"{self.prefix}:secret:{day}"
            await self.redis.set(key, secrets.token_bytes(32), nx=True, ex=2 * 86400)
            value = await self.redis.get(key)
            if value is None:
                raise RedisError("throttle secret vanished")
            self._secrets = {day: value if isinstance(value, bytes) else value.encode()}
        return self._secrets[day]

    async def allow(self, client: str) -> tuple[bool, int]:
        """(allowed, seconds until the window ends)."""
        now = self.clock.now()
        epoch = int(now.timestamp())
        retry_after = self.window - epoch % self.window
        try:
            secret = await self._secret(now.date().isoformat())
            digest = hmac.new(secret, client.encode(), hashlib.sha256).hexdigest()[:32]
            key = f"{self.prefix}:{epoch // self.window}:{digest}"
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.incr(key)
                pipe.expire(key, 2 * self.window)
                count, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            if time.monotonic() - self._last_warning > 60:
                self._last_warning = time.monotonic()
                log.warning("throttle unavailable, letting responses through", extra={"error": repr(exc)})
            return True, 0
        return int(count) <= self.limit, retry_after
