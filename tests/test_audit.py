"""The audit trail: unmasked PII reads and mutations recorded (ids only), append-only, readable with audit:read."""
from __future__ import annotations

import asyncpg
import pytest

from tests.gql import builder  # noqa: F401 - fixture
from tests.safety import READ_SCOPES, codes, key_with, post, served

TRAIL = """query Trail($kind: AuditKind) { auditTrail(first: 10, kind: $kind) { totalCount
  edges { node { keyId organizationId operationName kind entityType entityIds fields at } } } }"""


async def trail(client, key: str, state, kind: str | None = None) -> dict:
    await state.extras["safeguards"].audit.flush()
    response = await post(client, key, {"query": TRAIL, "variables": {"kind": kind}})
    assert "errors" not in response.json(), response.text
    return response.json()["data"]["auditTrail"]


async def test_unmasked_pii_reads_are_recorded_once_per_request_without_values(
        settings, urls, builder, databases, database_url):  # noqa: F811
    await builder.employer("e1", "g1")
    await builder.employer("e2", "g2")
    national_ids = []
    for mid, org, employer in [("m1", "g1", "e1"), ("m2", "g1", "e1"), ("m3", "g2", "e2")]:
        await builder.member(mid, org, employer)
    for row in await databases.members.fetch("SELECT national_id FROM members.members"):
        national_ids.append(row["national_id"])
    reader = await key_with(databases.members, scopes=READ_SCOPES + ["pii:read"])
    masked_reader = await key_with(databases.members, scopes=READ_SCOPES)
    city_admin = await key_with(databases.members, scopes=["audit:read"])
    district_admin = await key_with(databases.members, org="d2", scopes=["audit:read"])
    async with served(settings, urls) as (client, state):
        query = "query People { members(first: 10) { edges { node { id nationalId phone name } } } }"
        assert len((await post(client, reader, {"query": query})).json()["data"]["members"]["edges"]) == 3
        await post(client, masked_reader, {"query": query})  # masked: nothing to audit
        await post(client, reader, {"query": "{ members(first: 10) { totalCount } }"})  # no PII: nothing either
        found = await trail(client, city_admin, state)
        assert found["totalCount"] == 1
        [event] = [edge["node"] for edge in found["edges"]]
        assert event["kind"] == "PII_READ" and event["entityType"] == "Member"
        assert event["operationName"] == "People"
        assert sorted(event["entityIds"]) == ["m1", "m2", "m3"]
        assert sorted(event["fields"]) == ["nationalId", "phone"]
        assert event["keyId"] == "key_" + reader.split("_")[1]
        # A district's admin sees the trail of keys under its district only.
        assert (await trail(client, district_admin, state))["totalCount"] == 0
        # Without audit:read the field is forbidden.
        assert codes(await post(client, reader, {"query": TRAIL})) == ["FORBIDDEN"]
    conn = await asyncpg.connect(database_url)
    try:
        stored = await conn.fetchval("SELECT string_agg(t::text, ' ') FROM gateway.audit_events t")
        assert not any(national_id in stored for national_id in national_ids)
        assert "13912345678" not in stored
    finally:
        await conn.close()


async def test_the_trail_is_append_only(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            """INSERT INTO gateway.audit_events (at, key_id, organization_id, organization_path, operation_name, kind,
                                                 entity_type, entity_ids, fields)
               VALUES (now(), 'key_x', 'c', '/c/', NULL, 'MUTATION', 'reviewClaim', '{1}', '{reviewClaim}')""")
        for statement in ["UPDATE gateway.audit_events SET key_id = 'key_y'", "DELETE FROM gateway.audit_events",
                          "TRUNCATE gateway.audit_events"]:
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement)
        assert await conn.fetchval("SELECT key_id FROM gateway.audit_events") == "key_x"
    finally:
        await conn.close()


async def test_mutations_are_recorded_with_their_ids(settings, urls, builder, databases):  # noqa: F811
    reviewer = await key_with(databases.members, scopes=READ_SCOPES + ["claims:review"])
    admin = await key_with(databases.members, scopes=["audit:read"])
    async with served(settings, urls) as (client, state):
        mutation = """mutation Review($input: ReviewClaimInput!) { reviewClaim(input: $input) { id status } }"""
        response = await post(client, reviewer, {"query": mutation,
                                                 "variables": {"input": {"claimId": "999999", "approve": True}}})
        if any("Cannot query field 'reviewClaim'" in e["message"] or "Unknown type" in e["message"]
               for e in response.json().get("errors", [])):
            pytest.skip("the schema has no mutations yet")
        found = await trail(client, admin, state, kind="MUTATION")
        [event] = [edge["node"] for edge in found["edges"]]
        assert (event["entityType"], event["operationName"], event["entityIds"]) == ("reviewClaim", "Review", ["999999"])
