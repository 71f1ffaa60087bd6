"""The benefit schedule as data: plans, their benefits and diagnosis lists, loaded from claims.*."""
from __future__ import annotations

import calendar
import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Mapping
from uuid import UUID

import asyncpg


def add_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to the month's last day (Jan 31 + 1 month = Feb 28/29)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Benefit:
    """One row of claims.plan_benefits: which formula a plan pays and its parameters."""

    plan_code: str
    kind: str
    description: str
    formula: str
    rate: Decimal | None = None
    deductible: Decimal | None = None
    amount: Decimal | None = None
    cap_amount: Decimal | None = None
    cap_days: int | None = None
    once_per_enrollment: bool = False
    diagnosis_list: str | None = None
    waiting_period: bool = True


@dataclass(frozen=True)
class Plan:
    """One row of claims.plans with its benefits, in schedule order."""

    code: str
    name: str
    premium: Decimal
    term_months: int
    eligible_gender: str | None = None
    waiting_days: int = 30
    sort_order: int = 0
    benefits: tuple[Benefit, ...] = ()

    def coverage_end(self, coverage_start: date) -> date:
        """coverageStart + term months − 1 day (RULES.md)."""
        return add_months(coverage_start, self.term_months) - timedelta(days=1)


@dataclass(frozen=True)
class DiagnosisRange:
    """An ICD-10 prefix range; a single prefix is a range from it to itself."""

    prefix_from: str
    prefix_to: str

    def matches(self, code: str) -> bool:
        """The code's head of the prefixes' length lies in the range and is a whole prefix of it."""
        width = len(self.prefix_from)
        code = code.strip().upper()
        head = code[:width]
        if len(head) < width or not (self.prefix_from.upper() <= head <= self.prefix_to.upper()):
            return False
        # "C34" must not match "C341X" through "C3"; the head is a prefix only
        # when the code ends there or goes on with a '.' or a digit.
        rest = code[width:]
        return rest == "" or rest[0] == "." or rest[0].isdigit()


@dataclass(frozen=True)
class Schedule:
    """Every plan by code and every diagnosis list by name."""

    plans: Mapping[str, Plan] = field(default_factory=dict)
    diagnosis_lists: Mapping[str, tuple[DiagnosisRange, ...]] = field(default_factory=dict)

    def on_list(self, list_name: str, code: str | None) -> bool:
        """Whether a diagnosis code is on a named list; an unknown list matches nothing."""
        if not code:
            return False
        return any(r.matches(code) for r in self.diagnosis_lists.get(list_name, ()))


def _schedule_from_rows(plans: list[Any], benefits: list[Any], ranges: list[Any]) -> Schedule:
    by_plan: dict[str, list[Benefit]] = {}
    for row in benefits:
        by_plan.setdefault(row["plan_code"], []).append(Benefit(**dict(row)))
    lists: dict[str, list[DiagnosisRange]] = {}
    for row in ranges:
        lists.setdefault(row["list_name"], []).append(DiagnosisRange(row["prefix_from"], row["prefix_to"]))
    # Read-only views: one loaded schedule is shared by every request of the process.
    return Schedule(
        plans=MappingProxyType({
            row["code"]: Plan(**dict(row), benefits=tuple(by_plan.get(row["code"], ())))
            for row in plans
        }),
        diagnosis_lists=MappingProxyType({name: tuple(rs) for name, rs in lists.items()}),
    )


#: One statement reads the version token and all three tables in one snapshot,
#: so the schedule and the token it is cached under always belong together.
_LOAD_SQL = """
SELECT (SELECT token FROM claims.schedule_version) AS version,
  (SELECT coalesce(json_agg(p ORDER BY p.sort_order, p.code), '[]') FROM (
     SELECT code, name, premium, term_months, eligible_gender, waiting_days, sort_order FROM claims.plans) p) AS plans,
  (SELECT coalesce(json_agg(b ORDER BY b.plan_code, array_position(
          ARRAY['MEDICAL','HOSPITAL_ALLOWANCE','CRITICAL_ILLNESS','DISABILITY'], b.kind)), '[]') FROM (
     SELECT plan_code, kind, description, formula, rate, deductible, amount, cap_amount, cap_days,
            once_per_enrollment, diagnosis_list, waiting_period FROM claims.plan_benefits) b) AS benefits,
  (SELECT coalesce(json_agg(d ORDER BY d.list_name, d.prefix_from), '[]') FROM (
     SELECT list_name, prefix_from, prefix_to FROM claims.diagnosis_lists) d) AS ranges
"""
_MONEY = ("premium", "rate", "deductible", "amount", "cap_amount")

#: Schedules read in this process, by the version token of migration
#: claims/003: any change to the plan rows commits a new token, so a copy is
#: only ever used for exactly the rows it was read from. A few entries, since
#: tokens only accumulate when the rows change (or, in tests, per database).
_by_version: dict[UUID, Schedule] = {}
_CACHE_SIZE = 8


def _json_rows(text: str) -> list[dict[str, Any]]:
    rows = json.loads(text, parse_float=Decimal)
    for row in rows:
        for column in _MONEY:
            if isinstance(row.get(column), int):  # numeric columns are Decimal, whatever JSON made of them
                row[column] = Decimal(row[column])
    return rows


async def load_schedule(conn: asyncpg.Connection | asyncpg.Pool) -> Schedule:
    """Read the whole schedule (a few dozen rows) from the claims source in one statement, and cache it."""
    row = await conn.fetchrow(_LOAD_SQL)
    schedule = _schedule_from_rows(_json_rows(row["plans"]), _json_rows(row["benefits"]), _json_rows(row["ranges"]))
    if row["version"] is not None:
        if len(_by_version) >= _CACHE_SIZE:
            _by_version.pop(next(iter(_by_version)))
        _by_version[row["version"]] = schedule
    return schedule


async def schedule_at(conn: asyncpg.Connection | asyncpg.Pool, version: UUID | None) -> Schedule:
    """The schedule whose version token a caller just read: from memory, or read again if it changed."""
    cached = _by_version.get(version) if version is not None else None
    return cached if cached is not None else await load_schedule(conn)


async def current_schedule(conn: asyncpg.Connection | asyncpg.Pool) -> Schedule:
    """The schedule as it stands now: one statement (its version token) while the cached copy is current."""
    return await schedule_at(conn, await conn.fetchval("SELECT token FROM claims.schedule_version"))
