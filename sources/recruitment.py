"""The recruitment source (reads): job fairs, their postings and employers, and their loaders.

An event is visible when its organizer is; a posting when its event is
(a posting without an event only to the CITY key).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Sequence

import asyncpg
from aiodataloader import DataLoader

from sources.observability import TracedLoader

from sources.claims import VisibleIds
from sources.sql import Query
from sources.rows import row_class

_EVENT_COLUMNS = """e.id, e.title, e.format, e.organizer_id, e.starts_at,
    (SELECT coalesce(sum(p.headcount), 0) FROM recruitment.postings p WHERE p.event_id = e.id) AS positions_offered"""
_POSTING_COLUMNS = "p.id, p.event_id, p.employer_id, p.title, p.sector, p.headcount, p.salary_min, p.salary_max"


@row_class
class EventRow:
    id: str
    title: str
    format: str
    organizer_id: str
    starts_at: datetime
    positions_offered: int


@row_class
class PostingRow:
    id: str
    event_id: str | None
    employer_id: str
    title: str
    sector: str
    headcount: int
    salary_min: Decimal | None
    salary_max: Decimal | None


@dataclass(frozen=True, slots=True)
class EventQuery:
    """RecruitmentEventFilter, as the source applies it."""

    organizer_id: str | None = None
    format: str | None = None
    starts_from: datetime | None = None
    starts_to: datetime | None = None


def _event(r: asyncpg.Record) -> EventRow:
    return EventRow(r["id"], r["title"], r["format"], r["organizer_id"], r["starts_at"], r["positions_offered"])


def _posting(r: asyncpg.Record) -> PostingRow:
    return PostingRow(r["id"], r["event_id"], r["employer_id"], r["title"], r["sector"], r["headcount"],
                      r["salary_min"], r["salary_max"])


def _visible(q: Query, visible: list[str] | None, *, keyed: bool = False) -> None:
    """Events of the visible organizers only; keyed: the statement's rows come from keys (Query.one_of)."""
    if visible is not None:
        q.where(q.one_of("e.organizer_id", visible) if keyed else f"e.organizer_id = ANY({q.arg(visible)}::text[])")


def _filter(q: Query, f: EventQuery) -> None:
    if f.organizer_id is not None:
        q.where(f"e.organizer_id = {q.arg(f.organizer_id)}")
    if f.format is not None:
        q.where(f"e.format = {q.arg(f.format)}")
    if f.starts_from is not None:
        q.where(f"e.starts_at >= {q.arg(f.starts_from)}")
    if f.starts_to is not None:
        q.where(f"e.starts_at <= {q.arg(f.starts_to)}")


async def events_by_ids(pool: asyncpg.Pool, *, ids: Sequence[str], visible: list[str] | None) -> list[EventRow]:
    q = Query()
    q.where(f"e.id = ANY({q.arg(list(ids))}::text[])")
    _visible(q, visible, keyed=True)
    return [_event(r) for r in await pool.fetch(f"SELECT {_EVENT_COLUMNS} FROM recruitment.events e {q.where_sql}",
                                               *q.args)]


async def list_events(pool: asyncpg.Pool, *, visible: list[str] | None, where: EventQuery, limit: int,
                      after: tuple[datetime, str] | None) -> list[EventRow]:
    """One keyset page of visible events ordered by (starts_at, id)."""
    q = Query()
    _filter(q, where)
    _visible(q, visible)
    if after is not None:
        q.where(f"(e.starts_at, e.id) > ({q.arg(after[0])}::timestamptz, {q.arg(after[1])}::text)")
    rows = await pool.fetch(
        f"SELECT {_EVENT_COLUMNS} FROM recruitment.events e {q.where_sql} ORDER BY e.starts_at, e.id "
        f"LIMIT {q.arg(limit)}", *q.args)
    return [_event(r) for r in rows]


async def count_events(pool: asyncpg.Pool, *, visible: list[str] | None, where: EventQuery) -> int:
    q = Query()
    _filter(q, where)
    _visible(q, visible)
    return await pool.fetchval(f"SELECT count(*) FROM recruitment.events e {q.where_sql}", *q.args)


async def postings_by_event_ids(pool: asyncpg.Pool, *, event_ids: Sequence[str]) -> list[PostingRow]:
    """Postings of events the caller already holds (hence visible), by id."""
    rows = await pool.fetch(
        f"SELECT {_POSTING_COLUMNS} FROM recruitment.postings p WHERE p.event_id = ANY($1::text[]) ORDER BY p.id",
        list(event_ids))
    return [_posting(r) for r in rows]


async def postings_by_ids(pool: asyncpg.Pool, *, ids: Sequence[str], visible: list[str] | None) -> list[PostingRow]:
    """The visible postings among `ids` (visibility through their event, same source)."""
    q = Query()
    q.where(f"p.id = ANY({q.arg(list(ids))}::text[])")
    _visible(q, visible, keyed=True)
    rows = await pool.fetch(
        f"""SELECT {_POSTING_COLUMNS} FROM recruitment.postings p
            LEFT JOIN recruitment.events e ON e.id = p.event_id {q.where_sql}""", *q.args)
    return [_posting(r) for r in rows]


async def employer_ids_by_event_ids(pool: asyncpg.Pool, *, event_ids: Sequence[str]) -> list[tuple[str, str]]:
    """(event id, employer id) of events the caller holds, by employer id."""
    rows = await pool.fetch(
        """SELECT event_id, employer_id FROM recruitment.event_employers
           WHERE event_id = ANY($1::text[]) ORDER BY event_id, employer_id""", list(event_ids))
    return [(r["event_id"], r["employer_id"]) for r in rows]


class EventByIdLoader(TracedLoader, DataLoader):
    def __init__(self, pool: asyncpg.Pool, visible: VisibleIds) -> None:
        super().__init__()
        self.pool, self.visible = pool, visible

    async def batch_load_fn(self, keys: list[str]) -> list[EventRow | None]:
        found = {r.id: r for r in await events_by_ids(self.pool, ids=keys, visible=await self.visible())}
        return [found.get(k) for k in keys]


class PostingByIdLoader(TracedLoader, DataLoader):
    def __init__(self, pool: asyncpg.Pool, visible: VisibleIds) -> None:
        super().__init__()
        self.pool, self.visible = pool, visible

    async def batch_load_fn(self, keys: list[str]) -> list[PostingRow | None]:
        found = {r.id: r for r in await postings_by_ids(self.pool, ids=keys, visible=await self.visible())}
        return [found.get(k) for k in keys]


class PostingsByEventIdLoader(TracedLoader, DataLoader):
    def __init__(self, pool: asyncpg.Pool, by_id: PostingByIdLoader) -> None:
        super().__init__()
        self.pool, self.by_id = pool, by_id

    async def batch_load_fn(self, keys: list[str]) -> list[list[PostingRow]]:
        out: dict[str, list[PostingRow]] = {k: [] for k in keys}
        for row in await postings_by_event_ids(self.pool, event_ids=keys):
            out[row.event_id].append(row)  # type: ignore[index]
            self.by_id.prime(row.id, row)
        return [out[k] for k in keys]


class EmployersByEventIdLoader(TracedLoader, DataLoader):
    """Event id → its participating employers: ids from this source, rows through the members source's loader."""

    def __init__(self, pool: asyncpg.Pool, employer_by_id: DataLoader) -> None:
        super().__init__()
        self.pool, self.employer_by_id = pool, employer_by_id

    async def batch_load_fn(self, keys: list[str]) -> list[list]:
        pairs = await employer_ids_by_event_ids(self.pool, event_ids=keys)
        employers = await self.employer_by_id.load_many([employer_id for _, employer_id in pairs])
        out: dict[str, list] = {k: [] for k in keys}
        for (event_id, _), employer in zip(pairs, employers):
            if employer is not None:
                out[event_id].append(employer)
        return [out[k] for k in keys]
