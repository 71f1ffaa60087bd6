"""GCRA cost-point limits: in memory, in a file shared by processes, and in a real Redis shared by two limiters."""
from __future__ import annotations

import asyncio
import multiprocessing
import uuid

import pytest

from sources.rate_limit import Decision, MemoryRateLimiter, RedisRateLimiter, SharedMemoryRateLimiter, open_rate_limiter


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


# --------------------------------------------------------------------------- shared memory (one machine)

async def _memory_test_sequence(limiter, clock: Clock) -> list[Decision]:
    """The steps of the memory test above, and one over the whole bucket: every decision."""
    take = lambda cost: limiter.acquire(bucket="k", cost=cost, points=10, window=20.0)  # noqa: E731
    decisions = [await take(4), await take(6), await take(3)]
    clock.now += 5.9
    decisions.append(await take(3))
    clock.now += 0.1
    decisions.append(await take(3))
    clock.now += 100
    return decisions + [await take(0), await take(11)]


async def test_shared_memory_bucket_decides_exactly_as_the_memory_one(tmp_path):
    clock = Clock()
    shared = SharedMemoryRateLimiter(tmp_path / "rate", clock=clock)
    try:
        decisions = await _memory_test_sequence(shared, clock)
    finally:
        await shared.aclose()
    memory_clock = Clock()
    assert decisions == await _memory_test_sequence(MemoryRateLimiter(clock=memory_clock), memory_clock)
    assert [(d.allowed, d.available) for d in decisions] == [
        (True, 6), (True, 0), (False, 0), (False, 2), (True, 0), (True, 10), (False, 10)]
    assert decisions[2].retry_after == pytest.approx(6.0) and decisions[2].retry_after_header == "6"
    assert decisions[3].retry_after == pytest.approx(0.1)


async def test_two_limiters_on_one_file_share_each_bucket(tmp_path):
    clock = Clock()
    path = tmp_path / "rate"
    first, second = SharedMemoryRateLimiter(path, clock=clock), SharedMemoryRateLimiter(str(path), clock=clock)
    take = lambda limiter, cost, bucket="k": limiter.acquire(  # noqa: E731
        bucket=bucket, cost=cost, points=10, window=20.0)
    try:
        assert (await take(first, 6)).available == 4
        assert (await take(second, 4)).available == 0
        refused = await take(first, 1)
        assert not refused.allowed and refused.retry_after == pytest.approx(2.0)
        assert (await take(second, 10, "other")).allowed  # another bucket is its own
        await first.aclose()
        assert not (await take(second, 1)).allowed  # closing one leaves the file and its buckets
        clock.now += 2
        assert (await take(second, 1)).allowed and not (await take(second, 1)).allowed
    finally:
        await first.aclose()
        await second.aclose()
    # create() starts afresh; open_rate_limiter picks the file when there is no Redis.
    SharedMemoryRateLimiter.create(path)
    limiter = open_rate_limiter(None, shared_path=str(path))
    try:
        assert isinstance(limiter, SharedMemoryRateLimiter)
        assert (await limiter.acquire(bucket="k", cost=0, points=10, window=20.0)).available == 10
    finally:
        await limiter.aclose()
    assert isinstance(open_rate_limiter(None), MemoryRateLimiter)
    (tmp_path / "other").write_bytes(b"not a rate-limit file")
    with pytest.raises(ValueError):
        SharedMemoryRateLimiter(tmp_path / "other")


# What each spawned process runs: its own limiter on the file, on the real monotonic clock.
# Run as source by exec, so that a child imports only sources.rate_limit, not this module and
# the app that its later tests pull in (half a second each).
_TAKE_ONE_POINT_100_TIMES = """
import asyncio
from sources.rate_limit import SharedMemoryRateLimiter

async def run():
    limiter = SharedMemoryRateLimiter(path)
    try:
        start.wait(timeout=30)  # all three take at once, racing for the lock
        return sum([(await limiter.acquire(bucket="shared", cost=1, points=50, window=3600.0)).allowed
                    for _ in range(100)])
    finally:
        await limiter.aclose()

admitted.put(asyncio.run(run()))
"""


def test_three_processes_get_one_buckets_points_once_between_them(tmp_path):
    path = str(tmp_path / "rate")
    SharedMemoryRateLimiter.create(path)
    context = multiprocessing.get_context("spawn")
    start, admitted = context.Barrier(3), context.SimpleQueue()
    processes = [context.Process(target=exec, args=(_TAKE_ONE_POINT_100_TIMES, {
        "path": path, "start": start, "admitted": admitted})) for _ in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    assert [process.exitcode for process in processes] == [0, 0, 0]
    counts = [admitted.get() for _ in processes]
    # One point every 72 s: none comes back during the test. Once per worker would be 150.
    assert sum(counts) == 50, counts


async def test_a_full_table_drops_expired_buckets_and_a_still_full_one_admits(tmp_path):
    clock = Clock()
    limiter = SharedMemoryRateLimiter(tmp_path / "rate", slots=4, clock=clock)
    take = lambda bucket: limiter.acquire(bucket=bucket, cost=1, points=1, window=10.0)  # noqa: E731
    try:
        assert [(await take(b)).allowed for b in "abcd"] == [True] * 4
        assert [(await take(b)).allowed for b in "abcd"] == [False] * 4  # stored: four slots, all taken
        clock.now += 10  # every bucket full again: expired, as good as absent
        assert (await take("e")).allowed
        assert not (await take("e")).allowed  # stored: the expired buckets made room
        assert [(await take(b)).allowed for b in "abc"] == [True] * 3  # dropped: full buckets again
        # Four live buckets and no room: a fifth is admitted every time rather than refused.
        assert [(await take("z")).allowed for _ in range(3)] == [True] * 3
        assert [(await take(b)).allowed for b in "eabc"] == [False] * 4  # and the live ones are kept
    finally:
        await limiter.aclose()


# --------------------------------------------------------------------------- through the app

from tests.gql import builder  # noqa: E402,F401 - fixture
from tests.safety import codes, key_with, post, served  # noqa: E402

VIEWER = {"query": "{ viewer { keyId } }"}  # costs 1 point


async def test_two_gateways_sharing_redis_admit_no_more_than_the_keys_limit(
        settings, urls, builder, databases, redis_url):  # noqa: F811
    key = await key_with(databases.members, rate_points=6, rate_window_seconds=60)
    async with served(settings, urls, redis_url=redis_url) as (first, _), \
            served(settings, urls, redis_url=redis_url) as (second, _):
        responses = [await post(client, key, VIEWER) for _ in range(6) for client in (first, second)]
        admitted = [r for r in responses if r.status_code == 200]
        refused = [r for r in responses if r.status_code == 429]
        assert (len(admitted), len(refused)) == (6, 6)
        for response in refused:
            # One point comes back every 10 s: the header says exactly when to try again.
            assert response.headers["Retry-After"] == "10"
            assert codes(response) == ["RATE_LIMITED"]
            error = response.json()["errors"][0]
            assert error["extensions"]["retryAfter"] == 10
            assert response.json()["extensions"]["cost"]["throttleStatus"] == {
                "maximumAvailable": 6, "currentlyAvailable": 0, "restoreRate": 0.1}
        # /healthz, /readyz and /metrics are never limited.
        for path in ("/healthz", "/readyz"):
            assert (await first.get(path, headers={"Authorization": f"Bearer {key}"})).status_code == 200


async def test_the_limit_resets_after_the_window_and_retry_after_is_right(
        settings, urls, builder, databases, redis_url):  # noqa: F811
    key = await key_with(databases.members, rate_points=2, rate_window_seconds=2)
    async with served(settings, urls, redis_url=redis_url) as (client, _):
        assert [(await post(client, key, VIEWER)).status_code for _ in range(2)] == [200, 200]
        refused = await post(client, key, VIEWER)
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
        await asyncio.sleep(int(refused.headers["Retry-After"]))
        admitted = await post(client, key, VIEWER)
        assert admitted.status_code == 200
        assert admitted.json()["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 0
        await asyncio.sleep(2)  # a whole window: the bucket is full again
        assert [(await post(client, key, VIEWER)).status_code for _ in range(3)] == [200, 200, 429]


async def test_every_response_carries_its_cost_without_redis(settings, urls, builder, databases):  # noqa: F811
    key = await key_with(databases.members, max_cost=500)
    async with served(settings, urls) as (client, _):
        body = (await post(client, key, {"query": "{ members(first: 20) { edges { node { id } } } }"})).json()
        assert body["extensions"]["cost"] == {
            "requestedQueryCost": 21, "maximumAvailable": 500,
            "throttleStatus": {"maximumAvailable": 30_000, "currentlyAvailable": 30_000 - 21, "restoreRate": 500.0}}
        over = await post(client, key, {"query": "{ members(first: 50) { edges { node { id enrollments { id } } } } }"})
        assert codes(over) == ["QUERY_TOO_COMPLEX"]
        assert over.json()["errors"][0]["extensions"] == {
            "code": "QUERY_TOO_COMPLEX", "limit": "maxCost", "maximum": 500, "measured": 1 + 50 * (1 + 10)}
