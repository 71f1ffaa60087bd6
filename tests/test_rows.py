"""Rows are built from record slices: each statement's columns must be its row class's fields, at the right place.

sources/rows.py checks every SELECT list against its class at import; the
statements then place those lists after other columns (a page's k.ord, a
claim's lines, a member's counts). Here each reader's rows must equal rows
read by column name from the same tables, so a list or an offset out of step
fails.
"""
from __future__ import annotations

from dataclasses import fields
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from sources import claims, members
from sources.rows import row_class, select_list
from sources.viewer import Viewer
from tests.gql import Builder, builder  # noqa: F401 - fixture

START = datetime(2026, 3, 1, tzinfo=timezone.utc)


@row_class
class Pair:
    first: int
    second: str


def test_a_list_naming_the_fields_in_order_passes() -> None:
    columns = "p.first, CASE WHEN x THEN 'a' ELSE coalesce(y, 'b') END AS second"
    assert select_list(Pair, columns) == columns


@pytest.mark.parametrize("columns", ["second, first", "first", "first, second, third", "first, upper(second)"])
def test_a_list_out_of_step_with_its_class_is_an_error(columns: str) -> None:
    with pytest.raises(TypeError, match="Pair"):
        select_list(Pair, columns)


def _by_name(cls: type, record: Any) -> Any:
    return cls(**{f.name: record[f.name] for f in fields(cls)})


def _viewer(org: str, path: str) -> Viewer:
    return Viewer(key_id="k", name="test", scopes=frozenset({"members:read", "claims:read"}), organization_id=org,
                  organization_path=path)


async def test_every_reader_builds_the_rows_it_reads(databases: Any, builder: Builder) -> None:  # noqa: F811
    await builder.employer("e1", "g1")
    await builder.employer("e2", None)
    ids = [await builder.member(f"m{i}", ["g1", "d1", "g2"][i % 3], ["e1", "e2"][i % 2], name=f"会员{i}",
                                phone=None if i % 2 else "13912345678") for i in range(6)]
    for i, member in enumerate(ids):
        await builder.enrollment(member)
        for j in range(i % 3):
            lines = [("HCA", "MEDICAL", Decimal("10.50") * (j + 1)), ("HCA", "HOSPITAL_ALLOWANCE", Decimal(j + 1))]
            await builder.claim(member, submitted_at=START + timedelta(days=i, hours=j),
                                lines=[] if (i, j) == (5, 1) else lines)  # one claim without lines
    city, district = _viewer("c", "/c/"), _viewer("d1", "/c/d1/")
    m, c = databases.members, databases.claims
    want_members = {r["id"]: _by_name(members.MemberRow, r) for r in await m.fetch("SELECT * FROM members.members")}
    want_employers = {r["id"]: _by_name(members.EmployerRow, r) for r in await m.fetch("SELECT * FROM members.employers")}
    want_orgs = {r["id"]: _by_name(members.OrganizationRow, r)
                 for r in await m.fetch("SELECT * FROM members.organizations")}
    want_claims = {r["id"]: _by_name(claims.ClaimRow, r) for r in await c.fetch("SELECT * FROM claims.claims")}
    want_lines = {(r["claim_id"], r["line_no"]): _by_name(claims.ClaimLineRow, r)
                  for r in await c.fetch("SELECT * FROM claims.claim_lines")}
    want_enrollments = {r["id"]: _by_name(claims.EnrollmentRow, r) for r in await c.fetch(
        "SELECT *, CASE WHEN cancelled THEN 'CANCELLED' WHEN coverage_end < (now() AT TIME ZONE 'Asia/Shanghai')::date"
        " THEN 'EXPIRED' ELSE 'ACTIVE' END AS status FROM claims.enrollments")}
    assert len(want_claims) == 6 and len(want_lines) == 10

    def same_members(got: list[members.MemberRow], n: int) -> None:
        assert len(got) == n and got == [want_members[r.id] for r in got]

    # The members source: both shapes of a page (a subtree's and everyone's), with links and counts.
    for viewer, where, n in [(city, members.MemberQuery(organization_id="d1"), 4),
                             (city, members.MemberQuery(), 6), (district, members.MemberQuery(), 4)]:
        page = await members.list_members(m, viewer=viewer, where=where, limit=10, after_id=None,
                                          with_links=True, with_total=True)
        same_members(page.rows, n)
        assert page.total == n
        assert page.employers == {k: want_employers[k] for k in page.employers} and len(page.employers) == 2
        assert page.organizations == {k: want_orgs[k] for k in page.organizations}
        assert set(page.organizations) == {r.organization_id for r in page.rows}
    linked = await members.members_with_links_by_ids(m, ids=ids, viewer=district)
    same_members(linked.rows, 4)
    assert linked.employers == {k: want_employers[k] for k in ("e1", "e2")}
    same_members(await members.members_by_ids(m, ids=ids, viewer=city), 6)
    pages = await members.member_pages_by_organization(m, keys=[("g1", 5, None), ("d1", 1, None)], viewer=city,
                                                       where=members.MemberQuery())
    assert [len(p.rows) for p in pages] == [2, 1]
    same_members(pages[0].rows + pages[1].rows, 3)
    assert await members.organizations_by_ids(m, ids=["g1"], viewer=city) == [want_orgs["g1"]]
    assert await members.employers_by_ids(m, ids=["e2"]) == [want_employers["e2"]]

    # The claims source: enrolments, claims by id and by page, and pages with their lines.
    got, _ = await claims.enrollments_by_member_ids(c, member_ids=ids, visible=None)
    assert len(got) == 6 and got == [want_enrollments[r.id] for r in got]
    assert await claims.enrollments_by_ids(c, ids=[got[0].id], visible=None) == [got[0]]
    by_id = await claims.claims_by_ids(c, ids=list(want_claims), visible=None)
    assert sorted(by_id, key=lambda r: r.id) == [want_claims[k] for k in sorted(want_claims)]
    listed = await claims.list_claims(c, visible=None, where=claims.ClaimQuery(), limit=10, before_id=None)
    assert listed == [want_claims[k] for k in sorted(want_claims, reverse=True)]
    keys = [(member, 3, None) for member in ids]
    plain = await claims.claim_pages_by_member(c, keys=keys, visible=None)
    found = await claims.member_claims(c, keys=keys, visible=None, lines=True, enrollments=False)
    joined, lines = found.pages, found.lines
    assert found.enrollments is None
    assert [p.rows for p in plain] == [p.rows for p in joined]
    assert [r for p in joined for r in p.rows] == sorted(want_claims.values(), key=lambda r: (r.member_id, -r.id))
    assert lines == {k: [want_lines[(k, n)] for n in (1, 2) if (k, n) in want_lines] for k in want_claims}
    assert sorted(len(v) for v in lines.values()) == [0, 2, 2, 2, 2, 2]
    by_member = {m: sorted((r for r in want_enrollments.values() if r.member_id == m),
                           key=lambda r: (r.coverage_start, r.id)) for m in ids}
    for with_lines in (True, False):
        found = await claims.member_claims(c, keys=keys, visible=None, lines=with_lines, enrollments=True)
        assert [p.rows for p in found.pages] == [p.rows for p in plain]
        assert found.lines == (lines if with_lines else None)
        assert found.enrollments == by_member and found.schedule_token is not None
    assert await claims.lines_by_claim_ids(c, claim_ids=list(want_claims)) == sorted(want_lines.values(),
                                                                                    key=lambda r: (r.claim_id, r.line_no))
