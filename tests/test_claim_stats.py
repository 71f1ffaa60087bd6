"""claimStats equals a brute-force sum over the rows, for any grouping, with Asia/Shanghai months."""
from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

from tests.gql import Builder, Gql, builder, client, make_key  # noqa: F401 - fixtures

SHANGHAI = ZoneInfo("Asia/Shanghai")
DISTRICT = {"c": "c", "d1": "d1", "g1": "d1", "d2": "d2", "g2": "d2"}
BENEFITS = {"HCA": ["MEDICAL", "HOSPITAL_ALLOWANCE", "CRITICAL_ILLNESS", "DISABILITY"], "SI5": ["CRITICAL_ILLNESS"],
            "FW3": ["CRITICAL_ILLNESS"]}
FIELD = {"PLAN": "planCode", "BENEFIT": "benefit", "ORGANIZATION": "organization", "MONTH": "month",
         "STATUS": "status"}
QUERY = """query($from: Date!, $to: Date!, $by: [ClaimStatsDimension!]!) {
    claimStats(from: $from, to: $to, groupBy: $by) {
        planCode benefit organization { id } month status claims members payout } }"""


@pytest_asyncio.fixture
async def claims(client: Gql, builder: Builder) -> list[dict]:
    """About 120 claims in five organizations over three months, with the month boundaries' edge cases."""
    rng = random.Random(7)
    await builder.employer("e1", "g1")
    members = []
    for i, org in enumerate(["c", "d1", "g1", "g1", "d2", "g2", "g2", "g1"] * 3):
        member = await builder.member(f"m{i:02d}", org, "e1")
        await builder.enrollment(member)
        await builder.enrollment(member, "SI5")
        members.append((member, org))
    made = []
    times = [datetime(2026, 1, 31, 23, 30, tzinfo=SHANGHAI),  # January in the city, February 1 nowhere
             datetime(2026, 2, 1, 0, 10, tzinfo=SHANGHAI),    # February, though still January 31 in UTC
             datetime(2026, 1, 1, 0, 0, tzinfo=SHANGHAI),     # the first instant of the range
             datetime(2025, 12, 31, 23, 59, tzinfo=SHANGHAI)]  # just before it
    times += [datetime(2026, 1, 1, tzinfo=SHANGHAI) + timedelta(minutes=rng.randrange(90 * 24 * 60)) for _ in range(116)]
    for at in times:
        member, org = rng.choice(members)
        status = rng.choice(["APPROVED", "APPROVED", "PAID", "REJECTED", "PENDING_REVIEW"])
        lines = []
        if status in ("APPROVED", "PAID"):
            for plan in rng.sample(["HCA", "SI5"], rng.randint(1, 2)):
                for benefit in rng.sample(BENEFITS[plan], rng.randint(1, len(BENEFITS[plan]))):
                    lines.append((plan, benefit, Decimal(rng.randrange(1, 3_000_000)) / 100))
        await builder.claim(member, submitted_at=at, status=status, lines=lines)
        made.append({"member": member, "district": DISTRICT[org], "at": at, "status": status, "lines": lines})
    return made


def brute_force(claims: list[dict], by: list[str], since: date, until: date, districts: set[str]) -> list[dict]:
    groups: dict[tuple, dict] = defaultdict(lambda: {"claims": set(), "members": set(), "payout": Decimal("0")})
    by_line = "PLAN" in by or "BENEFIT" in by
    for n, c in enumerate(claims):
        day = c["at"].astimezone(SHANGHAI).date()
        if not since <= day <= until or c["district"] not in districts:
            continue
        base = {"MONTH": day.strftime("%Y-%m"), "STATUS": c["status"], "ORGANIZATION": c["district"]}
        rows = [dict(base, PLAN=p, BENEFIT=b, amount=a) for p, b, a in c["lines"]] if by_line else \
            [dict(base, amount=sum((a for _, _, a in c["lines"]), Decimal("0")))]
        for row in rows:
            g = groups[tuple(row[d] for d in by)]
            g["claims"].add(n)
            g["members"].add(c["member"])
            g["payout"] += row["amount"]
    return sorted(
        ({**{FIELD[d]: ({"id": k} if d == "ORGANIZATION" else k) for d, k in zip(by, key)},
          "claims": len(g["claims"]), "members": len(g["members"]), "payout": f"{g['payout']:.2f}"}
         for key, g in groups.items()), key=repr)


def served(rows: list[dict], by: list[str]) -> list[dict]:
    shown = {FIELD[d] for d in by}
    for row in rows:
        for dim, field in FIELD.items():
            if field not in shown:
                assert row.pop(field) is None, f"{field} must be null when {dim} is not grouped"
    return sorted(rows, key=repr)


@pytest.mark.parametrize("by", [[], ["MONTH"], ["ORGANIZATION"], ["STATUS"], ["PLAN"], ["PLAN", "BENEFIT"],
                                ["ORGANIZATION", "MONTH", "STATUS"], ["BENEFIT", "MONTH"],
                                ["PLAN", "BENEFIT", "ORGANIZATION", "MONTH", "STATUS"]])
async def test_totals_match_a_brute_force_sum(client: Gql, claims: list[dict], by: list[str]) -> None:
    key = await make_key(client.state.databases.members, org="c", scopes=["stats:read", "members:read"])
    data = await client.data(QUERY, {"from": "2026-01-01", "to": "2026-03-31", "by": by}, key=key)
    assert served(data["claimStats"], by) == brute_force(claims, by, date(2026, 1, 1), date(2026, 3, 31),
                                                         {"c", "d1", "d2"})


async def test_months_and_bounds_follow_shanghai_days(client: Gql, claims: list[dict]) -> None:
    key = await make_key(client.state.databases.members, org="c", scopes=["stats:read"])
    data = await client.data(QUERY, {"from": "2026-01-31", "to": "2026-01-31", "by": ["MONTH"]}, key=key)
    january_31 = [c for c in claims if c["at"].astimezone(SHANGHAI).date() == date(2026, 1, 31)]
    assert [r["month"] for r in data["claimStats"]] == ["2026-01"]
    assert data["claimStats"][0]["claims"] == len(january_31)
    first_of_feb = await client.data(QUERY, {"from": "2026-02-01", "to": "2026-02-01", "by": ["MONTH"]}, key=key)
    assert [r["month"] for r in first_of_feb["claimStats"]] == ["2026-02"]


async def test_a_district_key_sees_its_district_only(client: Gql, claims: list[dict]) -> None:
    key = await make_key(client.state.databases.members, org="d2", scopes=["stats:read", "members:read"])
    by = ["ORGANIZATION", "PLAN"]
    data = await client.data(QUERY, {"from": "2026-01-01", "to": "2026-03-31", "by": by}, key=key)
    assert served(data["claimStats"], by) == brute_force(claims, by, date(2026, 1, 1), date(2026, 3, 31), {"d2"})
    assert {r["organization"]["id"] for r in data["claimStats"]} == {"d2"}


async def test_bad_ranges_are_bad_user_input(client: Gql, claims: list[dict]) -> None:
    key = await make_key(client.state.databases.members, org="c", scopes=["stats:read"])
    for variables in ({"from": "2026-02-01", "to": "2026-01-01", "by": []},
                      {"from": "2026-02-30", "to": "2026-03-01", "by": []},
                      {"from": "2026-01-01T00:00", "to": "2026-03-01", "by": []}):
        body = await client.query(QUERY, variables, key=key)
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], body
