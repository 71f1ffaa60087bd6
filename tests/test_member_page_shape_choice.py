"""The members page's shape, chosen from sizes alone: the cases measured on the bench data (sources/member_page_shape.py)."""
from __future__ import annotations

import pytest

from sources import member_page_shape as shapes
from sources.member_page_shape import PageShape, TreeSizes, cheapest
from sources.viewer import Viewer

PAGE = 51  # a staff list of 50, and one to tell whether there is more


@pytest.mark.parametrize(("members", "organizations", "total", "expected"), [
    # 10 000 members: every district is walked with its organizations hashed, the smallest (423
    # members in 14 organizations: 0.2 ms walked, 0.27 organization by organization) included.
    (3_888, 55, 10_000, PageShape.WALK_HASHED),
    (423, 14, 10_000, PageShape.WALK_HASHED),
    # A grassroots union: a walk would pass over ~13 000 rows to find 40 members.
    (40, 1, 10_000, PageShape.BY_ORGANIZATION),
    # 1 000 000 members: a district of 4 443 organizations costs more to hash than its walk's probes...
    (245_293, 4_443, 1_000_000, PageShape.WALK_PROBED),
    # ...and one of 2 034 less.
    (100_406, 2_034, 1_000_000, PageShape.WALK_HASHED),
    (4_000, 1, 1_000_000, PageShape.BY_ORGANIZATION),
    (0, 1, 1_000_000, PageShape.BY_ORGANIZATION),  # nothing seen: nothing to walk
    (10_000, 219, 10_000, PageShape.WALK_HASHED),  # the whole city as a subtree: the walk keeps every row
])
def test_the_cheapest_shape_for_each_measured_case(members, organizations, total, expected) -> None:
    assert cheapest(members=members, organizations=organizations, total=total, limit=PAGE) is expected


def _viewer(organization_id: str, path: str) -> Viewer:
    return Viewer(key_id="k", name="test", scopes=frozenset({"members:read"}), organization_id=organization_id,
                  organization_path=path)


CITY = _viewer("C", "/C/")
DISTRICT = _viewer("D", "/C/D/")


@pytest.fixture
def tree(monkeypatch):
    monkeypatch.setattr(shapes, "_seen_sizes", {})
    monkeypatch.setattr(shapes, "_tree", TreeSizes(members={"C": 10_000, "D": 3_888, "G": 40},
                                                   organizations={"C": 219, "D": 55, "G": 1}, total=10_000))


def test_a_page_is_bounded_by_the_smaller_of_the_filter_and_the_viewer(tree) -> None:
    assert shapes.choose(CITY, "D", PAGE) is PageShape.WALK_HASHED
    assert shapes.choose(DISTRICT, None, PAGE) is PageShape.WALK_HASHED
    assert shapes.choose(DISTRICT, "G", PAGE) is PageShape.BY_ORGANIZATION
    assert shapes.choose(_viewer("G", "/C/D/G/"), "D", PAGE) is PageShape.BY_ORGANIZATION
    assert shapes.choose(CITY, "NEW", PAGE) is PageShape.BY_ORGANIZATION  # made since start-up: small
    assert shapes.choose(CITY, None, PAGE) is PageShape.WALK_PROBED  # the city: no subtree to keep to


def test_a_size_a_page_returned_wins_over_the_start_up_estimate(tree) -> None:
    shapes.remember_seen(CITY, "D", 30)  # the district has lost its members since start-up
    assert shapes.choose(CITY, "D", PAGE) is PageShape.BY_ORGANIZATION
    shapes.remember_seen(CITY, "G", 9_000)  # the union has grown since start-up
    assert shapes.choose(CITY, "G", PAGE) is PageShape.WALK_HASHED


def test_without_start_up_sizes_the_seen_size_alone_chooses(monkeypatch) -> None:
    monkeypatch.setattr(shapes, "_seen_sizes", {})
    monkeypatch.setattr(shapes, "_tree", None)
    assert shapes.choose(CITY, "D", PAGE) is PageShape.WALK_PROBED  # nothing known: what the planner does
    shapes.remember_seen(CITY, "D", 3_888)
    assert shapes.choose(CITY, "D", PAGE) is PageShape.BY_ORGANIZATION
    shapes.remember_seen(CITY, "D", shapes.SMALL_SUBTREE + 1)
    assert shapes.choose(CITY, "D", PAGE) is PageShape.WALK_PROBED
