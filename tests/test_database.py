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
        assert await databases.planned_once(source).fetchval("SHOW plan_cache_mode") == "force_generic_plan"
        for pool in (databases[source], databases.planned_once(source)):
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


async def test_a_staff_lists_statements_are_planned_once_and_a_report_each_time(client: Gql, builder: Builder) -> None:
    await builder.employer("e1", "g1")
    for i in range(3):
        member = await builder.member(f"m{i}", "g1", "e1")
        await builder.enrollment(member)
        await builder.claim(member, submitted_at=datetime(2026, 3, 1, tzinfo=timezone.utc),
                            lines=[("HCA", "MEDICAL", Decimal("100.00"))])
    key = await make_key(client.state.databases.members, org="d1",
                         scopes=["members:read", "claims:read", "stats:read"])
    query = """{ members(first: 10) { edges { node { id enrollments { status }
                 claims(first: 5) { edges { node { lines { amount } } } } } } }
                 claimStats(from: "2026-01-01", to: "2026-12-31", groupBy: [MONTH]) { claims } }"""
    for _ in range(3):
        body = await client.query(query, key=key)
        assert not body.get("errors"), body
        assert len(body["data"]["members"]["edges"]) == 3
        assert body["data"]["claimStats"] == [{"claims": 3}]
    databases = client.state.databases
    # Planned once per connection, then reused: the page, look-ups by key, claims pages with their lines.
    for source, fragment in (("members", "LEFT JOIN LATERAL"), ("claims", "FROM claims.enrollments"),
                             ("claims", "LEFT JOIN claims.claim_lines")):
        generic, custom = await _plans(databases.planned_once(source), fragment)
        assert generic >= 2 and custom == 0, (fragment, generic, custom)
    # A report is planned for its own date range every time.
    generic, custom = await _plans(databases["claims"], "date_trunc('month'")
    assert custom == 3 and generic == 0
