"""members' totalCount from the per-organization counters: right after every kind of write, and per viewer."""
from __future__ import annotations

import asyncio

import pytest_asyncio

from sources.database import StatementCount
from tests.gql import Builder, Gql, builder, client, make_key  # noqa: F401 - fixtures

STAFF_LIST = """query($org: ID) {
  members(first: 2, filter: {organizationId: $org}) {
    totalCount
    edges { node { id employer { id name } organization { id name } } }
  }
}"""


async def _total(client: Gql, key: str, org: str | None) -> int:
    return (await client.data(STAFF_LIST, {"org": org}, key=key))["members"]["totalCount"]


async def _counted_by_rows(builder: Builder, org: str) -> int:
    return await builder.conn.fetchval(
        """SELECT count(*) FROM members.members m JOIN members.organizations o ON o.id = m.organization_id
           WHERE o.path LIKE (SELECT path || '%' FROM members.organizations WHERE id = $1)""", org)


@pytest_asyncio.fixture
async def city_key(client: Gql, builder: Builder) -> str:
    await builder.employer("e1", "g1")
    for i in range(5):
        await builder.member(f"m{i}", "g1", "e1")
    for i in range(5, 8):
        await builder.member(f"m{i}", "g2", "e1")
    await builder.member("m8", "d1", "e1")
    return await make_key(client.state.databases.members, org="c", scopes=["members:read"])


async def test_totals_follow_inserts_moves_deletes_and_truncation(client: Gql, builder: Builder,
                                                                  city_key: str) -> None:
    async def check() -> None:
        for org in ("c", "d1", "d2", "g1", "g2"):
            assert await _total(client, city_key, org) == await _counted_by_rows(builder, org), org

    await check()
    assert await _total(client, city_key, "d1") == 6
    # One statement moving members both ways, as an import's upsert does.
    await builder.conn.execute(
        "UPDATE members.members SET organization_id = CASE WHEN organization_id = 'g1' THEN 'g2' ELSE 'g1' END "
        "WHERE id IN ('m0', 'm1', 'm5')")
    await check()
    assert await _total(client, city_key, "g2") == 4
    await builder.conn.execute("UPDATE members.members SET name = '王芳芳'")  # no move, no change
    await check()
    await builder.conn.execute("DELETE FROM members.members WHERE id IN ('m2', 'm6', 'm8')")
    await check()
    assert await _total(client, city_key, None) == 6
    await builder.conn.execute("TRUNCATE members.members CASCADE")
    await check()
    assert await _total(client, city_key, "c") == 0


async def test_a_district_key_counts_only_what_it_sees(client: Gql, builder: Builder, city_key: str) -> None:
    key = await make_key(client.state.databases.members, org="d1", scopes=["members:read"])
    assert await _total(client, key, None) == 6
    assert await _total(client, key, "d1") == 6
    assert await _total(client, key, "g1") == 5
    assert await _total(client, key, "d2") == 0  # out of its sight: nothing, not the other district's count
    assert await _total(client, key, "c") == 6  # the city filter, cut down to what the key sees


async def test_a_staff_list_is_one_statement_with_its_links_and_total(client: Gql, city_key: str) -> None:
    await client.query("{ viewer { keyId } }", key=city_key)  # the key's own look-up, out of the count
    with StatementCount() as statements:
        data = await client.data(STAFF_LIST, {"org": "d1"}, key=city_key)
        await asyncio.sleep(0)  # asyncpg reports statements with call_soon
    page = data["members"]
    assert page["totalCount"] == 6
    assert page["edges"][0]["node"] == {"id": "m0", "employer": {"id": "e1", "name": "无锡某某有限公司"},
                                        "organization": {"id": "g1", "name": "梁溪一厂工会"}}
    assert statements["members"] == 1


async def test_other_filters_are_counted_from_the_rows(client: Gql, builder: Builder, city_key: str) -> None:
    await builder.conn.execute("UPDATE members.members SET employment_type = 'DISPATCHED' WHERE id IN ('m0', 'm5')")
    data = await client.data(
        'query { members(first: 1, filter: {organizationId: "d1", employmentType: DISPATCHED}) { totalCount } }',
        key=city_key)
    assert data["members"]["totalCount"] == 1


async def test_a_grassroots_union_moving_district_takes_its_members_along(client: Gql, builder: Builder,
                                                                          city_key: str) -> None:
    assert (await _total(client, city_key, "d1"), await _total(client, city_key, "d2")) == (6, 3)
    await builder.conn.execute("UPDATE members.organizations SET parent_id = 'd2' WHERE id = 'g1'")
    await builder.conn.execute("SELECT members.refresh_organization_paths()")
    assert (await _total(client, city_key, "d1"), await _total(client, city_key, "d2")) == (1, 8)
    for org in ("c", "d1", "d2", "g1", "g2"):
        assert await _total(client, city_key, org) == await _counted_by_rows(builder, org), org
