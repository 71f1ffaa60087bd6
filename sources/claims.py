"""The claims source (reads): plans, enrolments, claims, lines, stats, and their loaders.

Writes live in sources/claims_store.py. Every claim and enrolment row
carries organization_id (the member's organization when written), so the
viewer's visibility is one `organization_id = ANY($n)` here, with the
visible ids fetched once per request from the members source.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Sequence
from uuid import UUID

import asyncpg
from aiodataloader import DataLoader

from sources.bulk_load import prime_values
from sources.observability import TracedLoader

from sources.members import RowPage
from sources.sql import Query
from sources.rows import qualified, row_class, select_list, width

#: Returns the visible organization ids, or None when the viewer sees all.
VisibleIds = Callable[[], Awaitable[list[str] | None]]



@dataclass(frozen=True, slots=True)
class BenefitRuleRow:
    kind: str
    description: str


@dataclass(frozen=True, slots=True)
class PlanRow:
    code: str
    name: str
    premium: Decimal
    term_months: int
    benefits: tuple[BenefitRuleRow, ...]


@row_class
class EnrollmentRow:
    id: int
    member_id: str
    organization_id: str
    plan_code: str
    coverage_start: date
    coverage_end: date
    premium_paid: Decimal
    status: str


@row_class
class ClaimRow:
    id: int
    member_id: str
    organization_id: str
    kind: str
    status: str
    rejection_reason: str | None
    settlement_id: str | None
    accident_date: date | None
    disability_grade: int | None
    assessment_ref: str | None
    total_payout: Decimal
    submitted_at: datetime
    decided_at: datetime | None
    paid_at: datetime | None
    payment_ref: str | None
    review_note: str | None


@row_class
class ClaimLineRow:
    claim_id: int
    line_no: int
    enrollment_id: int
    plan_code: str
    benefit: str
    amount: Decimal
    days: int | None
    note: str | None


_CLAIM_COLUMNS = select_list(ClaimRow, "id, member_id, organization_id, kind, status, rejection_reason, "
                                       "settlement_id, accident_date, disability_grade, assessment_ref, total_payout, "
                                       "submitted_at, decided_at, paid_at, payment_ref, review_note")
# An enrolment is ACTIVE on the days of its coverage (RULES.md), EXPIRED after;
# "today" is the city's.
_ENROLLMENT_COLUMNS = select_list(EnrollmentRow, """id, member_id, organization_id, plan_code, coverage_start,
    coverage_end, premium_paid,
    CASE WHEN cancelled THEN 'CANCELLED'
         WHEN coverage_end < (now() AT TIME ZONE 'Asia/Shanghai')::date THEN 'EXPIRED'
         ELSE 'ACTIVE' END AS status""")
_LINE_COLUMNS = select_list(ClaimLineRow, "claim_id, line_no, enrollment_id, plan_code, benefit, amount, days, note")
#: A claim's lines beside the claim's own columns: named apart from them.
_JOINED_LINE_COLUMNS = qualified(_LINE_COLUMNS, "l", "line_")
_CLAIM_WIDTH, _ENROLLMENT_WIDTH, _LINE_WIDTH = width(ClaimRow), width(EnrollmentRow), width(ClaimLineRow)


@dataclass(frozen=True, slots=True)
class ClaimQuery:
    """ClaimFilter, as the source applies it; dates are Asia/Shanghai calendar days, inclusive."""

    member_id: str | None = None
    organization_id: str | None = None
    #: The organization's subtree as the members source resolved it (set by the resolver).
    organization_ids: tuple[str, ...] | None = None
    status: str | None = None
    plan_code: str | None = None
    submitted_from: date | None = None
    submitted_to: date | None = None


# Rows from record slices: each statement selects a class's columns (the lists
# above, checked against the class) from `start` on (sources/rows.py says why).

def claim_row(row: asyncpg.Record, start: int = 0) -> ClaimRow:
    """A ClaimRow from a record holding _CLAIM_COLUMNS from `start` on."""
    return ClaimRow(*row[start:start + _CLAIM_WIDTH])


def _enrollment(row: asyncpg.Record, start: int = 0) -> EnrollmentRow:
    return EnrollmentRow(*row[start:start + _ENROLLMENT_WIDTH])


def _line(row: asyncpg.Record, start: int = 0) -> ClaimLineRow:
    return ClaimLineRow(*row[start:start + _LINE_WIDTH])


def _visible(q: Query, visible: list[str] | None, column: str = "organization_id", *, keyed: bool = False) -> None:
    """Rows of the visible organizations only; keyed: the statement's rows come from keys (Query.one_of)."""
    if visible is not None:
        q.where(q.one_of(column, visible) if keyed else f"{column} = ANY({q.arg(visible)}::text[])")


def parse_claim_ids(ids: Sequence[str]) -> list[int]:
    """Claim/enrolment ids are bigints; anything else names no row (so it is simply not found)."""
    out = []
    for value in ids:
        if isinstance(value, int):
            out.append(value)
        elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
            out.append(int(value))
    return out


# --------------------------------------------------------------------------- plans

async def plans(pool: asyncpg.Pool, *, codes: Sequence[str] | None = None) -> list[PlanRow]:
    """Plans (all, or those among `codes`) with their benefit rules, in the schedule's order."""
    q = Query()
    if codes is not None:
        q.where(f"p.code = ANY({q.arg(list(codes))}::text[])")
    rows = await pool.fetch(
        f"""SELECT p.code, p.name, p.premium, p.term_months,
                   coalesce(array_agg(b.kind ORDER BY b.kind) FILTER (WHERE b.kind IS NOT NULL), '{{}}') AS kinds,
                   coalesce(array_agg(b.description ORDER BY b.kind) FILTER (WHERE b.kind IS NOT NULL), '{{}}') AS texts,
                   (SELECT token FROM claims.schedule_version) AS schedule_token
            FROM claims.plans p LEFT JOIN claims.plan_benefits b ON b.plan_code = p.code
            {q.where_sql}
            GROUP BY p.code ORDER BY p.sort_order, p.code""", *q.args)
    found = [PlanRow(r["code"], r["name"], r["premium"], r["term_months"],
                     tuple(BenefitRuleRow(k, t) for k, t in zip(r["kinds"], r["texts"]))) for r in rows]
    if codes is None and rows:
        _remember_plans(rows[0]["schedule_token"], found)
    return found


#: Every plan as read under one schedule version token (migrations/claims/003),
#: shared by all requests: a statement that reads the token beside rows that
#: link to plans (enrolments) finds the plans here while the schedule is
#: unchanged, instead of reading them again. One entry: the latest seen.
_known_plans: tuple[UUID | None, dict[str, PlanRow]] = (None, {})


def _remember_plans(token: UUID, found: list[PlanRow]) -> None:
    global _known_plans
    _known_plans = (token, {p.code: p for p in found})


def plans_at(token: UUID | None) -> dict[str, PlanRow] | None:
    """Every plan by code as of the schedule version `token`, if known; None otherwise."""
    known_token, known = _known_plans
    return known if token is not None and token == known_token else None


# --------------------------------------------------------------------------- enrolments

async def enrollments_by_member_ids(pool: asyncpg.Pool, *, member_ids: Sequence[str],
                                    visible: list[str] | None) -> tuple[list[EnrollmentRow], UUID | None]:
    """The members' visible enrolments, and the schedule's version token (None when there are none)."""
    q = Query()
    q.where(f"member_id = ANY({q.arg(list(member_ids))}::text[])")
    _visible(q, visible, keyed=True)
    rows = await pool.fetch(
        f"SELECT {_ENROLLMENT_COLUMNS}, (SELECT token FROM claims.schedule_version) AS schedule_token"
        f" FROM claims.enrollments {q.where_sql} ORDER BY member_id, coverage_start, id", *q.args)
    return [_enrollment(r) for r in rows], rows[0]["schedule_token"] if rows else None


async def enrollments_by_ids(pool: asyncpg.Pool, *, ids: Sequence[int], visible: list[str] | None) -> list[EnrollmentRow]:
    q = Query()
    q.where(f"id = ANY({q.arg(list(ids))}::bigint[])")
    _visible(q, visible, keyed=True)
    rows = await pool.fetch(f"SELECT {_ENROLLMENT_COLUMNS} FROM claims.enrollments {q.where_sql}", *q.args)
    return [_enrollment(r) for r in rows]


# --------------------------------------------------------------------------- claims

async def claims_by_ids(pool: asyncpg.Pool, *, ids: Sequence[int], visible: list[str] | None) -> list[ClaimRow]:
    """The visible claims among `ids`."""
    q = Query()
    q.where(f"id = ANY({q.arg(list(ids))}::bigint[])")
    _visible(q, visible, keyed=True)
    rows = await pool.fetch(f"SELECT {_CLAIM_COLUMNS} FROM claims.claims {q.where_sql}", *q.args)
    return [claim_row(r) for r in rows]


def _claim_filter(q: Query, f: ClaimQuery) -> None:
    if f.member_id is not None:
        q.where(f"c.member_id = {q.arg(f.member_id)}")
    if f.organization_ids is not None:
        q.where(f"c.organization_id = ANY({q.arg(list(f.organization_ids))}::text[])")
    elif f.organization_id is not None:
        q.where(f"c.organization_id = {q.arg(f.organization_id)}")
    if f.status is not None:
        q.where(f"c.status = {q.arg(f.status)}")
    if f.plan_code is not None:
        q.where(f"EXISTS (SELECT 1 FROM claims.claim_lines l WHERE l.claim_id = c.id AND l.plan_code = {q.arg(f.plan_code)})")
    # Day bounds turned into instants so the submitted_at index serves the range.
    if f.submitted_from is not None:
        q.where(f"c.submitted_at >= ({q.arg(f.submitted_from)}::date::timestamp AT TIME ZONE 'Asia/Shanghai')")
    if f.submitted_to is not None:
        q.where(f"c.submitted_at < (({q.arg(f.submitted_to)}::date + 1)::timestamp AT TIME ZONE 'Asia/Shanghai')")


async def list_claims(pool: asyncpg.Pool, *, visible: list[str] | None, where: ClaimQuery, limit: int,
                      before_id: int | None) -> list[ClaimRow]:
    """One keyset page of visible claims, newest (highest id) first."""
    q = Query()
    _claim_filter(q, where)
    _visible(q, visible, "c.organization_id")
    if before_id is not None:
        q.where(f"c.id < {q.arg(before_id)}")
    cols = qualified(_CLAIM_COLUMNS, "c")
    rows = await pool.fetch(
        f"SELECT {cols} FROM claims.claims c {q.where_sql} ORDER BY c.id DESC LIMIT {q.arg(limit)}", *q.args)
    return [claim_row(r) for r in rows]


async def count_claims(pool: asyncpg.Pool, *, visible: list[str] | None, where: ClaimQuery) -> int:
    q = Query()
    _claim_filter(q, where)
    _visible(q, visible, "c.organization_id")
    return await pool.fetchval(f"SELECT count(*) FROM claims.claims c {q.where_sql}", *q.args)


def _claim_pages_sql(q: Query, keys: Sequence[tuple[str, int, int | None]], visible: list[str] | None) -> str:
    """The rows of each key's page (ord: the key's position from 1; rank: the row's from 1; lim: the key's limit)."""
    member_ids = q.arg([k[0] for k in keys])
    limits = q.arg([k[1] for k in keys])
    befores = q.arg([k[2] for k in keys])
    _visible(q, visible, "c.organization_id", keyed=True)
    extra = (" AND " + " AND ".join(q.conditions)) if q.conditions else ""
    cols = qualified(_CLAIM_COLUMNS, "c")
    return f"""SELECT * FROM (
              SELECT k.ord, {cols},
                     count(*) OVER (PARTITION BY k.ord) AS total,
                     sum(CASE WHEN k.before_id IS NULL OR c.id < k.before_id THEN 1 ELSE 0 END)
                         OVER (PARTITION BY k.ord ORDER BY c.id DESC ROWS UNBOUNDED PRECEDING) AS rank,
                     k.lim, (k.before_id IS NULL OR c.id < k.before_id) AS after_cursor
              FROM unnest({member_ids}::text[], {limits}::int[], {befores}::bigint[]) WITH ORDINALITY
                   AS k(member_id, lim, before_id, ord)
              JOIN claims.claims c ON c.member_id = k.member_id{extra}
            ) t WHERE after_cursor AND rank <= lim"""


async def claim_pages_by_member(pool: asyncpg.Pool, *, keys: Sequence[tuple[str, int, int | None]],
                                visible: list[str] | None) -> list[RowPage]:
    """For each (member id, limit, before id): a page of the member's claims, newest first, in one statement."""
    q = Query()
    rows = await pool.fetch(f"{_claim_pages_sql(q, keys, visible)} ORDER BY ord, id DESC", *q.args)
    pages: list[list] = [[] for _ in keys]
    totals = [0] * len(keys)
    for r in rows:
        pages[r["ord"] - 1].append(claim_row(r, 1))  # after k.ord
        totals[r["ord"] - 1] = r["total"]
    return [RowPage(p, t) for p, t in zip(pages, totals)]


@dataclass(frozen=True, slots=True)
class MemberClaims:
    """What member_claims read in one statement."""

    pages: list[RowPage]  # one per key
    lines: dict[int, list[ClaimLineRow]] | None  # by shown claim's id; None: not asked for
    enrollments: dict[str, list[EnrollmentRow]] | None  # by the keys' member ids; None: not asked for
    schedule_token: UUID | None  # the plans' version when enrolments were read (None: none read)


#: A member_claims row: an enrolment and the schedule's token, a line, then the page's
#: columns (_claim_pages_sql: k.ord, the claim's, total, rank, lim, after_cursor).
#: Each part is NULL on the rows of the others; the names keep them apart.
_MEMBER_CLAIMS_HEAD = ", ".join(f"NULL AS enrollment_{name}"
                                for name in [f.name for f in fields(EnrollmentRow)] + ["schedule_token"])
_NO_LINE = ", ".join(f"NULL AS line_{c.strip()}" for c in _LINE_COLUMNS.split(","))
_PAGE_WIDTH = 1 + _CLAIM_WIDTH + 4


async def member_claims(pool: asyncpg.Pool, *, keys: Sequence[tuple[str, int, int | None]],
                        visible: list[str] | None, lines: bool, enrollments: bool) -> MemberClaims:
    """For each (member id, limit, before id): a page of the member's claims, newest first; and, when asked
    for, the lines of every claim a page shows and the members' enrolments. One statement.

    A staff list shows each member's enrolments and last claims with their
    lines: one round trip instead of three (or two) to the claims source.
    A page is fetched one row longer than it shows (the extra row says there
    is a next page); that row's lines are not read, and it gets no entry in
    the lines returned. A shown claim without lines gets an empty list, a
    member without enrolments too.
    """
    q = Query()
    pages_sql = _claim_pages_sql(q, keys, visible)
    member_ids = list(dict.fromkeys(k[0] for k in keys))
    if lines:
        claims_part = (f"SELECT {_MEMBER_CLAIMS_HEAD}, {_JOINED_LINE_COLUMNS}, p.* FROM ({pages_sql}) p"
                       f" LEFT JOIN claims.claim_lines l ON l.claim_id = p.id AND p.rank < p.lim")
    else:
        claims_part = f"SELECT {_MEMBER_CLAIMS_HEAD}, {_NO_LINE}, p.* FROM ({pages_sql}) p"
    sql = claims_part
    if enrollments:
        # Typed by the other part: PostgreSQL resolves a UNION's untyped NULLs from its other inputs.
        eq = Query()
        eq.args = q.args  # one statement, one numbering of parameters
        eq.where(f"member_id = ANY({eq.arg(member_ids)}::text[])")
        _visible(eq, visible, keyed=True)
        nulls = ", ".join(["NULL"] * (_LINE_WIDTH + _PAGE_WIDTH))
        sql += (f" UNION ALL SELECT {_ENROLLMENT_COLUMNS}, (SELECT token FROM claims.schedule_version), {nulls}"
                f" FROM claims.enrollments {eq.where_sql}")
    # Enrolments (no ord) first, in the order enrollments_by_member_ids gives; then each page's claims.
    rows = await pool.fetch(f"{sql} ORDER BY ord NULLS FIRST, enrollment_member_id, enrollment_coverage_start,"
                            " enrollment_id, id DESC, line_line_no", *q.args)
    token_at, line_at = _ENROLLMENT_WIDTH, _ENROLLMENT_WIDTH + 1
    ord_at = line_at + _LINE_WIDTH
    claim_at = ord_at + 1
    pages: list[list] = [[] for _ in keys]
    totals = [0] * len(keys)
    found_lines: dict[int, list[ClaimLineRow]] = {}
    found_enrollments: dict[str, list[EnrollmentRow]] = {m: [] for m in member_ids}
    schedule_token = None
    group = None
    collecting: list[ClaimLineRow] | None = None
    for r in rows:
        ord_ = r[ord_at]
        if ord_ is None:  # an enrolment's row
            enrollment = _enrollment(r)
            found_enrollments[enrollment.member_id].append(enrollment)
            schedule_token = r[token_at]
            continue
        ord_, claim_id = ord_ - 1, r[claim_at]
        if (ord_, claim_id) != group:  # a claim's first row: the claim itself
            group = (ord_, claim_id)
            pages[ord_].append(claim_row(r, claim_at))
            totals[ord_] = r["total"]
            # Two keys may show the same claim (one member, two page sizes): its lines are read once.
            collecting = None
            if lines and r["rank"] < r["lim"] and claim_id not in found_lines:
                collecting = found_lines[claim_id] = []
        if collecting is not None and r[line_at] is not None:
            collecting.append(_line(r, line_at))
    return MemberClaims([RowPage(p, t) for p, t in zip(pages, totals)], found_lines if lines else None,
                        found_enrollments if enrollments else None, schedule_token)


async def lines_by_claim_ids(pool: asyncpg.Pool, *, claim_ids: Sequence[int]) -> list[ClaimLineRow]:
    """Lines of claims the caller already holds (hence already visible), in line order."""
    rows = await pool.fetch(
        f"SELECT {_LINE_COLUMNS} FROM claims.claim_lines WHERE claim_id = ANY($1::bigint[]) ORDER BY claim_id, line_no",
        list(claim_ids))
    return [_line(r) for r in rows]


# --------------------------------------------------------------------------- loaders

class _VisibleLoader(TracedLoader, DataLoader):
    def __init__(self, pool: asyncpg.Pool, visible: VisibleIds) -> None:
        super().__init__()
        self.pool, self.visible = pool, visible


class PlanByCodeLoader(TracedLoader, DataLoader):
    """Plans by code. All of them are read at once (a handful), and remembered under the schedule's token."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__()
        self.pool = pool

    async def batch_load_fn(self, keys: list[str]) -> list[PlanRow | None]:
        found = {p.code: p for p in await plans(self.pool)}
        return [found.get(k) for k in keys]


class EnrollmentByIdLoader(_VisibleLoader):
    async def batch_load_fn(self, keys: list[str]) -> list[EnrollmentRow | None]:
        found = {r.id: r for r in await enrollments_by_ids(self.pool, ids=parse_claim_ids(keys),
                                                          visible=await self.visible())}
        return [found.get(i) for i in _as_ints(keys)]


class EnrollmentsByMemberIdLoader(_VisibleLoader):
    """Enrolments by member id; their plans go to the plan loader when the schedule is unchanged (plans_at)."""

    def __init__(self, pool: asyncpg.Pool, visible: VisibleIds, *, plans: DataLoader) -> None:
        super().__init__(pool, visible)
        self.plans = plans

    async def batch_load_fn(self, keys: list[str]) -> list[list[EnrollmentRow]]:
        out: dict[str, list[EnrollmentRow]] = {k: [] for k in keys}
        rows, schedule_token = await enrollments_by_member_ids(self.pool, member_ids=keys, visible=await self.visible())
        for row in rows:
            out[row.member_id].append(row)
        self.prime_plans(schedule_token, [rows])
        return [out[k] for k in keys]

    def prime_plans(self, schedule_token: UUID | None, enrollments: Iterable[list[EnrollmentRow]]) -> None:
        """The enrolments' plans, into the plan loader, when the schedule read with them is the one known."""
        known = plans_at(schedule_token)
        if known is not None:
            prime_values(self.plans, {row.plan_code: known[row.plan_code]
                                      for rows in enrollments for row in rows if row.plan_code in known})


class ClaimByIdLoader(_VisibleLoader):
    async def batch_load_fn(self, keys: list[str]) -> list[ClaimRow | None]:
        found = {r.id: r for r in await claims_by_ids(self.pool, ids=parse_claim_ids(keys),
                                                     visible=await self.visible())}
        return [found.get(i) for i in _as_ints(keys)]


class ClaimsByMemberIdLoader(_VisibleLoader):
    """Key (member id, limit, before id) → RowPage of ClaimRow (newest first)."""

    def __init__(self, pool: asyncpg.Pool, visible: VisibleIds, by_id: ClaimByIdLoader) -> None:
        super().__init__(pool, visible)
        self.by_id = by_id

    async def batch_load_fn(self, keys: list[tuple[str, int, int | None]]) -> list[RowPage]:
        pages = await claim_pages_by_member(self.pool, keys=keys, visible=await self.visible())
        for page in pages:
            for row in page.rows:
                self.by_id.prime(str(row.id), row)
        return pages


class MemberClaimsLoader(_VisibleLoader):
    """Member.claims' pages with, in the same statement, their claims' lines and the members' enrolments
    (member_claims): each only when given the loader it fills.

    The prefetch (schema/prefetch.py) loads through one of these when a
    member's claims select their lines, or when the member's enrolments are
    selected beside the claims: the pages land in `pages`, the lines in
    `lines`, the enrolments in `enrollments` (and their plans in its plan
    loader), as if each had run its own statement. So Member.claims,
    Claim.lines and Member.enrollments read them as ever, and the lines and
    enrolments cost no round trip of their own.
    """

    def __init__(self, pool: asyncpg.Pool, visible: VisibleIds, pages: ClaimsByMemberIdLoader, *,
                 lines: ClaimLinesByClaimIdLoader | None = None,
                 enrollments: EnrollmentsByMemberIdLoader | None = None) -> None:
        super().__init__(pool, visible)
        self.pages, self.lines, self.enrollments = pages, lines, enrollments

    async def batch_load_fn(self, keys: list[tuple[str, int, int | None]]) -> list[RowPage]:
        found = await member_claims(self.pool, keys=keys, visible=await self.visible(),
                                    lines=self.lines is not None, enrollments=self.enrollments is not None)
        prime_values(self.pages, dict(zip(keys, found.pages)))
        if self.lines is not None:
            prime_values(self.lines, found.lines)
        if self.enrollments is not None:
            prime_values(self.enrollments, found.enrollments)
            self.enrollments.prime_plans(found.schedule_token, found.enrollments.values())
        by_id = self.pages.by_id
        for page in found.pages:
            for row in page.rows:
                by_id.prime(str(row.id), row)
        return found.pages


class ClaimLinesByClaimIdLoader(TracedLoader, DataLoader):
    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__()
        self.pool = pool

    async def batch_load_fn(self, keys: list[int]) -> list[list[ClaimLineRow]]:
        out: dict[int, list[ClaimLineRow]] = {k: [] for k in keys}
        for row in await lines_by_claim_ids(self.pool, claim_ids=keys):
            out[row.claim_id].append(row)
        return [out[k] for k in keys]


def _as_ints(keys: Sequence[str]) -> list[int | None]:
    return [parse_claim_ids([k])[0] if parse_claim_ids([k]) else None for k in keys]
