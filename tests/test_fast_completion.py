"""Compiled completion (schema/fast_completion.py) answers exactly as graphql-core's own.

The same requests go to two /graphql endpoints over one app state: the
served schema, and the same schema with graphql-core completing every
object. Data, errors, paths and masking must be identical, whatever the
query does: aliases, fragments, __typename, masked PII, fields the key may
not read, null links, errors inside lists.
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import httpx
import pytest_asyncio
from starlette.applications import Starlette

from schema import build_schema
from schema.fast_completion import fallbacks
from tests.gql import Builder, Gql, builder, client, make_key  # noqa: F401 - fixtures
from web.graphql_app import graphql_routes
from web.guard import OperationGuard
from web.hygiene import hygiene_middleware

UTC = timezone.utc

QUERIES = [
    # The staff list, with aliases, fragments and __typename at every level.
    """query($d: ID!) { page: members(first: 30, filter: {organizationId: $d}) { totalCount
        edges { cursor node { __typename id ...M who: name nationalId phone gender birthDate joinedOn
          class: id return: __typename None: gender
          boss: employer { id name creditCode industry organization { id } }
          organization { id name level parent { id } children { id } }
          enrollments { id coverageStart coverageEnd premiumPaid status plan { code name premium termMonths } }
          recent: claims(first: 2) { totalCount pageInfo { hasNextPage endCursor }
            edges { node { id kind status rejectionReason totalPayout submittedAt decidedAt paymentRef
              lines { benefit planCode amount note } member { id name } } } } } } } }
      fragment M on Member { employmentType ... on Member { name } }""",
    # Links into scopes the key lacks (FORBIDDEN inside a list), and links that are null.
    """{ contracts(first: 20) { edges { node { id title campaign effectiveTo wageIncreasePercent
          employer { id memberCount organization { id name } } organization { id } } } } }""",
    """{ recruitmentEvents(first: 10) { edges { node { id title format startsAt positionsOffered
          organizer { id } employers { id name } postings { id headcount salaryMin salaryMax employer { id }
          event { id } } } } } }""",
    """{ claims(first: 40) { edges { node { id status totalPayout member { id nationalId }
          lines { amount } } } } }""",
]


@pytest_asyncio.fixture
async def two_endpoints(client: Gql, builder: Builder):
    b = builder
    await b.employer("e1", "g1")
    await b.employer("e2", None)
    for i in range(12):
        member = await b.member(f"m{i:02d}", "g1" if i % 3 else "d1", "e1" if i % 2 else "e2", female=bool(i % 2))
        await b.enrollment(member)
        for j in range(i % 3):
            await b.claim(member, submitted_at=datetime(2026, 4, 1 + i, j, tzinfo=UTC),
                          lines=[("HCA", "MEDICAL", Decimal("100.25")), ("HCA", "HOSPITAL_ALLOWANCE", Decimal(50))])
    await b.contract("k1", "d1", "e1")
    await b.contract("k2", "g1", "e2")
    await b.event("v1", "g1", datetime(2026, 2, 20, 1, tzinfo=UTC), postings=[("p1", "e1", 10), ("p2", "e2", 3)])
    state = client.state
    ordinary = Starlette(routes=graphql_routes(state, build_schema(extensions=[OperationGuard], fast_completion=False)),
                         middleware=hygiene_middleware(state.runtime.settings))
    fast = Starlette(routes=graphql_routes(state, build_schema(extensions=[OperationGuard])),
                     middleware=hygiene_middleware(state.runtime.settings))
    clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") for app in (ordinary, fast)]
    yield state, clients
    for c in clients:
        await c.aclose()


async def _both(clients, key: str, query: str, variables: dict) -> tuple[dict, dict]:
    answers = []
    for c in clients:
        response = await c.post("/graphql", json={"query": query, "variables": variables},
                                headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200, response.text
        body = response.json()
        body.pop("extensions", None)  # the cost budget moves between the two calls
        answers.append(body)
    return answers[0], answers[1]


async def test_same_answers_as_graphql_core(two_endpoints) -> None:
    state, clients = two_endpoints
    pool = state.databases.members
    keys = {
        "everything": await make_key(pool, org="c", scopes=["members:read", "pii:read", "claims:read",
                                                            "contracts:read", "recruitment:read"]),
        "masked, no claims": await make_key(pool, org="c", scopes=["members:read", "contracts:read",
                                                                   "recruitment:read"]),
        "district": await make_key(pool, org="d1", scopes=["members:read", "claims:read", "contracts:read",
                                                           "recruitment:read"]),
        "no members": await make_key(pool, org="c", scopes=["claims:read", "contracts:read", "recruitment:read"]),
    }
    # A key that may read every field: every object of the staff list completes by its plan.
    fallbacks.clear()
    ordinary, fast = await _both(clients, keys["everything"], QUERIES[0], {"d": "c"})
    assert fast == ordinary and not fast.get("errors") and len(fast["data"]["page"]["edges"]) == 12
    assert not fallbacks, dict(fallbacks)
    compared = 0
    for name, key in keys.items():
        for query in QUERIES:
            ordinary, fast = await _both(clients, key, query, {"d": "c"})
            assert fast == ordinary, f"{name}: {query[:60]}"
            compared += 1
    # The comparison covered both data and errors (FORBIDDEN fields inside lists).
    ordinary, _ = await _both(clients, keys["masked, no claims"], QUERIES[0], {"d": "c"})
    assert {e["extensions"]["code"] for e in ordinary["errors"]} == {"FORBIDDEN"}
    ordinary, _ = await _both(clients, keys["district"], QUERIES[3], {})
    members = [e["node"]["member"] for e in ordinary["data"]["claims"]["edges"]]
    assert members and all(m["nationalId"].count("*") == 8 for m in members)
    assert compared == 16
