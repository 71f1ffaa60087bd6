"""A key sees only its organization's subtree, by every path; scopes decide fields and PII masking."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest_asyncio

from tests.gql import ALL_READ, Builder, Gql, builder, client, make_key  # noqa: F401 - fixtures

UTC = timezone.utc


@pytest_asyncio.fixture
async def world(client: Gql, builder: Builder) -> dict:
    """Two districts' worth of rows: d1 (with g1) and d2 (with g2)."""
    b = builder
    await b.employer("e1", "g1")
    await b.employer("e2", "g2")
    await b.member("m1", "g1", "e1", name="王芳")
    await b.member("m2", "g2", "e2", name="李娜")
    await b.member("m3", "d1", "e1", name="张伟", female=False)
    for m in ("m1", "m2", "m3"):
        await b.enrollment(m)
    c1 = await b.claim("m1", submitted_at=datetime(2026, 3, 1, 2, tzinfo=UTC),
                       lines=[("HCA", "MEDICAL", Decimal("500.00"))])
    c2 = await b.claim("m2", submitted_at=datetime(2026, 3, 2, 2, tzinfo=UTC),
                       lines=[("HCA", "MEDICAL", Decimal("700.00"))])
    await b.contract("k1", "d1", "e1")
    await b.contract("k2", "d2", "e2")
    await b.event("v1", "g1", datetime(2026, 2, 20, 1, tzinfo=UTC), postings=[("p1", "e1", 10)])
    await b.event("v2", "d2", datetime(2026, 2, 21, 1, tzinfo=UTC), postings=[("p2", "e2", 7)])
    pool = client.state.databases.members
    return {
        "c1": str(c1), "c2": str(c2),
        "d1": await make_key(pool, org="d1", scopes=ALL_READ),
        "city": await make_key(pool, org="c", scopes=ALL_READ),
        "masked": await make_key(pool, org="c", scopes=["members:read"]),
    }


async def test_lists_show_only_the_district(client: Gql, world: dict) -> None:
    data = await client.data("""{
        members { totalCount edges { node { id } } }
        claims { totalCount edges { node { id } } }
        contracts { totalCount edges { node { id } } }
        recruitmentEvents { totalCount edges { node { id positionsOffered } } }
    }""", key=world["d1"])
    assert [e["node"]["id"] for e in data["members"]["edges"]] == ["m1", "m3"]
    assert data["members"]["totalCount"] == 2
    assert [e["node"]["id"] for e in data["claims"]["edges"]] == [world["c1"]]
    assert data["claims"]["totalCount"] == 1
    assert [e["node"]["id"] for e in data["contracts"]["edges"]] == ["k1"]
    assert data["contracts"]["totalCount"] == 1
    assert data["recruitmentEvents"]["edges"] == [{"node": {"id": "v1", "positionsOffered": 10}}]
    assert data["recruitmentEvents"]["totalCount"] == 1


async def test_the_city_key_sees_everything(client: Gql, world: dict) -> None:
    data = await client.data("{ members { totalCount } claims { totalCount } contracts { totalCount } "
                             "recruitmentEvents { totalCount } }", key=world["city"])
    assert data == {"members": {"totalCount": 3}, "claims": {"totalCount": 2}, "contracts": {"totalCount": 2},
                    "recruitmentEvents": {"totalCount": 2}}


async def test_an_out_of_scope_id_answers_like_a_missing_one(client: Gql, world: dict) -> None:
    query = """query($m: ID!, $c: ID!, $k: ID!, $o: ID!) {
        member(id: $m) { id } claim(id: $c) { id } contract(id: $k) { id } organization(id: $o) { id } }"""
    hidden = await client.query(query, {"m": "m2", "c": world["c2"], "k": "k2", "o": "d2"}, key=world["d1"])
    missing = await client.query(query, {"m": "nobody", "c": "999999", "k": "none", "o": "none"}, key=world["d1"])
    assert "errors" not in hidden and "errors" not in missing
    assert hidden["data"] == missing["data"] == {"member": None, "claim": None, "contract": None, "organization": None}
    visible = await client.data(query, {"m": "m1", "c": world["c1"], "k": "k1", "o": "g1"}, key=world["d1"])
    assert visible == {"member": {"id": "m1"}, "claim": {"id": world["c1"]}, "contract": {"id": "k1"},
                       "organization": {"id": "g1"}}


async def test_nested_paths_stay_inside_the_subtree(client: Gql, world: dict) -> None:
    data = await client.data("""{
        organization(id: "d1") { parent { id } children { id members { edges { node { id } } } } }
        viewer { organization { id } }
        member(id: "m1") { claims { totalCount edges { node { id member { id } } } } }
        contract(id: "k1") { organization { id } employer { id organization { id } } }
    }""", key=world["d1"])
    assert data["organization"] == {"parent": None, "children": [{"id": "g1", "members": {"edges": [{"node": {"id": "m1"}}]}}]}
    assert data["viewer"] == {"organization": {"id": "d1"}}
    assert data["member"]["claims"]["totalCount"] == 1
    assert data["contract"] == {"organization": {"id": "d1"}, "employer": {"id": "e1", "organization": {"id": "g1"}}}
    events = await client.data("""{ recruitmentEvents { edges { node { organizer { id } employers { id }
        postings { id headcount event { id } employer { id } } } } } }""", key=world["d1"])
    assert events["recruitmentEvents"]["edges"] == [{"node": {
        "organizer": {"id": "g1"}, "employers": [{"id": "e1"}],
        "postings": [{"id": "p1", "headcount": 10, "event": {"id": "v1"}, "employer": {"id": "e1"}}]}}]
    # Members filtered by another district's organization: nothing, not an error.
    other = await client.data('{ members(filter: {organizationId: "g2"}) { totalCount edges { node { id } } } '
                              'claims(filter: {memberId: "m2"}) { totalCount } }', key=world["d1"])
    assert other == {"members": {"totalCount": 0, "edges": []}, "claims": {"totalCount": 0}}


async def test_entities_out_of_scope_are_null(client: Gql, world: dict) -> None:
    query = """query($r: [_Any!]!) { _entities(representations: $r) {
        ... on Member { id } ... on Claim { id } ... on BargainingContract { id } ... on RecruitmentEvent { id }
        ... on JobPosting { id } ... on Organization { id } ... on Employer { id } } }"""
    reps = [{"__typename": "Member", "id": "m2"}, {"__typename": "Claim", "id": world["c2"]},
            {"__typename": "BargainingContract", "id": "k2"}, {"__typename": "RecruitmentEvent", "id": "v2"},
            {"__typename": "JobPosting", "id": "p2"}, {"__typename": "Organization", "id": "d2"},
            {"__typename": "Employer", "id": "e2"}]
    assert await client.data(query, {"r": reps}, key=world["d1"]) == {"_entities": [None] * len(reps)}


async def test_claim_stats_count_only_the_district(client: Gql, world: dict) -> None:
    query = '{ claimStats(from: "2026-01-01", to: "2026-12-31", groupBy: [ORGANIZATION]) { organization { id } claims payout } }'
    assert (await client.data(query, key=world["d1"]))["claimStats"] == [
        {"organization": {"id": "d1"}, "claims": 1, "payout": "500.00"}]
    city = (await client.data(query, key=world["city"]))["claimStats"]
    assert sorted((r["organization"]["id"], r["payout"]) for r in city) == [("d1", "500.00"), ("d2", "700.00")]


async def test_pii_is_masked_without_pii_read(client: Gql, world: dict) -> None:
    query = '{ member(id: "m1") { nationalId phone } }'
    full = (await client.data(query, key=world["city"]))["member"]
    masked = (await client.data(query, key=world["masked"]))["member"]
    assert len(full["nationalId"]) == 18 and "*" not in full["nationalId"]
    assert masked["nationalId"] == full["nationalId"][:6] + "********" + full["nationalId"][-4:]
    assert full["phone"] == "13912345678"
    assert masked["phone"] == "139****5678"


async def test_a_missing_scope_is_forbidden_on_that_field(client: Gql, world: dict) -> None:
    body = await client.query('{ member(id: "m1") { id claims { totalCount } } claim(id: "1") { id } }',
                              key=world["masked"])
    errors = {tuple(e["path"]): e["extensions"]["code"] for e in body["errors"]}
    assert errors == {("member", "claims"): "FORBIDDEN", ("claim",): "FORBIDDEN"}
    assert body["data"] == {"member": None, "claim": None}


async def test_introspection_needs_its_scope(client: Gql, world: dict) -> None:
    body = await client.query("{ __schema { queryType { name } } }", key=world["masked"])
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await client.query("query { ...F } fragment F on Query { __type(name: \"Member\") { name } }",
                              key=world["masked"])
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    data = await client.data("{ __schema { queryType { name } } __typename }", key=world["city"])
    assert data == {"__schema": {"queryType": {"name": "Query"}}, "__typename": "Query"}


async def test_an_organization_filter_covers_its_subtree(client: Gql, world: dict) -> None:
    """organizationId means the organization and everything under it (a district's staff list)."""
    query = """query($o: ID!) {
        members(filter: {organizationId: $o}) { totalCount edges { node { id } } }
        claims(filter: {organizationId: $o}) { totalCount edges { node { id } } }
        contracts(filter: {organizationId: $o}) { totalCount edges { node { id } } } }"""
    district = await client.data(query, {"o": "d1"}, key=world["city"])
    assert [e["node"]["id"] for e in district["members"]["edges"]] == ["m1", "m3"]  # g1's and d1's own
    assert [e["node"]["id"] for e in district["claims"]["edges"]] == [world["c1"]]
    assert [e["node"]["id"] for e in district["contracts"]["edges"]] == ["k1"]
    grassroots = await client.data(query, {"o": "g1"}, key=world["city"])
    assert [e["node"]["id"] for e in grassroots["members"]["edges"]] == ["m1"]
    assert grassroots["contracts"]["totalCount"] == 0  # k1 is filed at d1, above g1
    # Another district's subtree through a district key: nothing, exactly as for an unknown id.
    foreign = await client.data(query, {"o": "d2"}, key=world["d1"])
    unknown = await client.data(query, {"o": "no-such-org"}, key=world["d1"])
    assert foreign == unknown == {"members": {"totalCount": 0, "edges": []}, "claims": {"totalCount": 0, "edges": []},
                                  "contracts": {"totalCount": 0, "edges": []}}
