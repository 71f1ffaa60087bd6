"""Keyset pagination: every row exactly once, stable under inserts, `first` capped, bad cursors refused."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import pytest_asyncio

from tests.gql import Builder, Gql, builder, client, make_key  # noqa: F401 - fixtures

UTC = timezone.utc
START = datetime(2026, 4, 1, tzinfo=UTC)


@pytest_asyncio.fixture
async def rows(client: Gql, builder: Builder) -> dict:
    await builder.employer("e1", "g1")
    for i in range(0, 46, 2):  # even ids, so later inserts can land between them
        await builder.member(f"m{i:03d}", "g1", "e1")
    claims = [await builder.claim("m000", submitted_at=START + timedelta(hours=i)) for i in range(17)]
    for i in range(12):
        # Three events share each start time: the id breaks the tie.
        await builder.event(f"v{i:02d}", "g1", START + timedelta(days=i // 3))
    key = await make_key(client.state.databases.members, org="c",
                         scopes=["members:read", "claims:read", "recruitment:read"])
    return {"key": key, "claims": claims}


async def _walk(client: Gql, key: str, field: str, first: int, *, args: str = "",
                between_pages=None) -> tuple[list[str], list[int]]:
    seen: list[str] = []
    totals: list[int] = []
    after = None
    while True:
        data = await client.data(
            f"query($after: String) {{ {field}(first: {first}, after: $after{args}) "
            "{ totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id } } } }",
            {"after": after}, key=key)
        page = data[field]
        seen += [e["node"]["id"] for e in page["edges"]]
        totals.append(page["totalCount"])
        if page["edges"]:
            assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        if not page["pageInfo"]["hasNextPage"]:
            return seen, totals
        after = page["pageInfo"]["endCursor"]
        if between_pages is not None:
            await between_pages(len(seen))


async def test_walking_members_returns_each_once_in_id_order(client: Gql, rows: dict) -> None:
    seen, totals = await _walk(client, rows["key"], "members", 5)
    assert seen == [f"m{i:03d}" for i in range(0, 46, 2)]
    assert set(totals) == {23}


async def test_walking_claims_is_newest_first(client: Gql, rows: dict) -> None:
    seen, _ = await _walk(client, rows["key"], "claims", 4)
    assert seen == [str(c) for c in reversed(rows["claims"])]


async def test_walking_events_breaks_start_time_ties_by_id(client: Gql, rows: dict) -> None:
    seen, _ = await _walk(client, rows["key"], "recruitmentEvents", 5)
    assert seen == [f"v{i:02d}" for i in range(12)]


async def test_inserts_between_pages_neither_repeat_nor_skip_rows(client: Gql, builder: Builder, rows: dict) -> None:
    inserted: list[str] = []

    async def insert(seen_so_far: int) -> None:
        # One row before the cursor (not shown: already passed), one after it (shown once).
        n = len(inserted)
        for mid in (f"m{seen_so_far * 2 - 3:03d}", f"m{100 + n:03d}"):
            await builder.member(mid, "g1", "e1")
            inserted.append(mid)

    seen, _ = await _walk(client, rows["key"], "members", 5, between_pages=insert)
    original = [f"m{i:03d}" for i in range(0, 46, 2)]
    assert len(seen) == len(set(seen))
    assert [m for m in seen if m in original] == original
    assert all(m in seen for m in inserted if m >= "m100")
    assert seen == sorted(seen)

    claims_inserted: list[int] = []

    async def new_claim(_: int) -> None:
        claims_inserted.append(await builder.claim("m000", submitted_at=START + timedelta(days=30)))

    seen_claims, _ = await _walk(client, rows["key"], "claims", 4, between_pages=new_claim)
    assert seen_claims == [str(c) for c in reversed(rows["claims"])]  # newer rows sit before the cursor


async def test_nested_member_claims_paginate_too(client: Gql, rows: dict) -> None:
    after, seen = None, []
    while True:
        data = await client.data(
            'query($after: String) { member(id: "m000") { claims(first: 6, after: $after) '
            "{ totalCount pageInfo { hasNextPage endCursor } edges { node { id } } } } }", {"after": after},
            key=rows["key"])
        page = data["member"]["claims"]
        assert page["totalCount"] == 17
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [str(c) for c in reversed(rows["claims"])]


@pytest.mark.parametrize("args, says", [
    ("first: 101", "at most 100"),
    ("first: -1", "negative"),
    ('after: "not a cursor"', "cursor"),
    ('after: "WyJjbGFpbSIsMV0"', "cursor"),  # a claims cursor handed to members
])
async def test_bad_page_arguments_are_bad_user_input(client: Gql, rows: dict, args: str, says: str) -> None:
    body = await client.query(f"{{ members({args}) {{ totalCount }} }}", key=rows["key"])
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert says in error["message"]


async def test_first_zero_and_the_cap_itself_are_fine(client: Gql, rows: dict) -> None:
    data = await client.data("{ members(first: 0) { totalCount edges { cursor } pageInfo { hasNextPage endCursor } } "
                             "all: members(first: 100) { edges { cursor } pageInfo { hasNextPage } } }", key=rows["key"])
    assert data["members"] == {"totalCount": 23, "edges": [], "pageInfo": {"hasNextPage": True, "endCursor": None}}
    assert len(data["all"]["edges"]) == 23 and data["all"]["pageInfo"]["hasNextPage"] is False
