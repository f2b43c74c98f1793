"""Rate limits on public writes, shared by every service and every replica (token buckets in Redis).

A ``Rule`` is a bucket of ``burst`` tokens refilled at ``per_hour`` tokens an hour; each request takes one
token from every bucket it is checked against (per client address, per target mailbox, per survey ...). All
buckets of one request are checked and taken in one Lua script, so a refusal takes nothing, and the time is
Redis's own, the same for all replicas. Refused requests get a 429 problem document (type ``rate-limited``)
with ``Retry-After`` in seconds.

Bucket keys are an HMAC of what they count (an address, a mailbox) under a secret that lives in Redis for a
day: a key cannot be traced back to an address once the day's secret is gone, and the buckets expire once full
again. When Redis cannot be reached the limits let requests through (fail open) and say so in the log, at most
once a minute: losing a registration to an outage of the limiter would be worse than a short flood.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import redis.asyncio as aioredis
from prometheus_client import Counter
from redis.exceptions import RedisError
from starlette.requests import Request

from shared.http.clients import client_address
from shared.http.problems import Problem
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.service import ServiceContext

log = logging.getLogger(__name__)

RATE_LIMITED = Counter("civic_rate_limited_total", "Requests refused by a rate limit", ["rule"])
RATE_LIMIT_UNAVAILABLE = Counter(
    "civic_rate_limit_unavailable_total", "Requests let through because Redis could not be asked", ["rule"]
)

# KEYS: the buckets; ARGV: burst and refill per second for each bucket, in the same order.
# Returns {'0', 0} when every bucket had a token (one is taken from each), else the seconds until all have one
# and the (1-based) index of the emptiest bucket.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local levels = {}
local wait = 0
local emptiest = 0
for i, key in ipairs(KEYS) do
  local burst = tonumber(ARGV[2 * i - 1])
  local rate = tonumber(ARGV[2 * i])
  local b = redis.call('HMGET', key, 'tokens', 'at')
  local tokens = tonumber(b[1]) or burst
  local at = tonumber(b[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
  levels[i] = tokens
  if tokens < 1 and (1 - tokens) / rate > wait then
    wait = (1 - tokens) / rate
    emptiest = i
  end
end
if wait > 0 then
  return {tostring(wait), emptiest}
end
for i, key in ipairs(KEYS) do
  local burst = tonumber(ARGV[2 * i - 1])
  local rate = tonumber(ARGV[2 * i])
  redis.call('HSET', key, 'tokens', levels[i] - 1, 'at', now)
  redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
end
return {'0', 0}
"""


@dataclass(frozen=True)
class Rule:
    name: str
    burst: int
    per_hour: float

    @property
    def per_second(self) -> float:
        return self.per_hour / 3600


class Limiter:
    def __init__(self, redis: aioredis.Redis, prefix: str, *, enabled: bool = True) -> None:
        self.redis = redis
        self.prefix = f"{prefix}:ratelimit"
        self.enabled = enabled
        self._script = redis.register_script(_TAKE)
        self._secret: tuple[str, bytes] | None = None
        self._last_warning = 0.0

    async def _day_secret(self) -> bytes:
        day = datetime.now(UTC).date().isoformat()
        if self._secret is None or self._secret[0] != day:
            key = f"{self.prefix}:secret:{day}"
            await self.redis.set(key, secrets.token_bytes(32), nx=True, ex=2 * 86400)
            value = await self.redis.get(key)
            if value is None:
                raise RedisError("rate limit secret vanished")
            self._secret = (day, value if isinstance(value, bytes) else str(value).encode())
        return self._secret[1]

    async def take(self, *checks: tuple[Rule, str]) -> float:
        """0 if every check had a token (and one is taken from each), else the seconds to wait."""
        return (await self._take(checks))[0]

    async def _take(self, checks: tuple[tuple[Rule, str], ...]) -> tuple[float, Rule | None]:
        if not self.enabled or not checks:
            return 0.0, None
        try:
            secret = await self._day_secret()
            keys = [
                f"{self.prefix}:{rule.name}:{hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()[:32]}"
                for rule, value in checks
            ]
            args: list[float] = []
            for rule, _ in checks:
                args += [rule.burst, rule.per_second]
            wait, emptiest = await self._script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            for rule, _ in checks:
                RATE_LIMIT_UNAVAILABLE.labels(rule.name).inc()
            if time.monotonic() - self._last_warning > 60:
                self._last_warning = time.monotonic()
                log.warning("rate limits unavailable, letting requests through", extra={"error": repr(exc)})
            return 0.0, None
        return float(wait), checks[int(emptiest) - 1][0] if int(emptiest) else None

    async def enforce(self, *checks: tuple[Rule, str]) -> None:
        wait, refusing = await self._take(checks)
        if wait > 0:
            RATE_LIMITED.labels(refusing.name if refusing else "unknown").inc()
            raise Problem(
                429,
                "Too many requests",
                type_="rate-limited",
                detail="Too many requests of this kind from here or for this address; please try again later.",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
                retry_after=max(1, math.ceil(wait)),
            )


_limiters: dict[int, tuple[ServiceContext, Limiter]] = {}


def of(ctx: ServiceContext) -> Limiter:
    """The limiter of a running service context, made on first use."""
    found = _limiters.get(id(ctx))
    if found is None or found[0] is not ctx:
        found = (ctx, Limiter(ctx.redis, ctx.keys.prefix, enabled=ctx.settings.rate_limits))
        _limiters[id(ctx)] = found
    return found[1]


async def enforce(request: Request, ctx: ServiceContext, *checks: tuple[Rule, str]) -> None:
    """429 unless every check has a token; ``client`` stands for the request's client address."""
    who = client(request, ctx.settings)
    await of(ctx).enforce(*((rule, who if value == CLIENT else value) for rule, value in checks))


#: Placeholder in ``enforce``'s checks for the request's client address.
CLIENT = "\x00client"


def client(request: Request, settings: Settings) -> str:
    """The client address a per-client limit counts under (see shared/http/clients.py)."""
    return client_address(request, settings.trusted_proxies)


def mailbox(address: str) -> str:
    """The inbox an address reaches: lower-cased, without a ``+tag`` (``a+1@x`` and ``a+2@x`` are one inbox)."""
    local, _, domain = address.strip().lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"
