"""The gateway is an Apollo Federation v2 subgraph: _service serves @key entities, _entities resolves them."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal

import pytest_asyncio

from tests.gql import ALL_READ, Builder, Gql, builder, client, make_key  # noqa: F401 - fixtures

ENTITIES = {"Organization": "id", "Employer": "id", "Member": "id", "Plan": "code", "Enrollment": "id", "Claim": "id",
            "BargainingContract": "id", "RecruitmentEvent": "id", "JobPosting": "id"}

ENTITY_QUERY = """query($r: [_Any!]!) { _entities(representations: $r) {
    __typename
    ... on Member { id name organization { id } }
    ... on Claim { id status totalPayout lines { amount } }
    ... on BargainingContract { id title organization { id } }
    ... on Plan { code premium }
} }"""


@pytest_asyncio.fixture
async def world(client: Gql, builder: Builder) -> dict:
    await builder.employer("e1", "g1")
    await builder.employer("e2", "g2")
    await builder.member("m1", "g1", "e1")
    await builder.member("m2", "g2", "e2")
    await builder.enrollment("m1")
    await builder.enrollment("m2")
    c1 = await builder.claim("m1", submitted_at=datetime(2026, 5, 1, tzinfo=timezone.utc),
                             lines=[("HCA", "HOSPITAL_ALLOWANCE", Decimal("1250.00"))])
    c2 = await builder.claim("m2", submitted_at=datetime(2026, 5, 2, tzinfo=timezone.utc),
                             lines=[("HCA", "HOSPITAL_ALLOWANCE", Decimal("50.00"))])
    await builder.contract("k1", "d1", "e1")
    await builder.contract("k2", "d2", "e2")
    pool = client.state.databases.members
    return {"c1": str(c1), "c2": str(c2),
            "router": await make_key(pool, org="c", scopes=ALL_READ, name="federation router"),
            "d1": await make_key(pool, org="d1", scopes=ALL_READ),
            "no_introspection": await make_key(pool, org="c", scopes=["members:read", "claims:read"])}


async def test_service_sdl_declares_every_entity_key(client: Gql, world: dict) -> None:
    sdl = (await client.data("{ _service { sdl } }", key=world["router"]))["_service"]["sdl"]
    assert "https://specs.apollo.dev/federation/v2" in sdl
    for name, field in ENTITIES.items():
        assert re.search(rf'type {name} @key\(fields: "{field}"\)', sdl), name


async def test_service_needs_the_introspection_scope(client: Gql, world: dict) -> None:
    body = await client.query("{ _service { sdl } }", key=world["no_introspection"])
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


async def test_entities_resolve_through_the_loaders(client: Gql, world: dict) -> None:
    reps = [{"__typename": "Member", "id": "m1"}, {"__typename": "Claim", "id": world["c1"]},
            {"__typename": "BargainingContract", "id": "k1"}, {"__typename": "Plan", "code": "HCA"},
            {"__typename": "Member", "id": "nobody"}]
    data = await client.data(ENTITY_QUERY, {"r": reps}, key=world["router"])
    assert data["_entities"] == [
        {"__typename": "Member", "id": "m1", "name": "王芳", "organization": {"id": "g1"}},
        {"__typename": "Claim", "id": world["c1"], "status": "APPROVED", "totalPayout": "1250.00",
         "lines": [{"amount": "1250.00"}]},
        {"__typename": "BargainingContract", "id": "k1", "title": "k1 工资集体协议", "organization": {"id": "d1"}},
        {"__typename": "Plan", "code": "HCA", "premium": "120.00"},
        None,
    ]


async def test_entities_apply_the_keys_visibility(client: Gql, world: dict) -> None:
    reps = [{"__typename": "Member", "id": "m1"}, {"__typename": "Member", "id": "m2"},
            {"__typename": "Claim", "id": world["c1"]}, {"__typename": "Claim", "id": world["c2"]},
            {"__typename": "BargainingContract", "id": "k1"}, {"__typename": "BargainingContract", "id": "k2"}]
    data = await client.data(ENTITY_QUERY, {"r": reps}, key=world["d1"])
    assert [e and e["id"] for e in data["_entities"]] == ["m1", None, world["c1"], None, "k1", None]


async def test_entities_check_the_scope_of_each_type(client: Gql, world: dict) -> None:
    reps = [{"__typename": "Member", "id": "m1"}, {"__typename": "BargainingContract", "id": "k1"}]
    body = await client.query(ENTITY_QUERY, {"r": reps}, key=world["no_introspection"])
    assert body["data"]["_entities"][0]["id"] == "m1"
    assert body["data"]["_entities"][1] is None
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [(["_entities", 1], "FORBIDDEN")]
