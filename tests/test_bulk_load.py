"""load_all: one batch per tick across callers, values readable at once, failures left to the resolver."""
from __future__ import annotations

import asyncio

import pytest
from aiodataloader import DataLoader

from schema.prefetch import ready
from sources.bulk_load import MISSING, load_all, prefetched


class Squares(DataLoader):
    """Squares of ints; a negative key is an error for that key alone; 13 fails the whole batch."""

    def __init__(self, max_batch_size: int | None = None) -> None:
        super().__init__(max_batch_size=max_batch_size)
        self.batches: list[list[int]] = []

    async def batch_load_fn(self, keys: list[int]) -> list[object]:
        self.batches.append(list(keys))
        if 13 in keys:
            raise RuntimeError("the source is down")
        return [ValueError(f"no square for {k}") if k < 0 else k * k for k in keys]


async def test_callers_in_the_same_tick_share_one_batch_and_values_are_ready():
    loader = Squares()
    first, second = await asyncio.gather(load_all(loader, [1, 2, 3]), load_all(loader, [3, 4]))
    assert (first, second) == ([1, 4, 9], [9, 16])
    assert loader.batches == [[1, 2, 3, 4]]
    assert ready(loader, 4) == 16 and prefetched(loader, 5) is MISSING
    assert await load_all(loader, [2, 4]) == [4, 16]
    assert loader.batches == [[1, 2, 3, 4]]  # nothing loaded twice


async def test_rows_primed_the_ordinary_way_are_not_loaded_again():
    loader = Squares()
    loader.prime(7, 49)
    assert await load_all(loader, [7, 8]) == [49, 64]
    assert loader.batches == [[8]]


async def test_a_key_that_failed_is_the_resolvers_error_and_is_not_retried():
    loader = Squares()
    assert [type(v) for v in await load_all(loader, [-1, 2])] == [ValueError, int]
    with pytest.raises(ValueError, match="no square for -1"):
        await ready(loader, -1)
    assert loader.batches == [[-1, 2]]


async def test_a_batch_that_failed_as_a_whole_is_tried_again_when_asked():
    loader = Squares()
    outcome = await load_all(loader, [13, 2])
    assert all(isinstance(v, RuntimeError) for v in outcome)
    assert await ready(loader, 2) == 4  # the resolver's own load runs it again
    assert loader.batches == [[13, 2], [2]]


async def test_max_batch_size_splits_the_keys():
    loader = Squares(max_batch_size=2)
    assert await load_all(loader, [1, 2, 3]) == [1, 4, 9]
    assert loader.batches == [[1, 2], [3]]


async def test_batching_off_loads_key_by_key():
    loader = Squares()
    loader.batch = False
    assert await load_all(loader, [1, 2]) == [1, 4]
    assert loader.batches == [[1], [2]]


async def test_a_failing_load_already_in_flight_is_an_outcome_not_an_exception():
    loader = Squares()
    ordinary = loader.load(-3)  # someone else's load of the same key, not dispatched yet
    outcome = await load_all(loader, [-3, 3])
    assert isinstance(outcome[0], ValueError) and outcome[1] == 9
    with pytest.raises(ValueError):
        await ordinary
