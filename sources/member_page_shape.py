"""Which statement reads a members page: the cheapest for the subtree the page lies in.

A page under an organization is the first members, in id order, of its
subtree. Three statements return the same page (sources/members.py builds
them). Which costs least depends on how large the subtree is against the
whole membership and on how many organizations it holds. PostgreSQL cannot
weigh that itself: the page statement is planned once for any organization
(sources/database.py), and how many organizations a path prefix matches is
unknown when it plans. So the gateway chooses, in Python, from sizes it
already has: no statement is spent on choosing.

- BY_ORGANIZATION: each organization's first members on (organization_id,
  id), merged. It reads up to a page from every organization of the
  subtree: the shape for a grassroots union, whose members are one in
  hundreds of the city's, so that a walk would pass over nearly all of them.
- WALK_HASHED: members in id order, kept when their organization is in a
  hash of the subtree's organizations, built first from the path index
  (which carries their ids: migrations/members/004). The shape for a district
  at 10 000 members (0.03 to 0.2 ms of the server's CPU, against 0.3 to 1.3
  ms organization by organization), and at 1 000 000 for one of ~2 000
  organizations.
- WALK_PROBED: members in id order, each one's organization looked up as it
  comes. It costs more a row walked than the hash, but nothing before the
  first: the shape for a district of 4 400 organizations at 1 000 000
  members (0.25 ms, against 0.65 hashed).

The costs below count rows a walk passes over, and were measured on the bench
data at 10 000 and at 1 000 000 members (server CPU a page, planned once):
reading a row organization by organization costs about 4 walked rows, putting
an organization in the hash 1, and looking one up for a walked row 7. A walk
is estimated to pass over page × all members ÷ subtree members rows: member
ids are given out in order of joining, not by organization. A wrong estimate
costs time, never rows: every shape returns the same page.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import asyncpg

from sources.viewer import Viewer


class PageShape(enum.Enum):
    BY_ORGANIZATION = "by organization"
    WALK_HASHED = "walk, subtree hashed"
    WALK_PROBED = "walk, organization probed"


#: Relative costs, in rows passed over by a walk (see the module docstring).
ROW_READ_BY_ORGANIZATION = 4
ORGANIZATION_HASHED = 1
ROW_PROBED = 7
#: Without the start-up sizes (the database was not there): subtrees up to
#: this many members are read organization by organization, larger ones probed.
SMALL_SUBTREE = 5_000


@dataclass(frozen=True, slots=True)
class TreeSizes:
    """The organization tree's sizes, read when the gateway starts."""

    members: dict[str, int]  # members in each organization's subtree
    organizations: dict[str, int]  # organizations in each subtree, its own included
    total: int  # every member of every tree

    def estimate(self, organization_id: str) -> tuple[int, int]:
        """(members, organizations) of a subtree; an id unknown at start-up is one made since, or none: empty."""
        return self.members.get(organization_id, 0), self.organizations.get(organization_id, 1)


#: None until read (remember_tree_sizes).
_tree: TreeSizes | None = None
#: How many members the viewer saw under a page's scope when a page of it was
#: last read, per process and per (viewer's organization, filter's organization).
#: Returned by every page statement; a stale one costs time, not rows.
_seen_sizes: dict[tuple[str | None, str | None], int] = {}
_SEEN_SIZES_KEPT = 100_000


async def remember_tree_sizes(pool: asyncpg.Pool) -> int:
    """Read every organization's subtree sizes (one statement, at start-up); how many organizations there are.

    A subtree's organizations are one range of the path index (see
    members._small_subtree_page): about 60 000 index entries at 1 000 000
    members, once.
    """
    global _tree
    rows = await pool.fetch(
        "SELECT o.id, coalesce(c.subtree_members, 0) AS members, o.parent_id IS NULL AS root,"
        " (SELECT count(*) FROM members.organizations s"
        "  WHERE s.path ~>=~ o.path AND s.path ~<~ (left(o.path, -1) || '0')) AS organizations"
        " FROM members.organizations o"
        " LEFT JOIN members.organization_member_counts c ON c.organization_id = o.id")
    _tree = TreeSizes(members={r["id"]: r["members"] for r in rows},
                      organizations={r["id"]: r["organizations"] for r in rows},
                      total=sum(r["members"] for r in rows if r["root"]))
    return len(rows)


def page_scope(viewer: Viewer, organization_id: str | None) -> str | None:
    """The organization whose subtree bounds a members page: the filter's, else the viewer's; None: the city."""
    if organization_id is not None:
        return organization_id
    return None if viewer.sees_all else viewer.organization_id


def _seen_key(viewer: Viewer, organization_id: str | None) -> tuple[str | None, str | None]:
    return None if viewer.sees_all else viewer.organization_id, organization_id


def remember_seen(viewer: Viewer, organization_id: str | None, size: int) -> None:
    """What a page statement returned of its scope's size, for the next page's choice."""
    if len(_seen_sizes) >= _SEEN_SIZES_KEPT:
        _seen_sizes.clear()
    _seen_sizes[_seen_key(viewer, organization_id)] = size


def choose(viewer: Viewer, organization_id: str | None, limit: int) -> PageShape:
    """The cheapest shape for a page of `limit` rows of what the viewer sees under `organization_id`.

    What a viewer sees under a filter lies in both subtrees, so the smaller
    one bounds it; a size returned by an earlier page is exact (apart
    subtrees share nothing, and only a page says so).
    """
    scope = page_scope(viewer, organization_id)
    if scope is None:
        return PageShape.WALK_PROBED  # the whole city: every member is kept, nothing to look up
    seen = _seen_sizes.get(_seen_key(viewer, organization_id))
    tree = _tree
    if tree is None:
        if seen is not None and seen <= SMALL_SUBTREE:
            return PageShape.BY_ORGANIZATION
        return PageShape.WALK_PROBED
    scopes = [tree.estimate(o) for o in (organization_id, None if viewer.sees_all else viewer.organization_id)
              if o is not None]
    members, organizations = min(scopes)
    if seen is not None:
        members = seen
    return cheapest(members=members, organizations=organizations, total=tree.total, limit=limit)


def cheapest(*, members: int, organizations: int, total: int, limit: int) -> PageShape:
    """The shape of least estimated cost for a page of `limit` among `members` of `organizations`, of `total`."""
    walked = limit * max(total, 1) / max(members, 1)  # rows a walk passes over to fill the page
    costs = {
        PageShape.BY_ORGANIZATION: ROW_READ_BY_ORGANIZATION * min(members, organizations * limit),
        PageShape.WALK_HASHED: ORGANIZATION_HASHED * organizations + walked,
        PageShape.WALK_PROBED: ROW_PROBED * walked,
    }
    return min(costs, key=costs.__getitem__)
