"""The contracts source (reads): collective bargaining contracts and their loader.

Visibility is `organization_id = ANY($n)` with the ids the members source
gave for this request (None: the CITY key, no filter).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Sequence

import asyncpg
from aiodataloader import DataLoader

from sources.observability import TracedLoader

from sources.claims import VisibleIds
from sources.sql import Query
from sources.rows import row_class

_COLUMNS = ("id, title, kind, status, employer_id, organization_id, campaign, effective_from, effective_to, "
            "covered_workers, wage_increase_percent, signed_on")


@row_class
class ContractRow:
    id: str
    title: str
    kind: str
    status: str
    employer_id: str
    organization_id: str
    campaign: str | None
    effective_from: date | None
    effective_to: date | None
    covered_workers: int
    wage_increase_percent: Decimal | None
    signed_on: date | None


@dataclass(frozen=True, slots=True)
class ContractQuery:
    """ContractFilter, as the source applies it."""

    organization_id: str | None = None
    #: The organization's subtree as the members source resolved it (set by the resolver).
    organization_ids: tuple[str, ...] | None = None
    employer_id: str | None = None
    kind: str | None = None
    status: str | None = None
    campaign: str | None = None


def _row(r: asyncpg.Record) -> ContractRow:
    return ContractRow(r["id"], r["title"], r["kind"], r["status"], r["employer_id"], r["organization_id"],
                       r["campaign"], r["effective_from"], r["effective_to"], r["covered_workers"],
                       r["wage_increase_percent"], r["signed_on"])


def _filter(q: Query, f: ContractQuery, visible: list[str] | None) -> None:
    if f.organization_ids is not None:
        q.where(f"organization_id = ANY({q.arg(list(f.organization_ids))}::text[])")
    elif f.organization_id is not None:
        q.where(f"organization_id = {q.arg(f.organization_id)}")
    for column, value in (("employer_id", f.employer_id),
                          ("kind", f.kind), ("status", f.status), ("campaign", f.campaign)):
        if value is not None:
            q.where(f"{column} = {q.arg(value)}")
    if visible is not None:
        q.where(f"organization_id = ANY({q.arg(visible)}::text[])")


async def contracts_by_ids(pool: asyncpg.Pool, *, ids: Sequence[str], visible: list[str] | None) -> list[ContractRow]:
    """The visible contracts among `ids`."""
    q = Query()
    q.where(f"id = ANY({q.arg(list(ids))}::text[])")
    if visible is not None:
        q.where(q.one_of("organization_id", visible))
    return [_row(r) for r in await pool.fetch(f"SELECT {_COLUMNS} FROM contracts.contracts {q.where_sql}", *q.args)]


async def list_contracts(pool: asyncpg.Pool, *, visible: list[str] | None, where: ContractQuery, limit: int,
                         after_id: str | None) -> list[ContractRow]:
    """One keyset page of visible contracts ordered by id."""
    q = Query()
    _filter(q, where, visible)
    if after_id is not None:
        q.where(f"id > {q.arg(after_id)}")
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM contracts.contracts {q.where_sql} ORDER BY id LIMIT {q.arg(limit)}", *q.args)
    return [_row(r) for r in rows]


async def count_contracts(pool: asyncpg.Pool, *, visible: list[str] | None, where: ContractQuery) -> int:
    q = Query()
    _filter(q, where, visible)
    return await pool.fetchval(f"SELECT count(*) FROM contracts.contracts {q.where_sql}", *q.args)


class ContractByIdLoader(TracedLoader, DataLoader):
    def __init__(self, pool: asyncpg.Pool, visible: VisibleIds) -> None:
        super().__init__()
        self.pool, self.visible = pool, visible

    async def batch_load_fn(self, keys: list[str]) -> list[ContractRow | None]:
        found = {r.id: r for r in await contracts_by_ids(self.pool, ids=keys, visible=await self.visible())}
        return [found.get(k) for k in keys]
