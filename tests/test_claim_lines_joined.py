"""A member's page of claims that selects their lines reads them in the page's own statement.

sources/claims.py (member_claims) joins the lines of the
claims a page shows; schema/prefetch.py uses it when the claims select
`lines`. The answers must be those of reading the lines apart (the root
`claims` list still does), through page sizes, cursors and two pages of
one member in one request and a district key's visibility, with one claims statement fewer.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest_asyncio

from sources.database import StatementCount
from tests.gql import Builder, Gql, builder, client, make_key  # noqa: F401 - fixtures

START = datetime(2026, 3, 1, tzinfo=timezone.utc)

#: Line sets the claims cycle through: none, one, three (line order is line_no, not amount).
LINE_SETS = [
    [],
    [("HCA", "MEDICAL", Decimal("100.25"))],
    [("HCA", "MEDICAL", Decimal("300.00")), ("HCA", "HOSPITAL_ALLOWANCE", Decimal("50")),
     ("HCA", "MEDICAL", Decimal("12.5"))],
]

PAGE = """query($first: Int!) { members(first: 20) { edges { node { id
    claims(first: $first) { totalCount pageInfo { hasNextPage }
      edges { node { id status lines { benefit amount planCode } } } } } } } }"""

APART = """{ claims(first: 100) { edges { node { id lines { benefit amount planCode } } } } }"""


@pytest_asyncio.fixture
async def claims_with_lines(client: Gql, builder: Builder) -> str:
    """Twelve members with 0-5 claims each, whose lines cycle through LINE_SETS; returns a CITY key."""
    await builder.employer("e1", "g1")
    n = 0
    for i in range(12):
        member = await builder.member(f"m{i:02d}", "g1" if i % 2 else "d1", "e1")
        await builder.enrollment(member)
        for j in range(i % 6):
            await builder.claim(member, submitted_at=START + timedelta(days=i, hours=j), lines=LINE_SETS[n % 3])
            n += 1
    return await make_key(client.state.databases.members, org="c", scopes=["members:read", "claims:read"])


async def _lines_read_apart(client: Gql, key: str) -> dict[str, list]:
    data = await client.data(APART, key=key)
    return {e["node"]["id"]: e["node"]["lines"] for e in data["claims"]["edges"]}


async def test_pages_with_lines_answer_as_lines_read_apart_in_one_statement(
        client: Gql, claims_with_lines: str) -> None:
    key = claims_with_lines
    apart = await _lines_read_apart(client, key)
    assert sorted(len(lines) for lines in apart.values()) == [0] * 10 + [1] * 10 + [3] * 10
    assert any(lines == [{"benefit": "MEDICAL", "amount": "300.00", "planCode": "HCA"},
                         {"benefit": "HOSPITAL_ALLOWANCE", "amount": "50.00", "planCode": "HCA"},
                         {"benefit": "MEDICAL", "amount": "12.50", "planCode": "HCA"}] for lines in apart.values())
    await client.data(PAGE, {"first": 2}, key=key)  # plans and the key's own look-ups, once
    for first in (1, 2, 5, 10):
        with StatementCount() as counts:
            data = await client.data(PAGE, {"first": first}, key=key)
            await asyncio.sleep(0)  # asyncpg reports statements with call_soon
        # The claims source: the pages and their lines, together.
        assert counts["claims"] == 1, (first, dict(counts))
        shown = 0
        for edge in data["members"]["edges"]:
            member, page = edge["node"]["id"], edge["node"]["claims"]
            count = int(member[1:]) % 6
            assert page["totalCount"] == count and page["pageInfo"]["hasNextPage"] == (count > first)
            assert len(page["edges"]) == min(count, first)
            for claim in page["edges"]:
                assert claim["node"]["lines"] == apart[claim["node"]["id"]], (first, member, claim)
                shown += 1
        assert shown == sum(min(i % 6, first) for i in range(12))


async def test_two_pages_of_one_member_in_one_request_and_the_next_page(
        client: Gql, claims_with_lines: str) -> None:
    key = claims_with_lines
    apart = await _lines_read_apart(client, key)
    # m05 has five claims: `one` shows the newest, and fetches the second only to know a next page exists;
    # `three` shows that second claim too, with its lines.
    query = """query($after: String) { member(id: "m05") {
        one: claims(first: 1) { pageInfo { endCursor } edges { node { id lines { benefit amount } } } }
        three: claims(first: 3) { edges { node { id lines { benefit amount } } } }
        next: claims(first: 2, after: $after) { edges { node { id lines { benefit amount } } } } } }"""
    first = await client.data(query, key=key)
    cursor = first["member"]["one"]["pageInfo"]["endCursor"]
    data = (await client.data(query, {"after": cursor}, key=key))["member"]
    expected = lambda nodes: [{"id": n["id"], "lines": [{"benefit": ln["benefit"], "amount": ln["amount"]}  # noqa: E731
                                                        for ln in apart[n["id"]]]} for n in nodes]
    one = [e["node"] for e in data["one"]["edges"]]
    three = [e["node"] for e in data["three"]["edges"]]
    after = [e["node"] for e in data["next"]["edges"]]
    assert len(one) == 1 and len(three) == 3 and len(after) == 2
    assert one == expected(one) and three == expected(three) and after == expected(after)
    assert [n["id"] for n in after] == [n["id"] for n in three[1:]]
    assert any(n["lines"] for n in three[1:2] + after[:1]), "the second claim must have lines to tell"



async def test_a_district_key_sees_only_its_claims_and_their_lines(client: Gql, claims_with_lines: str) -> None:
    # m05 (under g1, in d1) moved from d2's g2: its oldest claim was filed there and stays d2's.
    conn = client.state.databases.claims
    moved = await conn.fetchval(
        "SELECT id FROM claims.claims WHERE member_id = 'm05' ORDER BY id LIMIT 1")
    await conn.execute("UPDATE claims.claims SET organization_id = 'g2' WHERE id = $1", moved)
    city = claims_with_lines
    apart = await _lines_read_apart(client, city)
    district = await make_key(client.state.databases.members, org="d1", scopes=["members:read", "claims:read"])
    query = """{ member(id: "m05") { claims(first: 10) { totalCount
        edges { node { id lines { benefit amount planCode } } } } } }"""
    seen = (await client.data(query, key=district))["member"]["claims"]
    everything = (await client.data(query, key=city))["member"]["claims"]
    assert everything["totalCount"] == 5 and str(moved) in [e["node"]["id"] for e in everything["edges"]]
    assert seen["totalCount"] == 4
    assert [e["node"]["id"] for e in seen["edges"]] == [e["node"]["id"] for e in everything["edges"]
                                                      if e["node"]["id"] != str(moved)]
    assert all(e["node"]["lines"] == apart[e["node"]["id"]] for e in seen["edges"])
