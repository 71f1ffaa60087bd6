"""A query's SQL statements depend on its depth, not on how many rows each level returns."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest_asyncio

from sources.database import StatementCount
from tests.gql import Builder, Gql, builder, client, make_key  # noqa: F401 - fixtures

QUERY = """query($n: Int!) { members(first: $n) { edges { node {
    id employer { name } organization { name }
    enrollments { status plan { code premium } }
    claims(first: 5) { totalCount edges { node { id status lines { amount benefit } } } }
} } } }"""

#: members page, employers, organizations, visible organization ids, enrolments, plans, claims page, lines.
MOST_STATEMENTS = 8


@pytest_asyncio.fixture
async def fifty_members(client: Gql, builder: Builder) -> None:
    start = datetime(2026, 3, 1, tzinfo=timezone.utc)
    for i in range(10):
        await builder.employer(f"e{i:02d}", "g1" if i % 2 else "g2")
    for i in range(50):
        member = await builder.member(f"m{i:03d}", "g1" if i % 3 else "d1", f"e{i % 10:02d}")
        await builder.enrollment(member)
        if i % 2:
            await builder.enrollment(member, "SI5")
        for j in range(i % 4):
            await builder.claim(member, submitted_at=start + timedelta(days=i + j),
                                lines=[("HCA", "MEDICAL", Decimal("100.00")),
                                       ("HCA", "HOSPITAL_ALLOWANCE", Decimal(50 * (j + 1)))])


async def _statements(client: Gql, key: str, n: int) -> tuple[int, int]:
    with StatementCount() as counts:
        body = await client.query(QUERY, {"n": n}, key=key)
        await asyncio.sleep(0)  # asyncpg reports statements with call_soon
    assert not body.get("errors"), body["errors"]
    assert len(body["data"]["members"]["edges"]) == n
    return counts["members"] + counts["claims"], len(body["data"]["members"]["edges"])


async def test_statements_do_not_grow_with_the_page(client: Gql, fifty_members: None) -> None:
    # A district key: the visible-organization look-up is part of the count.
    key = await make_key(client.state.databases.members, org="d1", scopes=["members:read", "claims:read"])
    await client.query("{ viewer { keyId } }", key=key)  # the key's own look-ups are cached from here on
    # d1 sees the members in d1 and g1: 50 - those in g2 (none: members sit in g1 or d1).
    few, _ = await _statements(client, key, 5)
    many, _ = await _statements(client, key, 50)
    assert few == many
    assert many <= MOST_STATEMENTS


async def test_the_city_key_skips_the_visibility_look_up(client: Gql, fifty_members: None) -> None:
    key = await make_key(client.state.databases.members, org="c", scopes=["members:read", "claims:read"])
    await client.query("{ viewer { keyId } }", key=key)
    few, _ = await _statements(client, key, 5)
    many, _ = await _statements(client, key, 50)
    assert few == many <= MOST_STATEMENTS - 1


async def test_organization_members_batch_across_organizations(client: Gql, fifty_members: None) -> None:
    key = await make_key(client.state.databases.members, org="c", scopes=["members:read"])
    await client.query("{ viewer { keyId } }", key=key)
    query = "{ organization(id: \"c\") { children { children { members(first: 3) { totalCount edges { node { employer { id } } } } } } } }"
    with StatementCount() as counts:
        data = await client.data(query, key=key)
        await asyncio.sleep(0)
    grassroots = [g for d in data["organization"]["children"] for g in d["children"]]
    assert sorted(g["members"]["totalCount"] for g in grassroots) == [0, 33]
    # organization, children, grandchildren, their members, employers: one statement each.
    assert counts["members"] == 5
