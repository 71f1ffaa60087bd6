"""Cost-point rate limits per API key: GCRA, in process memory, shared memory or Redis.

GCRA (the generic cell rate algorithm) is a token bucket kept as one number:
the theoretical arrival time (TAT) at which the bucket would be full again.
A key has `points` in a bucket that refills evenly over `window` seconds; an
operation of cost n is admitted when, after taking n points, the bucket would
not be more than empty. One number per key makes the Redis version a single
atomic script, which is what lets every replica share one limit. Without Redis,
the worker processes of one machine share their buckets through a file mapped
into memory (`SharedMemoryRateLimiter`), so a key gets its points once, not once
per worker.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import math
import mmap
import os
import struct
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


def _gcra(stored: float | None, now: float, cost: int, points: int, window: float) -> tuple[Decision, float | None]:
    """One GCRA step, the arithmetic of `_GCRA_LUA`, for every limiter that keeps its own TATs.

    `stored` is the bucket's TAT (None: no bucket, the same as a full one). Returns
    the decision and the TAT to store, or None when nothing changes (refused, or cost 0).
    """
    interval = window / points
    tat = now if stored is None else max(stored, now)
    new_tat = tat + cost * interval
    allow_at = new_tat - window
    if allow_at > now + 1e-9:
        return _decision(False, (window - (tat - now)) / interval, allow_at - now), None
    return _decision(True, (window - (new_tat - now)) / interval, 0.0), (new_tat if cost > 0 else None)


class MemoryRateLimiter:
    """Buckets in this process: right for one replica, and for tests of the algorithm."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._tats: dict[str, float] = {}

    async def acquire(self, *, bucket: str, cost: int, points: int, window: float) -> Decision:
        # No await between reading and writing the TAT: atomic on the event loop.
        now = self._clock()
        decision, new_tat = _gcra(self._tats.get(bucket), now, cost, points, window)
        if new_tat is not None:
            self._tats[bucket] = new_tat
            if len(self._tats) > 100_000:
                self._tats = {k: v for k, v in self._tats.items() if v > now}
        return decision

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


# The file: a header (magic, slot count), then `slots` slots of (bucket hash, TAT).
_HEADER = struct.Struct("<8sQ")
_SLOT = struct.Struct("<Qd")
_MAGIC = b"ugrate1\0"


def _bucket_hash(bucket: str) -> int:
    """64 bits of the bucket's name; never 0, which marks an empty slot."""
    return int.from_bytes(hashlib.blake2b(bucket.encode(), digest_size=8).digest(), "little") or 1


class SharedMemoryRateLimiter:
    """Buckets in a file mapped into memory, shared by the worker processes of one machine.

    The file is a hash table with open addressing (linear probing): a slot holds
    a bucket's 64-bit hash and its TAT. The table is never rehashed while it has
    room; when a new bucket finds it full, the slots whose TAT is past (expired
    buckets, the same as absent ones) are dropped and the table is rebuilt. If it
    is still full, every bucket is live: the new bucket is not stored and its
    request is decided as for a full bucket, so it is admitted (fails open) rather
    than anyone being refused for want of room. Size `slots` well above the keys
    active in one window.

    `slots` only counts when the file is created; an existing file keeps its own.
    Each process opens its own limiter: one inherited through fork would share
    its parent's flock (the lock belongs to the open file), which then excludes nothing.
    Put the file on tmpfs (/dev/shm, /run) or `create` it at start: monotonic time
    starts again at boot, so TATs from before a reboot mean nothing.
    """

    def __init__(self, path: str | os.PathLike, *, slots: int = 4096, clock=time.monotonic) -> None:
        if slots < 1:
            raise ValueError("slots must be at least 1")
        # time.monotonic is CLOCK_MONOTONIC on Linux: one clock for every process
        # of the machine, so TATs written by one worker mean the same to another.
        self._clock = clock
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            # Under the lock: of workers starting together, exactly one sizes a new file.
            with self._locked():
                size = os.fstat(self._fd).st_size
                if size == 0:
                    size = _HEADER.size + slots * _SLOT.size
                    os.ftruncate(self._fd, size)
                    os.pwrite(self._fd, _HEADER.pack(_MAGIC, slots), 0)
                magic, self._slots = _HEADER.unpack(os.pread(self._fd, _HEADER.size, 0))
                if magic != _MAGIC or self._slots < 1 or size != _HEADER.size + self._slots * _SLOT.size:
                    raise ValueError(f"{os.fspath(path)!r} is not a rate-limit file")
                self._map = mmap.mmap(self._fd, size)
        except BaseException:
            os.close(self._fd)
            raise

    @classmethod
    def create(cls, path: str | os.PathLike, *, slots: int = 4096) -> None:
        """A fresh, empty file at `path` (for a supervisor, before it starts its workers).

        Written beside `path` and renamed over it: a process that still has the old
        file mapped keeps it whole (cutting a mapped file short would crash it).
        """
        if slots < 1:
            raise ValueError("slots must be at least 1")
        path = os.fspath(path)
        temporary = f"{path}.{os.getpid()}.new"
        fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, _HEADER.size + slots * _SLOT.size)  # reads as zeros: every slot empty
            os.pwrite(fd, _HEADER.pack(_MAGIC, slots), 0)
        finally:
            os.close(fd)
        os.replace(temporary, path)

    @contextlib.contextmanager
    def _locked(self):
        # flock rather than a lock in memory: it excludes other processes, and the
        # kernel releases it when its holder dies, so a crashed worker cannot
        # wedge the rest. Held only for one read-modify-write, never across an await.
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _find(self, key: int) -> tuple[int | None, float | None]:
        """The slot of `key` and its TAT, or the empty slot where it would go and None,
        or (None, None) when the table is full without it."""
        start = key % self._slots
        for step in range(self._slots):
            index = (start + step) % self._slots
            found, tat = _SLOT.unpack_from(self._map, _HEADER.size + index * _SLOT.size)
            if found == key:
                return index, tat
            if found == 0:
                return index, None
        return None, None

    def _drop_expired(self, now: float) -> None:
        """Rebuild the table with only the live buckets: emptying a slot in place
        would cut the probe chains of the buckets stored past it."""
        table = self._map[_HEADER.size:]
        live = [(key, tat) for key, tat in _SLOT.iter_unpack(table) if key and tat > now]
        self._map[_HEADER.size:] = bytes(len(table))
        for key, tat in live:
            index, _ = self._find(key)
            _SLOT.pack_into(self._map, _HEADER.size + index * _SLOT.size, key, tat)

    async def acquire(self, *, bucket: str, cost: int, points: int, window: float) -> Decision:
        key = _bucket_hash(bucket)
        with self._locked():
            now = self._clock()
            index, stored = self._find(key)
            decision, new_tat = _gcra(stored, now, cost, points, window)
            if new_tat is not None:
                if index is None:
                    self._drop_expired(now)
                    index, _ = self._find(key)
                if index is not None:  # else still full: admitted, not stored (see the class)
                    _SLOT.pack_into(self._map, _HEADER.size + index * _SLOT.size, key, new_tat)
        return decision

    async def aclose(self) -> None:
        """Unmap and close the file; it stays, for the other workers."""
        if not self._map.closed:
            self._map.close()
            os.close(self._fd)


def open_rate_limiter(redis_url: str | None, shared_path: str | os.PathLike | None = None) -> RateLimiter:
    """Redis when a URL is set (limits hold across replicas); else the file at
    `shared_path` (across the worker processes of one machine); else process memory."""
    if redis_url:
        return RedisRateLimiter.from_url(redis_url)
    if shared_path:
        return SharedMemoryRateLimiter(shared_path)
    return MemoryRateLimiter()
