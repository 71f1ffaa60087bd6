"""Cost-point rate limits per API key: GCRA, in process memory or in Redis.

GCRA (the generic cell rate algorithm) is a token bucket kept as one number:
the theoretical arrival time (TAT) at which the bucket would be full again.
A key has `points` in a bucket that refills evenly over `window` seconds; an
operation of cost n is admitted when, after taking n points, the bucket would
not be more than empty. One number per key makes the Redis version a single
atomic script, which is what lets every replica share one limit.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol

#: Redis key prefix; the rest is the API key's id (never its secret).
REDIS_PREFIX = "union-gateway:rate:"

# KEYS[1]: the bucket; ARGV: cost, points, window (seconds). Redis's own clock,
# so replicas whose clocks disagree still share one timeline.
_GCRA_LUA = """
local cost = tonumber(ARGV[1])
local points = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = window / points
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + cost * interval
local allow_at = new_tat - window
if allow_at > now + 1e-9 then
  return {0, tostring((window - (tat - now)) / interval), tostring(allow_at - now)}
end
if cost > 0 then
  redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1)
end
return {1, tostring((window - (new_tat - now)) / interval), '0'}
"""


@dataclass(frozen=True)
class Decision:
    """The answer to one request for points."""

    allowed: bool
    #: Points left in the bucket after this request (before it, when refused).
    available: int
    #: Seconds until the refused request would be admitted (0 when admitted).
    retry_after: float

    @property
    def retry_after_header(self) -> str:
        """Whole seconds, rounded up, never 0: waiting that long is always enough."""
        return str(max(1, math.ceil(self.retry_after - 1e-6)))


class RateLimiter(Protocol):
    async def acquire(self, *, bucket: str, cost: int, points: int, window: float) -> Decision:
        """Take `cost` points from `bucket` if it holds them (cost 0 only reads the bucket)."""

    async def aclose(self) -> None:
        """Release connections."""


def _decision(allowed: bool, available: float, retry_after: float) -> Decision:
    return Decision(allowed=allowed, available=max(0, math.floor(available + 1e-6)), retry_after=max(0.0, retry_after))


class MemoryRateLimiter:
    """Buckets in this process: right for one replica, and for tests of the algorithm."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._tats: dict[str, float] = {}

    async def acquire(self, *, bucket: str, cost: int, points: int, window: float) -> Decision:
        # No await between reading and writing the TAT: atomic on the event loop.
        now = self._clock()
        interval = window / points
        tat = max(self._tats.get(bucket, now), now)
        new_tat = tat + cost * interval
        allow_at = new_tat - window
        if allow_at > now + 1e-9:
            return _decision(False, (window - (tat - now)) / interval, allow_at - now)
        if cost > 0:
            self._tats[bucket] = new_tat
            if len(self._tats) > 100_000:
                self._tats = {k: v for k, v in self._tats.items() if v > now}
        return _decision(True, (window - (new_tat - now)) / interval, 0.0)

    async def aclose(self) -> None:
        self._tats.clear()


class RedisRateLimiter:
    """Buckets in Redis, shared by every replica, updated by one Lua script per request."""

    def __init__(self, client) -> None:
        self._client = client
        self._script = client.register_script(_GCRA_LUA)

    @classmethod
    def from_url(cls, url: str) -> "RedisRateLimiter":
        import redis.asyncio as redis

        return cls(redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0))

    async def acquire(self, *, bucket: str, cost: int, points: int, window: float) -> Decision:
        allowed, available, retry_after = await self._script(
            keys=[REDIS_PREFIX + bucket], args=[cost, points, window]
        )
        return _decision(bool(int(allowed)), float(available), float(retry_after))

    async def aclose(self) -> None:
        await self._client.aclose()


def open_rate_limiter(redis_url: str | None) -> RateLimiter:
    """Redis when a URL is set (limits hold across replicas), else process memory."""
    if redis_url:
        return RedisRateLimiter.from_url(redis_url)
    return MemoryRateLimiter()
