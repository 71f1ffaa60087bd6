"""GCRA cost-point limits: in memory and in a real Redis shared by two limiters."""
from __future__ import annotations

import asyncio
import uuid

import pytest

from sources.rate_limit import Decision, MemoryRateLimiter, RedisRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_bucket_admits_its_points_then_refills_evenly():
    clock = Clock()
    limiter = MemoryRateLimiter(clock=clock)
    take = lambda cost: limiter.acquire(bucket="k", cost=cost, points=10, window=20.0)  # noqa: E731
    first = await take(4)
    assert (first.allowed, first.available) == (True, 6)
    assert (await take(6)).available == 0
    refused = await take(3)
    # 3 points at one point per 2 s: 6 s away.
    assert (refused.allowed, refused.available) == (False, 0)
    assert refused.retry_after == pytest.approx(6.0)
    assert refused.retry_after_header == "6"
    clock.now += 5.9
    assert not (await take(3)).allowed
    clock.now += 0.1
    assert (await take(3)).allowed
    clock.now += 100
    assert (await take(0)).available == 10  # full again, never more than full


async def test_an_operation_over_the_whole_bucket_is_never_admitted():
    limiter = MemoryRateLimiter(clock=Clock())
    refused = await limiter.acquire(bucket="k", cost=11, points=10, window=10.0)
    assert not refused.allowed and refused.available == 10


def test_retry_after_header_is_whole_seconds_rounded_up():
    assert Decision(allowed=False, available=0, retry_after=0.2).retry_after_header == "1"
    assert Decision(allowed=False, available=0, retry_after=2.0).retry_after_header == "2"
    assert Decision(allowed=False, available=0, retry_after=2.01).retry_after_header == "3"


async def test_two_limiters_sharing_redis_admit_no_more_than_the_limit_together(redis_url):
    bucket = f"key_{uuid.uuid4().hex[:8]}"
    first, second = RedisRateLimiter.from_url(redis_url), RedisRateLimiter.from_url(redis_url)
    try:
        decisions = await asyncio.gather(*[
            limiter.acquire(bucket=bucket, cost=1, points=10, window=60.0)
            for _ in range(15) for limiter in (first, second)
        ])
        assert sum(d.allowed for d in decisions) == 10
        refused = [d for d in decisions if not d.allowed]
        assert all(5.0 < d.retry_after <= 6.0 + 1e-3 for d in refused)  # one point every 6 s
        assert all(d.retry_after_header == "6" for d in refused)
    finally:
        await first.aclose()
        await second.aclose()


async def test_redis_bucket_refills_after_the_window(redis_url):
    bucket = f"key_{uuid.uuid4().hex[:8]}"
    limiter = RedisRateLimiter.from_url(redis_url)
    try:
        assert (await limiter.acquire(bucket=bucket, cost=5, points=5, window=1.0)).allowed
        refused = await limiter.acquire(bucket=bucket, cost=5, points=5, window=1.0)
        assert not refused.allowed and 0.9 < refused.retry_after <= 1.0 + 1e-3
        await asyncio.sleep(refused.retry_after + 0.02)
        admitted = await limiter.acquire(bucket=bucket, cost=5, points=5, window=1.0)
        assert admitted.allowed and admitted.available == 0
        # A read (cost 0) changes nothing.
        assert not (await limiter.acquire(bucket=bucket, cost=1, points=5, window=1.0)).allowed
    finally:
        await limiter.aclose()
