"""The pools' session settings every statement relies on."""
from __future__ import annotations

from sources.settings import SOURCES


async def test_every_pool_plans_each_statement_for_its_own_parameters(databases) -> None:
    # A generic plan (PostgreSQL's choice after five runs of a prepared statement)
    # cannot see how many ids an ANY($1) array holds: claimStats went from 0.2 s to
    # over 15 s at 1 000 000 members. Custom plans, always.
    for source in SOURCES:
        assert await databases[source].fetchval("SHOW plan_cache_mode") == "force_custom_plan"
        assert await databases[source].fetchval("SHOW timezone") == "Asia/Shanghai"
