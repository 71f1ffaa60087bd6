"""The members source (reads): organizations, employers, members, and their request-scoped loaders.

Visibility is part of every statement: a row outside the viewer's
organization subtree is never read into Python. The CITY key (sees_all)
gets statements without the filter at all.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Sequence

import asyncpg
from aiodataloader import DataLoader

from sources import member_page_shape
from sources.bulk_load import prime_values
from sources.member_page_shape import PageShape, page_scope
from sources.observability import TracedLoader

from sources.sql import Query
from sources.viewer import Viewer
from sources.rows import qualified, row_class, select_list, width



@row_class
class OrganizationRow:
    id: str
    name: str
    level: str
    parent_id: str | None
    path: str


@row_class
class EmployerRow:
    id: str
    name: str
    credit_code: str
    industry: str | None
    organization_id: str | None


@row_class
class MemberRow:
    id: str
    name: str
    gender: str
    birth_date: date
    national_id: str
    phone: str | None
    employment_type: str
    employer_id: str
    organization_id: str
    joined_on: date


_ORG_COLUMNS = select_list(OrganizationRow, "id, name, level, parent_id, path")
_EMPLOYER_COLUMNS = select_list(EmployerRow, "id, name, credit_code, industry, organization_id")
_MEMBER_COLUMNS = select_list(MemberRow, "id, name, gender, birth_date, national_id, phone, employment_type, "
                                         "employer_id, organization_id, joined_on")
_ORG_WIDTH, _EMPLOYER_WIDTH, _MEMBER_WIDTH = width(OrganizationRow), width(EmployerRow), width(MemberRow)


@dataclass(frozen=True, slots=True)
class MemberQuery:
    """MemberFilter, as the source applies it."""

    organization_id: str | None = None
    employer_id: str | None = None
    name_contains: str | None = None
    gender: str | None = None
    employment_type: str | None = None


# Rows from record slices: each statement selects a class's columns (the lists
# above, checked against the class) from `start` on (sources/rows.py says why).

def _org(row: asyncpg.Record, start: int = 0) -> OrganizationRow:
    return OrganizationRow(*row[start:start + _ORG_WIDTH])


def _employer(row: asyncpg.Record, start: int = 0) -> EmployerRow:
    return EmployerRow(*row[start:start + _EMPLOYER_WIDTH])


def _member(row: asyncpg.Record, start: int = 0) -> MemberRow:
    return MemberRow(*row[start:start + _MEMBER_WIDTH])


def _visible_orgs(q: Query, viewer: Viewer, column: str) -> None:
    if not viewer.sees_all:
        q.where(f"{column} IN (SELECT id FROM members.organizations WHERE path LIKE {q.arg(viewer.path_pattern)})")


def _under(column: str, organization: str) -> str:
    """`column` (an organizations path) lies at or under the organization whose id is the placeholder `organization`.

    The subtree of P is one range of the path index: every path under P
    starts with P, which ends in '/', so it lies in [P, P without its '/'
    followed by '0'), '0' being the character after '/'. Exact for any id,
    where `LIKE path || '%'` would take a '_' or '%' in an id for a wildcard.
    """
    return (f"{column} ~>=~ (SELECT path FROM members.organizations WHERE id = {organization})"
            f" AND {column} ~<~ (SELECT left(path, -1) || '0' FROM members.organizations WHERE id = {organization})")


def _under_path(q: Query, column: str, path: str) -> str:
    """`column` lies at or under the organization at `path`: _under's range, from a path already known."""
    return f"{column} ~>=~ {q.arg(path)} AND {column} ~<~ {q.arg(path[:-1] + '0')}"


def _member_filter(q: Query, f: MemberQuery, *, subtree: bool = True) -> None:
    """`f`'s conditions on members `m`; subtree=False leaves the organization's subtree to the caller."""
    if f.organization_id is not None and subtree:
        # The organization and everything under it: a district's staff list
        # is the district's members, not only those filed at the district itself.
        q.where(f"m.organization_id IN (SELECT id FROM members.organizations"
                f" WHERE {_under('path', q.arg(f.organization_id))})")
    if f.employer_id is not None:
        q.where(f"m.employer_id = {q.arg(f.employer_id)}")
    if f.name_contains:
        # strpos, not LIKE: the user's text holds no wildcards to escape.
        q.where(f"strpos(lower(m.name), lower({q.arg(f.name_contains)})) > 0")
    if f.gender is not None:
        q.where(f"m.gender = {q.arg(f.gender)}")
    if f.employment_type is not None:
        q.where(f"m.employment_type = {q.arg(f.employment_type)}")


# --------------------------------------------------------------------------- organizations

async def organizations_by_ids(pool: asyncpg.Pool, *, ids: Sequence[str], viewer: Viewer) -> list[OrganizationRow]:
    """The visible organizations among `ids`."""
    q = Query()
    q.where(f"id = ANY({q.arg(list(ids))}::text[])")
    if not viewer.sees_all:
        q.where(f"path LIKE {q.arg(viewer.path_pattern)}")
    rows = await pool.fetch(f"SELECT {_ORG_COLUMNS} FROM members.organizations {q.where_sql}", *q.args)
    return [_org(r) for r in rows]


async def organizations_by_parent_ids(pool: asyncpg.Pool, *, parent_ids: Sequence[str],
                                      viewer: Viewer) -> list[OrganizationRow]:
    """The visible children of the given organizations, ordered by id."""
    q = Query()
    q.where(f"parent_id = ANY({q.arg(list(parent_ids))}::text[])")
    if not viewer.sees_all:
        q.where(f"path LIKE {q.arg(viewer.path_pattern)}")
    rows = await pool.fetch(f"SELECT {_ORG_COLUMNS} FROM members.organizations {q.where_sql} ORDER BY id", *q.args)
    return [_org(r) for r in rows]


async def visible_organization_ids(pool: asyncpg.Pool, *, viewer: Viewer) -> list[str] | None:
    """Ids of every organization the viewer sees; None for the CITY key (no filter needed)."""
    if viewer.sees_all:
        return None
    return list(await pool.fetchval(
        "SELECT coalesce(array_agg(id), '{}') FROM members.organizations WHERE path LIKE $1", viewer.path_pattern))


async def subtree_organization_ids(pool: asyncpg.Pool, *, organization_id: str, viewer: Viewer) -> list[str]:
    """The visible organizations at or under `organization_id` (empty when it is unknown or out of scope)."""
    q = Query()
    q.where(_under("path", q.arg(organization_id)))
    if not viewer.sees_all:
        q.where(f"path LIKE {q.arg(viewer.path_pattern)}")
    return list(await pool.fetchval(
        f"SELECT coalesce(array_agg(id), '{{}}') FROM members.organizations {q.where_sql}", *q.args))


async def districts_by_organization_json(pool: asyncpg.Pool, *, viewer: Viewer) -> str:
    """Each visible organization's DISTRICT-level ancestor (itself for a district, the CITY for the city).

    A JSON object {organization id: district id}, built by PostgreSQL and
    handed on as text to the claims statement that groups by it: at 20 000
    organizations, making and encoding a dict of them in Python cost more
    than the aggregation it feeds.
    """
    q = Query()
    if not viewer.sees_all:
        q.where(f"path LIKE {q.arg(viewer.path_pattern)}")
    # path is '/city/district/grassroots/': the district is the second segment.
    return await pool.fetchval(
        f"""SELECT coalesce(jsonb_object_agg(id, CASE WHEN split_part(path, '/', 3) = '' THEN split_part(path, '/', 2)
                                                      ELSE split_part(path, '/', 3) END), '{{}}')::text
            FROM members.organizations {q.where_sql}""", *q.args)


# --------------------------------------------------------------------------- employers

async def employers_by_ids(pool: asyncpg.Pool, *, ids: Sequence[str]) -> list[EmployerRow]:
    """Employers by id.

    Not filtered by organization: an employer is public registry data
    (统一社会信用代码), reached from a member, contract or posting the viewer
    already sees; entity look-ups by id check visibility themselves.
    """
    rows = await pool.fetch(f"SELECT {_EMPLOYER_COLUMNS} FROM members.employers WHERE id = ANY($1::text[])", list(ids))
    return [_employer(r) for r in rows]


# --------------------------------------------------------------------------- members

async def members_by_ids(pool: asyncpg.Pool, *, ids: Sequence[str], viewer: Viewer) -> list[MemberRow]:
    """The visible members among `ids`."""
    q = Query()
    q.where(f"m.id = ANY({q.arg(list(ids))}::text[])")
    _visible_orgs(q, viewer, "m.organization_id")
    rows = await pool.fetch(f"SELECT {_MEMBER_COLUMNS} FROM members.members m {q.where_sql}", *q.args)
    return [_member(r) for r in rows]


@dataclass(frozen=True, slots=True)
class MemberPage:
    """A keyset page of members (up to limit + 1 rows) and, when asked for, their links and the total."""

    rows: list[MemberRow]
    employers: dict[str, EmployerRow]
    organizations: dict[str, OrganizationRow]
    total: int | None  # None: not counted in this statement


#: A member's employer and organization, after the member's own columns (_links reads them there).
_LINK_COLUMNS = f", {qualified(_EMPLOYER_COLUMNS, 'e', 'e_')}, {qualified(_ORG_COLUMNS, 'o', 'o_')}"
_LINK_JOINS = (" JOIN members.employers e ON e.id = m.employer_id"
               " JOIN members.organizations o ON o.id = m.organization_id")


async def list_members(pool: asyncpg.Pool, *, viewer: Viewer, where: MemberQuery, limit: int,
                       after_id: str | None, with_links: bool = False, with_total: bool = False) -> MemberPage:
    """One keyset page of visible members ordered by id, in one statement.

    with_links: each member's employer and organization come in the same
    statement (a staff list shows both), not in two more. with_total: the
    total comes along too when the counters can answer it (see count_members),
    on an empty page as well.

    Three statements return the same page; sources/member_page_shape.py
    chooses the cheapest from the size of the subtree the page lies in, which
    every page statement returns for the next page (so choosing costs no
    statement), and from the tree's sizes read at start-up.

    The page size is written into the statement, not passed: with it, the
    statement has one best plan for any values, so the caller may have it
    planned once (a generic plan, blind to a LIMIT parameter, reckoned on a
    tenth of the subtree and hashed every employer and organization: 10 ms
    for a district's page at 1 000 000 members instead of 1.5).
    """
    q = Query()
    scope = page_scope(viewer, where.organization_id)
    total_sql = _counted_total_sql(q, viewer, where) if with_total else None
    size_sql = _visible_subtree_size_sql(q, viewer, where.organization_id) if scope is not None else None
    member_columns = qualified(_MEMBER_COLUMNS, "m")
    shape = member_page_shape.choose(viewer, where.organization_id, limit)
    if shape is PageShape.BY_ORGANIZATION and scope is not None:
        page_sql = _small_subtree_page(q, viewer, where, scope, limit, after_id, member_columns)
    else:
        if shape is PageShape.WALK_HASHED:
            _member_filter(q, where, subtree=False)
            _in_subtrees_hashed(q, viewer, where.organization_id)
        else:
            _member_filter(q, where)
            _visible_orgs(q, viewer, "m.organization_id")
        if after_id is not None:
            q.where(f"m.id > {q.arg(after_id)}")
        page_sql = f"SELECT {member_columns} FROM members.members m {q.where_sql} ORDER BY m.id LIMIT {int(limit)}"
    # One row of counts, joined to the page: an empty page still returns them (its
    # row's member columns are null). Links are joined after the LIMIT: the planner
    # would otherwise join every member of the subtree before keeping the first page.
    counts = ", ".join([f"({total_sql}) AS total"] * (total_sql is not None)
                       + [f"({size_sql}) AS scope_size"] * (size_sql is not None)) or "NULL AS nothing"
    links = (" LEFT JOIN members.employers e ON e.id = m.employer_id"
             " LEFT JOIN members.organizations o ON o.id = m.organization_id") if with_links else ""
    rows = await pool.fetch(f"SELECT m.*{_LINK_COLUMNS if with_links else ''}, n.* FROM (SELECT {counts}) n"
                            f" LEFT JOIN LATERAL ({page_sql}) m ON true{links} ORDER BY m.id", *q.args)
    if size_sql is not None:
        member_page_shape.remember_seen(viewer, where.organization_id, rows[0]["scope_size"])
    total = rows[0]["total"] if total_sql is not None else None
    if rows[0]["id"] is None:
        rows = []  # the counts' row of an empty page
    employers, organizations = _links(rows) if with_links else ({}, {})
    return MemberPage([_member(r) for r in rows], employers, organizations, total)


def _small_subtree_page(q: Query, viewer: Viewer, where: MemberQuery, scope: str, limit: int,
                        after_id: str | None, member_columns: str) -> str:
    """A page of a small subtree: each organization's first members on (organization_id, id), merged.

    The subtree's organizations are one range of the path index (_under).
    """
    _member_filter(q, where, subtree=False)
    if after_id is not None:
        q.where(f"m.id > {q.arg(after_id)}")
    q.where("m.organization_id = so.id")
    scope_arg = q.arg(scope)
    lim = int(limit)
    visible = "" if viewer.sees_all else f" AND so.path LIKE {q.arg(viewer.path_pattern)}"
    return (f"SELECT m.* FROM members.organizations so CROSS JOIN LATERAL"
            f" (SELECT {member_columns} FROM members.members m {q.where_sql} ORDER BY m.id LIMIT {lim}) m"
            f" WHERE {_under('so.path', scope_arg)}{visible} ORDER BY m.id LIMIT {lim}")


def _in_subtrees_hashed(q: Query, viewer: Viewer, organization_id: str | None) -> None:
    """Members `m` of the filter's subtree and of the viewer's, each as a hash of its organizations.

    Written as `(... IN (...)) IS TRUE` so that PostgreSQL keeps it a hashed
    subplan, built once and checked per row walked, instead of joining the
    organizations first and sorting all their members (what it plans for a
    semi-join when it cannot see how many organizations a path matches).
    """
    def hashed(organizations: str) -> None:
        q.where(f"(m.organization_id IN (SELECT id FROM members.organizations WHERE {organizations})) IS TRUE")

    if organization_id is not None:
        hashed(_under("path", q.arg(organization_id)))
    if not viewer.sees_all:
        hashed(_under_path(q, "path", viewer.organization_path))


def _links(rows: Sequence[asyncpg.Record]) -> tuple[dict[str, EmployerRow], dict[str, OrganizationRow]]:
    """The employers and organizations joined to member rows by _LINK_COLUMNS and _LINK_JOINS."""
    employers: dict[str, EmployerRow] = {}
    organizations: dict[str, OrganizationRow] = {}
    employer_at, organization_at = _MEMBER_WIDTH, _MEMBER_WIDTH + _EMPLOYER_WIDTH
    for r in rows:
        if r[employer_at] not in employers:  # a page's members share employers and organizations
            employers[r[employer_at]] = _employer(r, employer_at)
        if r[organization_at] not in organizations:
            organizations[r[organization_at]] = _org(r, organization_at)
    return employers, organizations


async def members_with_links_by_ids(pool: asyncpg.Pool, *, ids: Sequence[str], viewer: Viewer) -> MemberPage:
    """The visible members among `ids`, each with its employer and organization, in one statement (no total)."""
    q = Query()
    q.where(f"m.id = ANY({q.arg(list(ids))}::text[])")
    _visible_orgs(q, viewer, "m.organization_id")
    columns = qualified(_MEMBER_COLUMNS, "m")
    rows = await pool.fetch(f"SELECT {columns}{_LINK_COLUMNS} FROM members.members m{_LINK_JOINS} {q.where_sql}",
                            *q.args)
    employers, organizations = _links(rows)
    return MemberPage([_member(r) for r in rows], employers, organizations, None)


def _counted_total_sql(q: Query, viewer: Viewer, where: MemberQuery) -> str | None:
    """The counters' statement for how many visible members match `where`, if they can answer it."""
    if (where.employer_id, where.name_contains, where.gender, where.employment_type) != (None, None, None, None):
        return None  # a filter the counters know nothing of: count the rows
    return _visible_subtree_size_sql(q, viewer, where.organization_id)


def _visible_subtree_size_sql(q: Query, viewer: Viewer, organization_id: str | None) -> str:
    """The counters' statement for how many members the viewer sees under `organization_id` (None: anywhere).

    Subtrees nest or are apart, so what the viewer sees of the filter's subtree is
    one organization's subtree: the filter's own when it lies inside the viewer's,
    the viewer's when the filter is above it, none when they are apart.
    """
    if organization_id is None:
        if viewer.sees_all:
            return ("SELECT coalesce(sum(c.subtree_members), 0)::bigint FROM members.organization_member_counts c"
                    " JOIN members.organizations o ON o.id = c.organization_id WHERE o.parent_id IS NULL")
        target = q.arg(viewer.organization_id)
    elif viewer.sees_all:
        target = q.arg(organization_id)
    else:
        mine = q.arg(viewer.organization_path)
        target = (f"(SELECT CASE WHEN starts_with(f.path, {mine}) THEN f.id"
                  f" WHEN starts_with({mine}, f.path) THEN {q.arg(viewer.organization_id)} END"
                  f" FROM members.organizations f WHERE f.id = {q.arg(organization_id)})")
    return ("SELECT coalesce((SELECT c.subtree_members FROM members.organization_member_counts c"
            f" WHERE c.organization_id = {target}), 0)::bigint")


async def count_members(pool: asyncpg.Pool, *, viewer: Viewer, where: MemberQuery) -> int:
    """How many visible members match: from the per-organization counters when only the
    organization filters, so a district of 140 000 members costs what one of 14 does."""
    q = Query()
    counted = _counted_total_sql(q, viewer, where)
    if counted is not None:
        return await pool.fetchval(counted, *q.args)
    _member_filter(q, where)
    _visible_orgs(q, viewer, "m.organization_id")
    return await pool.fetchval(f"SELECT count(*) FROM members.members m {q.where_sql}", *q.args)


@dataclass(frozen=True, slots=True)
class RowPage:
    """Rows of one keyset page (up to limit + 1, so the caller sees if there is more) and the total."""

    rows: list
    total: int


async def member_pages_by_organization(pool: asyncpg.Pool, *, keys: Sequence[tuple[str, int, str | None]],
                                       viewer: Viewer, where: MemberQuery) -> list[RowPage]:
    """For each (organization id, limit, after id): a page of its direct members, in one statement."""
    q = Query()
    org_ids = q.arg([k[0] for k in keys])
    limits = q.arg([k[1] for k in keys])
    afters = q.arg([k[2] for k in keys])
    _member_filter(q, where)
    _visible_orgs(q, viewer, "m.organization_id")
    extra = (" AND " + " AND ".join(q.conditions)) if q.conditions else ""
    # Per key: total over all its rows, rank over the rows after its cursor.
    rows = await pool.fetch(
        f"""SELECT * FROM (
              SELECT k.ord, {qualified(_MEMBER_COLUMNS, "m")},
                     count(*) OVER (PARTITION BY k.ord) AS total,
                     sum(CASE WHEN k.after_id IS NULL OR m.id > k.after_id THEN 1 ELSE 0 END)
                         OVER (PARTITION BY k.ord ORDER BY m.id ROWS UNBOUNDED PRECEDING) AS rank,
                     k.lim, (k.after_id IS NULL OR m.id > k.after_id) AS after_cursor
              FROM unnest({org_ids}::text[], {limits}::int[], {afters}::text[]) WITH ORDINALITY
                   AS k(org_id, lim, after_id, ord)
              JOIN members.members m ON m.organization_id = k.org_id{extra}
            ) t WHERE after_cursor AND rank <= lim ORDER BY ord, id""",
        *q.args)
    return _pages(rows, len(keys), lambda r: _member(r, 1))  # after k.ord


def _pages(rows: list[asyncpg.Record], n: int, make) -> list[RowPage]:
    pages: list[list] = [[] for _ in range(n)]
    totals = [0] * n
    for r in rows:
        i = r["ord"] - 1
        pages[i].append(make(r))
        totals[i] = r["total"]
    return [RowPage(p, t) for p, t in zip(pages, totals)]


# --------------------------------------------------------------------------- loaders

class OrganizationByIdLoader(TracedLoader, DataLoader):
    def __init__(self, pool: asyncpg.Pool, viewer: Viewer) -> None:
        super().__init__()
        self.pool, self.viewer = pool, viewer

    async def batch_load_fn(self, keys: list[str]) -> list[OrganizationRow | None]:
        found = {r.id: r for r in await organizations_by_ids(self.pool, ids=keys, viewer=self.viewer)}
        return [found.get(k) for k in keys]


class OrganizationsByParentIdLoader(TracedLoader, DataLoader):
    def __init__(self, pool: asyncpg.Pool, viewer: Viewer, by_id: OrganizationByIdLoader) -> None:
        super().__init__()
        self.pool, self.viewer, self.by_id = pool, viewer, by_id

    async def batch_load_fn(self, keys: list[str]) -> list[list[OrganizationRow]]:
        children: dict[str, list[OrganizationRow]] = {k: [] for k in keys}
        for row in await organizations_by_parent_ids(self.pool, parent_ids=keys, viewer=self.viewer):
            children[row.parent_id].append(row)  # type: ignore[index]
            self.by_id.prime(row.id, row)
        return [children[k] for k in keys]


class EmployerByIdLoader(TracedLoader, DataLoader):
    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__()
        self.pool = pool

    async def batch_load_fn(self, keys: list[str]) -> list[EmployerRow | None]:
        found = {r.id: r for r in await employers_by_ids(self.pool, ids=keys)}
        return [found.get(k) for k in keys]


async def member_counts_by_employer(pool: asyncpg.Pool, *, employer_ids: Sequence[str],
                                    viewer: Viewer) -> dict[str, int]:
    """How many visible members each employer has, in one statement."""
    q = Query()
    q.where(f"m.employer_id = ANY({q.arg(list(employer_ids))}::text[])")
    _visible_orgs(q, viewer, "m.organization_id")
    rows = await pool.fetch(f"SELECT m.employer_id, count(*) AS n FROM members.members m {q.where_sql} "
                            "GROUP BY m.employer_id", *q.args)
    return {r["employer_id"]: r["n"] for r in rows}


class MemberCountByEmployerIdLoader(TracedLoader, DataLoader):
    def __init__(self, pool: asyncpg.Pool, viewer: Viewer) -> None:
        super().__init__()
        self.pool, self.viewer = pool, viewer

    async def batch_load_fn(self, keys: list[str]) -> list[int]:
        counts = await member_counts_by_employer(self.pool, employer_ids=keys, viewer=self.viewer)
        return [counts.get(k, 0) for k in keys]


class MemberByIdLoader(TracedLoader, DataLoader):
    def __init__(self, pool: asyncpg.Pool, viewer: Viewer) -> None:
        super().__init__()
        self.pool, self.viewer = pool, viewer

    async def batch_load_fn(self, keys: list[str]) -> list[MemberRow | None]:
        found = {r.id: r for r in await members_by_ids(self.pool, ids=keys, viewer=self.viewer)}
        return [found.get(k) for k in keys]


class MemberWithLinksByIdLoader(TracedLoader, DataLoader):
    """Members by id, each with its employer and organization joined in (a member page shows both):
    they go to the employer and organization loaders, as if those had loaded them."""

    def __init__(self, pool: asyncpg.Pool, viewer: Viewer, *, employers: DataLoader, organizations: DataLoader,
                 members: DataLoader) -> None:
        super().__init__()
        self.pool, self.viewer = pool, viewer
        self.employers, self.organizations, self.members = employers, organizations, members

    async def batch_load_fn(self, keys: list[str]) -> list[MemberRow | None]:
        page = await members_with_links_by_ids(self.pool, ids=keys, viewer=self.viewer)
        prime_values(self.employers, page.employers)
        prime_values(self.organizations, page.organizations)  # visible: their members are
        found = {r.id: r for r in page.rows}
        prime_values(self.members, found)
        return [found.get(k) for k in keys]


class MembersByOrganizationIdLoader(TracedLoader, DataLoader):
    """Key (organization id, limit, after id) → RowPage of MemberRow; one loader per MemberQuery."""

    def __init__(self, pool: asyncpg.Pool, viewer: Viewer, where: MemberQuery, by_id: MemberByIdLoader) -> None:
        super().__init__()
        self.pool, self.viewer, self.where, self.by_id = pool, viewer, where, by_id

    async def batch_load_fn(self, keys: list[tuple[str, int, str | None]]) -> list[RowPage]:
        pages = await member_pages_by_organization(self.pool, keys=keys, viewer=self.viewer, where=self.where)
        for page in pages:
            for row in page.rows:
                self.by_id.prime(row.id, row)
        return pages
