"""claimStats: claims aggregated in PostgreSQL over the claims source.

Speed on 1 000 000 members (W3 in bench/): the period is a range scan of
claims.claims_submitted_idx (submitted_at, organization_id). Unless PLAN or
BENEFIT is grouped, lines are not read at all: a claim's payout is its
total_payout (the sum of its lines, written with them in one statement).
The organization → district mapping comes from the members source as one
jsonb object and is looked up per claim (`?` and `->>`), which keeps the
statement to one scan and one sort: joining it as two unnested arrays cost
a sort of both sides and a merge join (~180 → ~80 ms for a year at 1M).
Groups are keyed in the "C" collation (ids, codes and months are ASCII,
so the order is the same; equality is bytewise in any deterministic
collation, so counts are too) and months are truncated timestamps, turned
into text only for the few output rows. Nothing is summed in Python.
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


_NAMES = {PLAN: "plan_code", BENEFIT: "benefit", ORGANIZATION: "organization_id", MONTH: "month", STATUS: "status"}


async def claim_stats(pool: asyncpg.Pool, *, date_from: date, date_to: date, group_by: Collection[str],
                      visible: list[str] | None, districts_json: str | None) -> list[ClaimStatsRow]:
    """Claims, distinct members and payout per group, for claims submitted on [date_from, date_to] (Shanghai days).

    `districts_json` is a JSON object mapping each visible organization id to
    its district id (members.districts_by_organization_json); needed when
    grouping by ORGANIZATION. It travels as one jsonb parameter, so no
    statement joins across sources, and claims of organizations it lacks are
    not counted.
    """
    dims = [d for d in DIMENSIONS if d in set(group_by)]
    q = Query()
    q.where(f"c.submitted_at >= ({q.arg(date_from)}::date::timestamp AT TIME ZONE 'Asia/Shanghai')")
    q.where(f"c.submitted_at < (({q.arg(date_to)}::date + 1)::timestamp AT TIME ZONE 'Asia/Shanghai')")
    if visible is not None:
        q.where(f"c.organization_id = ANY({q.arg(visible)}::text[])")
    keys = {
        PLAN: "l.plan_code",
        BENEFIT: "l.benefit",
        MONTH: "date_trunc('month', c.submitted_at AT TIME ZONE 'Asia/Shanghai')",
        STATUS: "c.status",
    }
    if ORGANIZATION in dims:
        mapping = q.arg(districts_json or "{}")
        keys[ORGANIZATION] = f"({mapping}::jsonb ->> c.organization_id)"
        q.where(f"{mapping}::jsonb ? c.organization_id")
    # A claim without lines (e.g. REJECTED) belongs to no plan and no benefit:
    # when either is grouped the join is inner and such claims are not counted.
    # Otherwise every claim counts once, with its total_payout (0 without lines).
    if PLAN in dims or BENEFIT in dims:
        source = "claims.claims c JOIN claims.claim_lines l ON l.claim_id = c.id"
        claims, payout = "count(DISTINCT c.id)", "coalesce(sum(l.amount), 0)"
    else:
        source = "claims.claims c"
        claims, payout = "count(*)", "coalesce(sum(c.total_payout), 0)"
    c_collation = ' COLLATE "C"'
    inner = [f"{keys[d]}{'' if d == MONTH else c_collation} AS {_NAMES[d]}" for d in dims]
    outer = ["to_char(g.month, 'YYYY-MM') AS month" if d == MONTH else f"g.{_NAMES[d]}" for d in dims]
    positions = ", ".join(str(i + 1) for i in range(len(dims)))
    rows = await pool.fetch(
        f"""SELECT {''.join(s + ', ' for s in outer)} g.claims, g.members, g.payout
            FROM (SELECT {''.join(s + ', ' for s in inner)}
                         {claims} AS claims, count(DISTINCT c.member_id COLLATE "C") AS members,
                         {payout} AS payout
                  FROM {source} {q.where_sql}
                  {f"GROUP BY {positions}" if dims else ""}) g
            {f"ORDER BY {positions}" if dims else ""}""", *q.args)
    out = []
    for r in rows:
        values = {name: r[name] if d in dims else None for d, name in _NAMES.items()}
        out.append(ClaimStatsRow(values["plan_code"], values["benefit"], values["organization_id"], values["month"],
                                 values["status"], r["claims"], r["members"], r["payout"]))
    return out
