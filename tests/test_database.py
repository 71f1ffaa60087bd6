"""The pools' session settings every statement relies on, and which statements each kind of pool plans how."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import asyncpg
import pytest

from sources.database import split_pool_size
from sources.settings import SOURCES
from tests.gql import Builder, Gql, builder, client, make_key  # noqa: F401 - fixtures


async def test_pages_are_planned_per_run_and_look_ups_once(databases) -> None:
    # A generic plan cannot see how many ids an ANY($1) array holds or how wide a
    # range is: claimStats went from 0.2 s to over 15 s at 1 000 000 members.
    # Look-ups by key have one right plan, and planning was most of their cost.
    for source in SOURCES:
        assert await databases[source].fetchval("SHOW plan_cache_mode") == "force_custom_plan"
        assert await databases.keyed(source).fetchval("SHOW plan_cache_mode") == "force_generic_plan"
        for pool in (databases[source], databases.keyed(source)):
            assert await pool.fetchval("SHOW timezone") == "Asia/Shanghai"


@pytest.mark.parametrize("budget", [1, 2, 5, 8, 10, 11])
def test_a_sources_two_pools_share_its_connection_budget(budget: int) -> None:
    planned, keyed = split_pool_size(budget)
    assert planned >= 1 and keyed >= 1
    assert planned + keyed == max(budget, 2)


async def _plans(pool: asyncpg.Pool, fragment: str) -> tuple[int, int]:
    """(generic, custom) plans made so far for the statements containing `fragment`, over the pool's connections."""
    connections = [await pool.acquire() for _ in range(pool.get_size())]
    try:
        generic = custom = 0
        for conn in connections:
            for row in await conn.fetch("SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                                        " WHERE strpos(statement, $1) > 0", fragment):
                generic += row["generic_plans"]
                custom += row["custom_plans"]
        return generic, custom
    finally:
        for conn in connections:
            await pool.release(conn)


async def test_a_staff_lists_look_ups_are_planned_once_and_its_page_each_time(client: Gql, builder: Builder) -> None:
    await builder.employer("e1", "g1")
    for i in range(3):
        member = await builder.member(f"m{i}", "g1", "e1")
        await builder.enrollment(member)
        await builder.claim(member, submitted_at=datetime(2026, 3, 1, tzinfo=timezone.utc),
                            lines=[("HCA", "MEDICAL", Decimal("100.00"))])
    key = await make_key(client.state.databases.members, org="d1", scopes=["members:read", "claims:read"])
    query = """{ members(first: 10) { edges { node { id enrollments { status }
                 claims(first: 5) { edges { node { lines { amount } } } } } } } }"""
    for _ in range(3):
        body = await client.query(query, key=key)
        assert not body.get("errors"), body
        assert len(body["data"]["members"]["edges"]) == 3
    databases = client.state.databases
    lines_generic, lines_custom = await _plans(databases.keyed("claims"), "FROM claims.claim_lines")
    assert lines_generic >= 2 and lines_custom == 0  # planned once per connection, then reused
    enrolments_generic, enrolments_custom = await _plans(databases.keyed("claims"), "FROM claims.enrollments")
    assert enrolments_generic >= 2 and enrolments_custom == 0
    page_generic, page_custom = await _plans(databases["members"], "LEFT JOIN LATERAL")
    assert page_custom == 3 and page_generic == 0  # a page is planned for its own subtree every time
