"""A request's rows are freed by reference counting, not left in cycles for the collector.

When they hung in reference cycles, the cyclic collector freed every
request's rows and results: ~30 % of the CPU under load and pauses of
100 ms and more (bench/, W2). Context.release and the completion plans'
clean-up break those cycles; this keeps them broken.
"""
from __future__ import annotations

import gc

from sources.claims import ClaimLineRow, ClaimRow, EnrollmentRow
from sources.members import EmployerRow, MemberRow, OrganizationRow
from tests.gql import Builder, Gql, builder, client, make_key  # noqa: F401 - fixtures

ROWS = (MemberRow, EmployerRow, OrganizationRow, EnrollmentRow, ClaimRow, ClaimLineRow)
STAFF_LIST = """{ members(first: 10, filter: {organizationId: "d1"}) { totalCount edges { node {
    id name employer { id name } organization { id name parent { id } }
    enrollments { id plan { code } } claims(first: 5) { edges { node { id status lines { amount } } } }
} } } }"""


async def test_a_staff_lists_rows_are_not_left_to_the_cyclic_collector(client: Gql, builder: Builder) -> None:
    await builder.employer("e1", "g1")
    for i in range(4):
        member = await builder.member(f"m{i}", "g1", "e1")
        await builder.enrollment(member)
    key = await make_key(client.state.databases.members, org="c", scopes=["members:read", "claims:read"])
    await client.data(STAFF_LIST, key=key)  # warm: caches that live as long as the process fill here
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        data = await client.data(STAFF_LIST, key=key)
        assert len(data["members"]["edges"]) == 4
        del data
        gc.collect()
        left = [type(o).__name__ for o in gc.garbage if isinstance(o, ROWS)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []
