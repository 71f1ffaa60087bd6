"""list_members reads a page in one of three shapes (sources/member_page_shape.py): same pages whichever.

The shape is chosen from the subtree's sizes; these tests force each shape
and compare every page, cursor and filter, so a wrong bound of the path
range or a lost visibility condition
shows as a different page.
"""
from __future__ import annotations

import asyncio

import asyncpg
import pytest
import pytest_asyncio

from unittest import mock

from commands.seed import seed_database
from sources import member_page_shape as shapes
from sources import members as source
from sources.database import Databases, StatementCount
from sources.member_page_shape import PageShape
from sources.members import MemberQuery
from sources.viewer import Viewer
from sources.settings import Settings
from tests import pg
from tests.gql import gateway

SOURCES = ("members", "claims", "contracts", "recruitment", "simulator")
WILD = ("ORG_WILD", "ORGxWILD")


@pytest_asyncio.fixture(scope="module")
async def seeded(pg_admin_url: str, pg_template: str):
    name = await pg.create_database(pg_admin_url, pg_template)
    url = pg.with_database(pg_admin_url, name)
    await seed_database({s: url for s in SOURCES}, members=1200, seed=5, progress=False)
    conn = await asyncpg.connect(url)
    # A neighbour whose path extends a grassroots union's by '0' ('/c/d/G0/' beside
    # '/c/d/G/'), holding one of its members: the first path outside G's range.
    grassroots, parent = await conn.fetchrow(
        """SELECT o.id, o.parent_id FROM members.organizations o JOIN members.organization_member_counts c
           ON c.organization_id = o.id WHERE o.level = 'GRASSROOTS' AND c.members >= 5 ORDER BY o.id LIMIT 1""")
    await conn.execute("INSERT INTO members.organizations (id, name, level, parent_id) VALUES ($1, '邻厂工会', "
                       "'GRASSROOTS', $2)", grassroots + "0", parent)
    # Ids may hold LIKE's wildcards: 'ORG_WILD' must not take in its sibling 'ORGxWILD'.
    for wild in WILD:
        await conn.execute("INSERT INTO members.organizations (id, name, level, parent_id) VALUES ($1, $1, "
                           "'GRASSROOTS', $2)", wild, parent)
    await conn.execute("SELECT members.refresh_organization_paths()")  # what every write of the tree does
    await conn.execute("UPDATE members.members SET organization_id = $1 WHERE id = (SELECT min(id) FROM "
                       "members.members WHERE organization_id = $2)", grassroots + "0", grassroots)
    for wild in WILD:
        await conn.execute("UPDATE members.members SET organization_id = $1 WHERE id = (SELECT max(id) FROM "
                           "members.members WHERE organization_id = $2)", wild, grassroots)
    await conn.close()
    databases = await Databases({s: url for s in SOURCES if s != "simulator"}).open(min_size=1, max_size=2)
    pool = databases.members  # its connections count statements
    orgs = await pool.fetch(
        """SELECT o.id, o.path, c.subtree_members FROM members.organizations o
           JOIN members.organization_member_counts c ON c.organization_id = o.id
           ORDER BY length(o.path), c.subtree_members DESC, o.id""")
    yield pool, orgs, url
    await databases.close()
    await pg.drop_database(pg_admin_url, name)


def _viewer(org: asyncpg.Record) -> Viewer:
    return Viewer(key_id="k", name="test", scopes=frozenset({"members:read"}), organization_id=org["id"],
                  organization_path=org["path"])


async def _page(pool, viewer: Viewer, where: MemberQuery, *, shape: PageShape, limit: int, after: str | None):
    with mock.patch.object(shapes, "choose", lambda *args: shape):
        return await source.list_members(pool, viewer=viewer, where=where, limit=limit, after_id=after,
                                         with_links=True, with_total=True)


def _cases(orgs):
    city = orgs[0]
    districts = [o for o in orgs if o["path"].count("/") == 3]
    grassroots = [o for o in orgs if o["path"].count("/") == 4 and o["subtree_members"] > 0]
    neighbour = next(g for g in grassroots if any(o["id"] == g["id"] + "0" for o in orgs))
    d0 = next(d for d in districts if neighbour["path"].startswith(d["path"]))
    districts = [d0] + [d for d in districts if d is not d0]
    inside = neighbour
    outside = next(g for g in grassroots if not g["path"].startswith(districts[0]["path"]))
    d1 = districts[1]
    return [
        (city, MemberQuery(organization_id=d0["id"])),  # a district, seen by the city
        (city, MemberQuery(organization_id=inside["id"])),  # a grassroots union
        (d0, MemberQuery()),  # a district's own members
        (inside, MemberQuery()),  # a grassroots key's own members
        (d0, MemberQuery(organization_id=inside["id"])),  # a filter inside the key's subtree
        (inside, MemberQuery(organization_id=d0["id"])),  # a filter above it: only the key's part
        (d0, MemberQuery(organization_id=outside["id"])),  # apart: nothing
        (d0, MemberQuery(organization_id=d1["id"])),  # another district: nothing
        (city, MemberQuery(organization_id=d0["id"], gender="FEMALE")),
        (city, MemberQuery(organization_id=d0["id"], name_contains="王")),
        (d0, MemberQuery(employment_type="REGULAR")),
        (city, MemberQuery(organization_id="NO-SUCH-ORG")),
    ]


@pytest.mark.parametrize("limit", [1, 7, 51])
async def test_every_shape_gives_the_same_pages_through_every_cursor(seeded, limit: int) -> None:
    pool, orgs, _ = seeded
    compared = 0
    for org, where in _cases(orgs):
        viewer = _viewer(org)
        after, pages = None, 0
        while True:
            probed = await _page(pool, viewer, where, shape=PageShape.WALK_PROBED, limit=limit, after=after)
            for shape in (PageShape.WALK_HASHED, PageShape.BY_ORGANIZATION):
                other = await _page(pool, viewer, where, shape=shape, limit=limit, after=after)
                assert other.rows == probed.rows, (shape, org["id"], where, after)
                assert (other.total, other.employers, other.organizations) == (
                    probed.total, probed.employers, probed.organizations), (shape, org["id"], where, after)
            compared += len(probed.rows)
            pages += 1
            if len(probed.rows) < limit or pages == 4:
                break
            after = probed.rows[-1].id
    assert compared > 0


@pytest.mark.parametrize("shape", list(PageShape))
async def test_every_member_of_a_subtree_is_listed_once_and_none_outside(seeded, shape: PageShape) -> None:
    pool, orgs, _ = seeded
    district = next(o for o in orgs if o["path"].count("/") == 3)
    expected = [r["id"] for r in await pool.fetch(
        """SELECT m.id FROM members.members m JOIN members.organizations o ON o.id = m.organization_id
           WHERE o.path LIKE $1 || '%' ORDER BY m.id""", district["path"])]
    for viewer, where in ((_viewer(orgs[0]), MemberQuery(organization_id=district["id"])),
                          (_viewer(district), MemberQuery())):
        listed, after = [], None
        while True:
            page = await _page(pool, viewer, where, shape=shape, limit=50, after=after)
            listed += [row.id for row in page.rows]
            if len(page.rows) < 50:
                break
            after = page.rows[-1].id
        assert listed == expected and len(expected) > 50


async def test_an_id_with_like_wildcards_is_its_own_subtree(seeded) -> None:
    pool, orgs, _ = seeded
    city = _viewer(orgs[0])
    own = await pool.fetchval("SELECT id FROM members.members WHERE organization_id = 'ORG_WILD'")
    where = MemberQuery(organization_id="ORG_WILD")
    for shape in PageShape:
        page = await _page(pool, city, where, shape=shape, limit=10, after=None)
        assert [row.id for row in page.rows] == [own], shape
    # A filter the counters cannot answer is counted from the rows, under the same subtree condition.
    gender = await pool.fetchval("SELECT gender FROM members.members WHERE id = $1", own)
    assert await source.count_members(pool, viewer=city, where=MemberQuery(organization_id="ORG_WILD",
                                                                           gender=gender)) == 1
    assert await source.subtree_organization_ids(pool, organization_id="ORG_WILD", viewer=city) == ["ORG_WILD"]


async def test_the_hashed_walk_stays_a_walk_when_planned_once(seeded) -> None:
    """The point of WALK_HASHED: planned for any district, PostgreSQL still walks the id index.

    Written as a plain semi-join, the same condition is planned as a join from
    the organizations, reading and sorting every member of the subtree.
    """
    pool, orgs, _ = seeded
    district = next(o for o in orgs if o["path"].count("/") == 3)
    statements: list[tuple[str, tuple]] = []

    class Recording:
        async def fetch(self, sql: str, *args):
            statements.append((sql, args))
            return await pool.fetch(sql, *args)

    for viewer, where in ((_viewer(orgs[0]), MemberQuery(organization_id=district["id"])),
                          (_viewer(district), MemberQuery())):
        with mock.patch.object(shapes, "choose", lambda *args: PageShape.WALK_HASHED):
            await source.list_members(Recording(), viewer=viewer, where=where, limit=51, after_id=None,
                                      with_links=True, with_total=True)
    async with pool.acquire() as conn:
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        for number, (sql, args) in enumerate(statements):
            await conn.execute(f"PREPARE page{number} AS {sql}")
            values = ", ".join("'" + str(a).replace("'", "''") + "'" for a in args)
            plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN EXECUTE page{number}({values})"))
            await conn.execute(f"DEALLOCATE page{number}")
            assert "Index Scan using members_pkey on members m" in plan and "hashed SubPlan" in plan, plan
        await conn.execute("RESET plan_cache_mode")


async def test_the_size_is_learned_from_the_page_statement_itself(seeded) -> None:
    pool, orgs, _ = seeded
    grassroots = next(o for o in orgs if o["path"].count("/") == 4 and 0 < o["subtree_members"] < 50)
    viewer, where = _viewer(orgs[0]), MemberQuery(organization_id=grassroots["id"])
    shapes._seen_sizes.clear()
    with StatementCount() as statements:
        page = await source.list_members(pool, viewer=viewer, where=where, limit=100, after_id=None,
                                         with_total=True)
        await asyncio.sleep(0)  # asyncpg reports statements with call_soon
    assert statements["members"] == 1
    assert page.total == grassroots["subtree_members"] == len(page.rows)
    assert shapes._seen_sizes[(None, grassroots["id"])] == grassroots["subtree_members"]


async def test_an_empty_page_still_carries_its_total_and_size(seeded) -> None:
    pool, orgs, _ = seeded
    districts = [o for o in orgs if o["path"].count("/") == 3]
    viewer, where = _viewer(districts[0]), MemberQuery(organization_id=districts[1]["id"])
    shapes._seen_sizes.clear()
    with StatementCount() as statements:
        page = await source.list_members(pool, viewer=viewer, where=where, limit=10, after_id=None,
                                         with_links=True, with_total=True)
        await asyncio.sleep(0)
    assert statements["members"] == 1
    assert (page.rows, page.total, page.employers) == ([], 0, {})
    assert shapes._seen_sizes[(districts[0]["id"], districts[1]["id"])] == 0
    # apart: the next page reads nothing, organization by organization
    assert shapes.choose(viewer, where.organization_id, 10) is PageShape.BY_ORGANIZATION


async def test_start_up_sizes_choose_the_shape_of_a_first_page(seeded, monkeypatch) -> None:
    pool, orgs, _ = seeded
    await shapes.remember_tree_sizes(pool)
    chosen: list[PageShape] = []
    choose = shapes.choose

    def spy(*args):
        chosen.append(choose(*args))
        return chosen[-1]

    monkeypatch.setattr(shapes, "choose", spy)
    city = orgs[0]
    district = max((o for o in orgs if o["path"].count("/") == 3), key=lambda o: o["subtree_members"])
    union = next(o for o in orgs if o["path"].startswith(district["path"]) and o["path"].count("/") == 4
                 and 0 < o["subtree_members"] <= 20)

    async def shape(viewer_org, organization_id: str | None) -> PageShape:
        shapes._seen_sizes.clear()  # nothing learned yet: the first page of its subtree
        chosen.clear()
        await source.list_members(pool, viewer=_viewer(viewer_org), where=MemberQuery(organization_id=organization_id),
                                  limit=5, after_id=None)
        return chosen[0]

    assert await shape(city, union["id"]) is PageShape.BY_ORGANIZATION
    assert await shape(city, district["id"]) is PageShape.WALK_HASHED
    assert await shape(district, None) is PageShape.WALK_HASHED
    assert await shape(district, union["id"]) is PageShape.BY_ORGANIZATION  # the filter's subtree bounds it
    assert await shape(union, district["id"]) is PageShape.BY_ORGANIZATION  # and so does the viewer's
    assert await shape(union, None) is PageShape.BY_ORGANIZATION
    assert await shape(city, "NO-SUCH-ORG") is PageShape.BY_ORGANIZATION  # unknown at start-up: nothing to walk
    assert await shape(city, None) is PageShape.WALK_PROBED  # the whole city: nothing to look up


async def test_the_gateway_reads_the_sizes_when_it_starts(seeded, tmp_path) -> None:
    pool, orgs, url = seeded
    shapes._tree = None
    expected = await pool.fetch(
        """SELECT o.id, (SELECT count(*) FROM members.members m JOIN members.organizations x ON x.id = m.organization_id
                         WHERE starts_with(x.path, o.path)) AS members,
                        (SELECT count(*) FROM members.organizations x WHERE starts_with(x.path, o.path)) AS organizations
           FROM members.organizations o""")
    settings = Settings(database_url=url, home=tmp_path / "home", _env_file=None)
    async with gateway(settings, {s: url for s in SOURCES}):
        tree = shapes._tree
        assert tree is not None
        assert tree.members == {r["id"]: r["members"] for r in expected}
        assert tree.organizations == {r["id"]: r["organizations"] for r in expected}
        assert tree.total == await pool.fetchval("SELECT count(*) FROM members.members") == 1200
    assert 0 in tree.members.values()  # organizations without members are known too
    # The neighbour '/c/d/G0/' sorts right after '/c/d/G/': it is not in G's subtree.
    grassroots = next(o for o in orgs if any(x["id"] == o["id"] + "0" for x in orgs))
    assert tree.organizations[grassroots["id"]] == 1
