"""Request-scoped dataloaders over the insurance client: one call per batch of keys.

Make new loaders for every request: their cache is the request's view of the
insurance system. When the system cannot answer, every key of the batch
resolves to an InsuranceUnavailable of its own, and is dropped from the cache
so that a later load in the same request tries again.
"""
from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import date
from typing import Sequence

from aiodataloader import DataLoader

from sources.observability import TracedLoader

from sources.insurance import InsuranceClient
from sources.insurance_records import Coverage, InsuranceUnavailable, Settlement


class SettlementByIdLoader(TracedLoader, DataLoader[str, "Settlement | None"]):
    """Settlement by id; None when the system does not know the id."""

    def __init__(self, client: InsuranceClient) -> None:
        super().__init__()
        self.client = client

    async def batch_load_fn(self, keys: Sequence[str]) -> list[Settlement | None | InsuranceUnavailable]:
        try:
            found = await self.client.get_settlements(keys)
        except InsuranceUnavailable as exc:
            return _failed(self, keys, exc)
        return [found.get(key) for key in keys]


class CoverageByNationalIdLoader(TracedLoader, DataLoader[tuple[str, date], "Coverage | None"]):
    """Coverage by (national id, date); one call per distinct date in the batch."""

    def __init__(self, client: InsuranceClient) -> None:
        super().__init__()
        self.client = client

    async def batch_load_fn(
        self, keys: Sequence[tuple[str, date]]
    ) -> list[Coverage | None | InsuranceUnavailable]:
        by_day: dict[date, list[str]] = defaultdict(list)
        for national_id, on in keys:
            by_day[on].append(national_id)
        days = list(by_day)
        answers = await asyncio.gather(
            *(self.client.get_coverage(by_day[day], day) for day in days), return_exceptions=True
        )
        results: dict[date, dict[str, Coverage] | InsuranceUnavailable] = {}
        for day, answer in zip(days, answers, strict=True):
            if isinstance(answer, BaseException) and not isinstance(answer, InsuranceUnavailable):
                raise answer
            results[day] = answer
        values: list[Coverage | None | InsuranceUnavailable] = []
        for key in keys:
            answer = results[key[1]]
            if isinstance(answer, InsuranceUnavailable):
                values.extend(_failed(self, [key], answer))
            else:
                values.append(answer.get(key[0]))
        return values


def _failed(loader: DataLoader, keys: Sequence, cause: InsuranceUnavailable) -> list[InsuranceUnavailable]:
    """One exception per key (a shared instance would pile up tracebacks), uncached."""
    errors = []
    for key in keys:
        loader.clear(key)
        error = InsuranceUnavailable(str(cause), path=cause.path, status=cause.status)
        error.__cause__ = cause
        errors.append(error)
    return errors
