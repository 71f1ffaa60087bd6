"""claimStats: claims aggregated in PostgreSQL over the claims source.

Speed on 1 000 000 members: the period is a range scan of
claims.claims_submitted_idx (submitted_at, organization_id); the visibility
test `organization_id = ANY(...)` is answered from that index's entries, so
other districts' claims cost no heap visit. Lines join through claim_lines'
primary key (claim_id, line_no). Only the period's claims are read (a year
is a few hundred thousand rows at that size), the grouping is one
HashAggregate in PostgreSQL, and nothing is summed in Python.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Collection

import asyncpg

from sources.sql import Query

PLAN, BENEFIT, ORGANIZATION, MONTH, STATUS = "PLAN", "BENEFIT", "ORGANIZATION", "MONTH", "STATUS"
DIMENSIONS = (PLAN, BENEFIT, ORGANIZATION, MONTH, STATUS)


@dataclass(frozen=True, slots=True)
class ClaimStatsRow:
    plan_code: str | None
    benefit: str | None
    #: The DISTRICT-level organization (the CITY for members directly under it).
    organization_id: str | None
    month: str | None
    status: str | None
    claims: int
    members: int
    payout: Decimal


_SELECT = {
    PLAN: "l.plan_code",
    BENEFIT: "l.benefit",
    ORGANIZATION: "d.district_id",
    MONTH: "to_char(c.submitted_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')",
    STATUS: "c.status",
}
_NAMES = {PLAN: "plan_code", BENEFIT: "benefit", ORGANIZATION: "organization_id", MONTH: "month", STATUS: "status"}


async def claim_stats(pool: asyncpg.Pool, *, date_from: date, date_to: date, group_by: Collection[str],
                      visible: list[str] | None, districts: dict[str, str] | None) -> list[ClaimStatsRow]:
    """Claims, distinct members and payout per group, for claims submitted on [date_from, date_to] (Shanghai days).

    `districts` maps organization id → district id (from the members source);
    needed when grouping by ORGANIZATION, where it travels as two parallel
    arrays so no statement joins across sources.
    """
    dims = [d for d in DIMENSIONS if d in set(group_by)]
    q = Query()
    q.where(f"c.submitted_at >= ({q.arg(date_from)}::date::timestamp AT TIME ZONE 'Asia/Shanghai')")
    q.where(f"c.submitted_at < (({q.arg(date_to)}::date + 1)::timestamp AT TIME ZONE 'Asia/Shanghai')")
    if visible is not None:
        q.where(f"c.organization_id = ANY({q.arg(visible)}::text[])")
    # A claim without lines (e.g. REJECTED) belongs to no plan and no benefit:
    # when either is grouped the join is inner and such claims are not counted.
    # Otherwise every claim counts, with payout 0 when it has no lines.
    by_line = PLAN in dims or BENEFIT in dims
    joins = f"{'JOIN' if by_line else 'LEFT JOIN'} claims.claim_lines l ON l.claim_id = c.id"
    if ORGANIZATION in dims:
        mapping = districts or {}
        orgs, dists = q.arg(list(mapping)), q.arg(list(mapping.values()))
        joins += f" JOIN unnest({orgs}::text[], {dists}::text[]) AS d(org_id, district_id) ON d.org_id = c.organization_id"
    selected = [f"{_SELECT[d]} AS {_NAMES[d]}" for d in dims]
    group = f"GROUP BY {', '.join(str(i + 1) for i in range(len(dims)))}" if dims else ""
    order = f"ORDER BY {', '.join(str(i + 1) for i in range(len(dims)))}" if dims else ""
    rows = await pool.fetch(
        f"""SELECT {''.join(s + ', ' for s in selected)}
                   count(DISTINCT c.id) AS claims, count(DISTINCT c.member_id) AS members,
                   coalesce(sum(l.amount), 0) AS payout
            FROM claims.claims c {joins}
            {q.where_sql} {group} {order}""", *q.args)
    out = []
    for r in rows:
        values = {name: r[name] if d in dims else None for d, name in _NAMES.items()}
        out.append(ClaimStatsRow(values["plan_code"], values["benefit"], values["organization_id"], values["month"],
                                 values["status"], r["claims"], r["members"], r["payout"]))
    return out
