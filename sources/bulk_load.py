"""Loading a whole list of keys through a DataLoader with one future, not one per key.

aiodataloader hands out a future per key, and a list's keys are gathered
over those futures: on the staff list (W2, ~350 keys over five loaders) that
was a tenth of the gateway's CPU. The prefetch (schema/prefetch.py) always
wants every key of a level at once, so it asks here instead. Keys asked for
in the same tick, by any caller, still share one call of the loader's batch
function (the batching aiodataloader does); the values land in a plain dict
kept on the loader, where `prefetched` reads them.

aiodataloader keeps serving every other load (a resolver's late load, a
root look-up, `_entities`), and its cache is consulted first here, so rows
a batch function primed are not read twice. A key whose value is an
exception (the insurance system failed for it) is cached there as a failed
future, so the field's resolver reports that error as before; a batch that
failed as a whole is cached nowhere, and the resolver's own load tries again.
"""
from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from aiodataloader import DataLoader

MISSING: Any = object()


class _Bulk:
    """One loader's bulk-loaded values and the batch being gathered this tick."""

    __slots__ = ("values", "failed", "in_flight", "queue", "batch")

    def __init__(self) -> None:
        self.values: dict[Any, Any] = {}
        self.failed: dict[Any, Exception] = {}  # keys of batches that failed as a whole: tried again if asked
        self.in_flight: dict[Any, asyncio.Future] = {}
        self.queue: list[Any] = []
        self.batch: asyncio.Future | None = None


def _state(loader: DataLoader) -> _Bulk:
    state = loader.__dict__.get("_bulk")
    if state is None:
        state = loader.__dict__["_bulk"] = _Bulk()
    return state


def prefetched(loader: DataLoader, key: Any) -> Any:
    """The value load_all got for `key`, or MISSING."""
    state = loader.__dict__.get("_bulk")
    if state is None:
        return MISSING
    return state.values.get(loader.get_cache_key(key), MISSING)


def prime_values(loader: DataLoader, values: dict[Any, Any]) -> None:
    """Values a statement already read (a join), as if load_all had loaded them."""
    state = _state(loader)
    key_of = loader.get_cache_key
    for key, value in values.items():
        state.values.setdefault(key_of(key), value)


async def load_all(loader: DataLoader, keys: Iterable[Any]) -> list[Any]:
    """The value of each key (an exception in place of one that failed), in order."""
    keys = list(keys)
    if not loader.batch or not loader.cache:
        # The benchmark's N+1 baseline (batching off) keeps aiodataloader's one load per key.
        return await asyncio.gather(*(loader.load(k) for k in keys), return_exceptions=True)
    state = _state(loader)
    values, in_flight, cache, key_of = state.values, state.in_flight, loader._cache, loader.get_cache_key
    waits: set[asyncio.Future] = set()
    for key in keys:
        cache_key = key_of(key)
        if cache_key in values:
            continue
        pending = in_flight.get(cache_key) or cache.get(cache_key)
        if pending is not None:
            if not pending.done():
                waits.add(pending)
            continue
        if state.batch is None:
            loop = asyncio.get_running_loop()
            state.batch = loop.create_future()
            # After the callbacks already queued: every follow started in this tick joins the batch.
            loop.call_soon(_dispatch, loader, state)
        state.queue.append(key)
        in_flight[cache_key] = state.batch
        waits.add(state.batch)
    if waits:
        # Not `await future`: a failed or cancelled future of someone else's load is an
        # outcome for its key (see _outcome), not this caller's exception.
        await asyncio.wait(waits)
    return [_outcome(loader, state, key_of(key)) for key in keys]


def _outcome(loader: DataLoader, state: _Bulk, cache_key: Any) -> Any:
    value = state.values.get(cache_key, MISSING)
    if value is not MISSING:
        return value
    future = loader._cache.get(cache_key)
    if future is not None and future.done() and not future.cancelled():
        return future.exception() or future.result()
    return state.failed.get(cache_key) or LookupError(f"{cache_key!r} was not loaded")


def _dispatch(loader: DataLoader, state: _Bulk) -> None:
    keys, batch = state.queue, state.batch
    state.queue, state.batch = [], None
    assert batch is not None
    task = asyncio.get_running_loop().create_task(_run(loader, state, keys, batch))
    _running.add(task)  # the loop keeps only a weak reference to a task
    task.add_done_callback(_running.discard)


_running: set[asyncio.Task] = set()


async def _run(loader: DataLoader, state: _Bulk, keys: list[Any], batch: asyncio.Future) -> None:
    key_of = loader.get_cache_key
    size = loader.max_batch_size or len(keys)
    try:
        for start in range(0, len(keys), size):
            chunk = keys[start:start + size]
            try:
                found = list(await loader.batch_load_fn(chunk))
                if len(found) != len(chunk):
                    raise TypeError(f"{type(loader).__name__} returned {len(found)} values for {len(chunk)} keys")
            except Exception as exc:  # noqa: BLE001 - each key's waiter gets it; nothing is cached
                for key in chunk:
                    cache_key = key_of(key)
                    state.failed[cache_key] = exc
                    state.in_flight.pop(cache_key, None)
                continue
            for key, value in zip(chunk, found):
                cache_key = key_of(key)
                state.in_flight.pop(cache_key, None)
                if isinstance(value, Exception):
                    loader.prime(key, value)  # a failed future, as aiodataloader would cache it
                else:
                    state.values[cache_key] = value
                    state.failed.pop(cache_key, None)
    finally:
        for key in keys:  # cancelled mid-way: whoever asks again loads again
            state.in_flight.pop(key_of(key), None)
        if not batch.done():
            batch.set_result(None)
