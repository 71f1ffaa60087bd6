"""Hostile requests over a real socket: each gets its code, and the gateway still serves a normal query after."""
from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest
import pytest_asyncio

from tests.gql import builder  # noqa: F401 - fixture
from tests.safety import READ_SCOPES, codes, key_with, post, served, still_serves

SQL = "'; DROP TABLE members.members; --"


@pytest_asyncio.fixture
async def gateway(settings, urls, builder, databases):  # noqa: F811
    """(client, state, key): the app with a small data set and a CITY key with every read scope."""
    await builder.employer("e1", "g1")
    await builder.member("m1", "g1", "e1", name="王芳")
    key = await key_with(databases.members, scopes=READ_SCOPES + ["pii:read"])
    async with served(settings, urls) as (client, state):
        yield client, state, key


def limit_error(response) -> dict:
    assert response.status_code == 200, response.text
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX", error
    return error["extensions"]


async def test_ten_thousand_levels_of_nesting(gateway):
    client, _, key = gateway
    query = "{" + "a {" * 10_000 + "b" + "}" * 10_001
    extensions = limit_error(await post(client, key, {"query": query}))
    assert extensions["limit"] == "maxDepth" and extensions["maximum"] == 15 and extensions["measured"] > 10_000, extensions
    await still_serves(client, key)


async def test_ten_thousand_aliases(gateway):
    client, _, key = gateway
    query = "{ " + " ".join(f"a{i}: __typename" for i in range(10_000)) + " }"
    extensions = limit_error(await post(client, key, {"query": query}))
    assert extensions["limit"] in {"maxDocumentBytes", "maxTokens", "maxAliases"}
    assert extensions["measured"] > extensions["maximum"]
    # Within size and tokens, the alias limit itself.
    few = "{ " + " ".join(f"a{i}: viewer {{ keyId }}" for i in range(40)) + " }"
    assert limit_error(await post(client, key, {"query": few}))["limit"] == "maxAliases"
    await still_serves(client, key)


async def test_five_megabyte_document(gateway):
    client, _, key = gateway
    query = "{ viewer { keyId } }" + " " * (5 * 1024 * 1024)
    response = await post(client, key, {"query": query})
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"] == {
        "code": "BAD_USER_INPUT", "limit": "maxBodyBytes", "maximum": 1_048_576}
    await still_serves(client, key)


async def test_document_over_the_byte_limit_but_under_the_body_cap(gateway):
    client, _, key = gateway
    query = "{ viewer { keyId } }" + "#" * 200_000
    extensions = limit_error(await post(client, key, {"query": query}))
    assert extensions["limit"] == "maxDocumentBytes" and extensions["measured"] == len(query)
    await still_serves(client, key)


async def test_deeply_nested_fragment_cycle(gateway):
    client, _, key = gateway
    fragments = " ".join(f"fragment F{i} on Query {{ ...F{(i + 1) % 300} }}" for i in range(300))
    fragments += " fragment V on Query { viewer { keyId } }"
    response = await post(client, key, {"query": "{ ...F0 ...V } " + fragments})
    assert response.status_code == 200
    assert set(codes(response)) == {"BAD_USER_INPUT"}
    # graphql-core's cycle rule rejects it (on a cycle this long it gives up with "Validation aborted.").
    assert response.json()["data"] is None
    await still_serves(client, key)


async def test_first_100_nested_five_levels(gateway, databases):
    client, _, _ = gateway
    # Deep enough to pass the depth limit: the cost limit is what stops it.
    key = await key_with(databases.members, max_depth=30)
    query = "{ members(first: 100) { edges { node { " + "claims(first: 100) { edges { node { member { " * 4 + "id"
    query += " }" * (query.count("{") - query.count("}"))
    extensions = limit_error(await post(client, key, {"query": query}))
    assert extensions["limit"] == "maxCost" and extensions["maximum"] == 10_000
    assert extensions["measured"] > 100**5
    await still_serves(client, key)


async def test_invalid_utf8_body(gateway):
    client, _, key = gateway
    response = await post(client, key, content=b'{"query": "{ viewer { name \xff\xfe } }"}',
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert codes(response) == ["BAD_USER_INPUT"] and "UTF-8" in response.json()["errors"][0]["message"]
    await still_serves(client, key)


async def test_broken_json_batches_and_wrong_shapes(gateway):
    client, _, key = gateway
    for body, needle in [(b'{"query": "{ viewer', "not valid JSON"),
                         (b'[{"query": "{ viewer { keyId } }"}]', "Batched requests"),
                         (b'"{ viewer { keyId } }"', "JSON object"),
                         (b'{"query": 42}', "`query` must be a string"),
                         (b'{"query": "{ viewer { keyId } }", "variables": [1]}', "`variables` must be a JSON object")]:
        response = await post(client, key, content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, body
        assert codes(response) == ["BAD_USER_INPUT"]
        assert needle in response.json()["errors"][0]["message"]
    await still_serves(client, key)


async def test_content_types(gateway):
    client, _, key = gateway
    body = json.dumps({"query": "{ viewer { keyId } }"}).encode()
    for content_type in ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1", ""]:
        response = await post(client, key, content=body, headers={"Content-Type": content_type})
        assert response.status_code == 415, content_type
        assert codes(response) == ["BAD_USER_INPUT"]
    for content_type in ["application/json", "application/json; charset=utf-8", "application/graphql-response+json"]:
        response = await post(client, key, content=body, headers={"Content-Type": content_type})
        assert response.status_code == 200 and "errors" not in response.json(), content_type


async def test_wrong_json_types_for_variables(gateway):
    client, _, key = gateway
    query = "query Q($n: Int, $f: MemberFilter) { members(first: $n, filter: $f) { totalCount } }"
    for variables in [{"n": "ten"}, {"n": 1.5}, {"n": [1]}, {"f": "nameContains"}, {"f": {"gender": "ROBOT"}},
                      {"f": {"nameContains": {"$ne": 1}}}]:
        response = await post(client, key, {"query": query, "variables": variables})
        assert response.status_code == 200
        assert codes(response) == ["BAD_USER_INPUT"], (variables, response.text)
        assert response.json()["data"] is None
    await still_serves(client, key)


async def test_sql_in_every_string_argument_comes_back_as_data(gateway, database_url):
    client, _, key = gateway
    queries = [  # $s: a String argument, $i: an ID argument
        ("members(filter: {nameContains: $s}) { totalCount edges { node { id } } }",
         lambda d: d["members"]["totalCount"] == 0),
        ("members(filter: {organizationId: $i, employerId: $i}) { totalCount }", lambda d: d["members"]["totalCount"] == 0),
        ("member(id: $i) { id }", lambda d: d["member"] is None),
        ("organization(id: $i) { id }", lambda d: d["organization"] is None),
        ("claim(id: $i) { id }", lambda d: d["claim"] is None),
        ("claims(filter: {memberId: $i, organizationId: $i, planCode: $s}) { totalCount }",
         lambda d: d["claims"]["totalCount"] == 0),
        ("contract(id: $i) { id }", lambda d: d["contract"] is None),
        ("contracts(filter: {organizationId: $i, employerId: $i, campaign: $s}) { totalCount }",
         lambda d: d["contracts"]["totalCount"] == 0),
        ("recruitmentEvents(filter: {organizerId: $i}) { totalCount }",
         lambda d: d["recruitmentEvents"]["totalCount"] == 0),
    ]
    for selection, check in queries:
        declared = ", ".join(d for v, d in [("$s", "$s: String!"), ("$i", "$i: ID!")] if v in selection)
        for text in [SQL, "' OR '1'='1", "m1' --", "\\'; SELECT pg_sleep(10); --"]:
            variables = {name: text for name in ("s", "i") if f"${name}" in selection}
            response = await post(client, key, {"query": f"query Q({declared}) {{ {selection} }}",
                                                "variables": variables})
            assert response.status_code == 200, response.text
            body = response.json()
            assert not body.get("errors"), (selection, body)
            assert check(body["data"]), (selection, body)
    # Cursors are opaque: SQL in `after` is a bad cursor, not a statement.
    response = await post(client, key, {"query": "query Q($a: String) { members(after: $a) { totalCount } }",
                                        "variables": {"a": SQL}})
    assert codes(response) == ["BAD_USER_INPUT"]
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM members.members") == 1
    finally:
        await conn.close()
    await still_serves(client, key)


async def test_oversized_variables(gateway):
    client, _, key = gateway
    response = await post(client, key, {"query": "query Q($s: String) { members(filter: {nameContains: $s}) "
                                                 "{ totalCount } }", "variables": {"s": "王" * 1_000_000}})
    assert response.status_code == 413 and codes(response) == ["BAD_USER_INPUT"]
    many = {f"v{i}": i for i in range(200_000)}
    response = await post(client, key, {"query": "{ viewer { keyId } }", "variables": many})
    assert response.status_code == 413
    await still_serves(client, key)


async def test_unknown_document_id(gateway):
    client, _, key = gateway
    response = await post(client, key, {"documentId": "sha256:" + "0" * 64})
    assert codes(response) == ["BAD_USER_INPUT"]
    assert "No trusted document sha256:" + "0" * 64 in response.json()["errors"][0]["message"]
    response = await post(client, key, {"documentId": "md5:abc"})
    assert codes(response) == ["BAD_USER_INPUT"] and "sha256:" in response.json()["errors"][0]["message"]
    await still_serves(client, key)


async def test_introspection_and_suggestions_from_a_third_party_key(gateway, databases):
    client, _, key = gateway
    third_party = await key_with(databases.members, scopes=["members:read"])
    tooling = await key_with(databases.members, scopes=["members:read", "introspection"])
    introspection = "{ __schema { queryType { name } types { name fields { name } } } }"
    response = await post(client, third_party, {"query": introspection})
    assert codes(response) == ["FORBIDDEN"] and response.json()["data"] is None
    response = await post(client, tooling, {"query": introspection})
    assert "errors" not in response.json() and response.json()["data"]["__schema"]["queryType"]["name"] == "Query"
    # "Did you mean" hints reveal field names: only keys that may introspect see them.
    typo = "{ members { edges { node { nam } } } }"
    hidden = (await post(client, third_party, {"query": typo})).json()["errors"][0]["message"]
    shown = (await post(client, tooling, {"query": typo})).json()["errors"][0]["message"]
    assert hidden == "Cannot query field 'nam' on type 'Member'."
    assert "Did you mean 'name'?" in shown
    await still_serves(client, third_party)


async def test_a_cancelled_slow_operation_answers_cleanly_and_returns_its_connections(
        settings, urls, builder, databases, database_url):  # noqa: F811
    key = await key_with(databases.members)
    async with served(settings, urls, request_timeout_seconds=1.0) as (client, state):
        await still_serves(client, key)
        pools = [state.databases[source] for source in ("members", "claims", "contracts", "recruitment")]
        blocker = await asyncpg.connect(database_url)
        try:
            # A real slow statement: the members query waits on this lock until the timeout cancels it.
            transaction = blocker.transaction()
            await transaction.start()
            await blocker.execute("LOCK TABLE members.members IN ACCESS EXCLUSIVE MODE")
            response = await post(client, key, {"query": "{ members(first: 5) { totalCount } }"})
            await transaction.rollback()
        finally:
            await blocker.close()
        assert response.status_code == 504
        [error] = response.json()["errors"]
        assert error["extensions"] == {"code": "QUERY_TOO_COMPLEX", "limit": "timeoutSeconds", "maximum": 1.0}
        for _ in range(100):
            if all(pool.get_idle_size() == pool.get_size() for pool in pools):
                break
            await asyncio.sleep(0.05)
        assert [pool.get_idle_size() for pool in pools] == [pool.get_size() for pool in pools]
        await still_serves(client, key)


@pytest.mark.parametrize("origins", [[], ["https://app.example.org"]])
async def test_cors_is_closed_unless_configured(settings, urls, databases, origins):
    async with served(settings, urls, cors_origins=origins) as (client, _):
        response = await client.options("/graphql", headers={
            "Origin": "https://app.example.org", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type"})
        allowed = response.headers.get("access-control-allow-origin")
        assert allowed == ("https://app.example.org" if origins else None)
        if origins:
            evil = await client.options("/graphql", headers={
                "Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"})
            assert evil.headers.get("access-control-allow-origin") is None
