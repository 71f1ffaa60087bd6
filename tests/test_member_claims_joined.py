"""A member's enrolments selected beside the member's claims come in the claims' own statement.

sources/claims.py (member_claims) reads a page of each member's claims, their
lines when selected, and the members' enrolments in one statement;
schema/prefetch.py uses it when a member's `enrollments` sit beside its
`claims` (Link.fills). The answers must be those of reading the enrolments
apart, with their plans, for any key's visibility, in one claims statement.
"""
from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import pytest_asyncio

from sources.database import StatementCount
from tests.gql import Builder, Gql, builder, client, make_key  # noqa: F401 - fixtures

START = datetime(2026, 3, 1, tzinfo=timezone.utc)

ENROLLMENTS = "enrollments { id status coverageStart coverageEnd premiumPaid plan { code name } }"
APART = f"{{ members(first: 20) {{ edges {{ node {{ id {ENROLLMENTS} }} }} }} }}"
WITH_LINES = f"""{{ members(first: 20) {{ edges {{ node {{ id {ENROLLMENTS}
    claims(first: 2) {{ totalCount edges {{ node {{ id status lines {{ benefit amount }} }} }} }} }} }} }} }}"""
WITHOUT_LINES = f"""{{ members(first: 20) {{ edges {{ node {{ id
    claims(first: 3) {{ totalCount edges {{ node {{ id totalPayout }} }} }} {ENROLLMENTS} }} }} }} }}"""


@pytest_asyncio.fixture
async def enrolled(client: Gql, builder: Builder) -> str:
    """Nine members with 0-2 enrolments (written out of date order) and 0-3 claims; returns a CITY key."""
    await builder.employer("e1", "g1")
    for i in range(9):
        member = await builder.member(f"m{i}", "g1" if i % 2 else "d1", "e1")
        for start in [date(2026, 1, 1), date(2024, 6, 1)][:i % 3]:
            await builder.enrollment(member, "SI5" if start.year == 2024 else "HCA", start=start)
        for j in range(i % 4):
            await builder.claim(member, submitted_at=START + timedelta(days=i, hours=j),
                                lines=[("HCA", "MEDICAL", Decimal(10 * (j + 1)))] if j % 2 == 0 and i % 3 else [])
    return await make_key(client.state.databases.members, org="c", scopes=["members:read", "claims:read"])


async def _apart(client: Gql, key: str) -> dict[str, list]:
    data = await client.data(APART, key=key)
    return {e["node"]["id"]: e["node"]["enrollments"] for e in data["members"]["edges"]}


async def _one_claims_statement(client: Gql, query: str, key: str) -> dict:
    await client.data(query, key=key)  # plans and the key's own look-ups, once
    with StatementCount() as counts:
        data = await client.data(query, key=key)
        await asyncio.sleep(0)  # asyncpg reports statements with call_soon
    assert counts["claims"] == 1, dict(counts)  # pages, lines and enrolments (and their plans): one statement
    return data


@pytest.mark.parametrize("query", [WITH_LINES, WITHOUT_LINES], ids=["with lines", "without lines"])
async def test_enrolments_beside_claims_answer_as_read_apart_in_one_statement(
        client: Gql, enrolled: str, query: str) -> None:
    apart = await _apart(client, enrolled)
    assert sorted(len(e) for e in apart.values()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert [e["coverageStart"] for e in apart["m2"]] == ["2024-06-01", "2026-01-01"]  # in date order
    assert {e["plan"]["code"] for e in apart["m2"]} == {"HCA", "SI5"}
    data = await _one_claims_statement(client, query, enrolled)
    edges = data["members"]["edges"]
    assert len(edges) == 9
    for edge in edges:
        node = edge["node"]
        assert node["enrollments"] == apart[node["id"]], node["id"]
        count = int(node["id"][1:]) % 4
        assert node["claims"]["totalCount"] == count
    if query is WITH_LINES:
        lines = (await client.data("{ claims(first: 100) { edges { node { id lines { benefit amount } } } } }",
                                   key=enrolled))["claims"]["edges"]
        apart_lines = {c["node"]["id"]: c["node"]["lines"] for c in lines}
        shown = [c["node"] for e in edges for c in e["node"]["claims"]["edges"]]
        assert [c["lines"] for c in shown] == [apart_lines[c["id"]] for c in shown]
        assert sorted(len(c["lines"]) for c in shown) == [0] * 6 + [1] * 4


async def test_a_district_key_sees_only_its_enrolments_beside_its_claims(client: Gql, enrolled: str) -> None:
    # m5 (under g1, in d1) once lived under d2's g2: its older enrolment was filed there and stays d2's.
    conn = client.state.databases.claims
    moved = await conn.fetchval("SELECT id FROM claims.enrollments WHERE member_id = 'm5' ORDER BY coverage_start"
                                " LIMIT 1")
    await conn.execute("UPDATE claims.enrollments SET organization_id = 'g2' WHERE id = $1", moved)
    district = await make_key(client.state.databases.members, org="d1", scopes=["members:read", "claims:read"])
    everything = await _apart(client, enrolled)
    apart = await _apart(client, district)
    assert [e["id"] for e in everything["m5"]] == [str(moved), [e["id"] for e in everything["m5"]][1]]
    assert apart["m5"] == everything["m5"][1:]
    data = await _one_claims_statement(client, WITH_LINES, district)
    seen = {e["node"]["id"]: e["node"]["enrollments"] for e in data["members"]["edges"]}
    assert seen == apart
