"""A query's SQL statements depend on its depth, not on how many rows each level returns."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest_asyncio

from sources.database import StatementCount
from tests.gql import Builder, Gql, builder, client, make_key  # noqa: F401 - fixtures

QUERY = """query($n: Int!) { members(first: $n) { edges { node {
    id employer { name } organization { name }
    enrollments { status plan { code premium } }
    claims(first: 5) { totalCount edges { node { id status lines { amount benefit } } } }
} } } }"""

#: members page (employers and organizations joined), visible organization ids, enrolments (plans from memory
#: but on the first request), claims page, lines: the bound leaves room for employers, organizations and plans.
MOST_STATEMENTS = 8


@pytest_asyncio.fixture
async def fifty_members(client: Gql, builder: Builder) -> None:
    start = datetime(2026, 3, 1, tzinfo=timezone.utc)
    for i in range(10):
        await builder.employer(f"e{i:02d}", "g1" if i % 2 else "g2")
    for i in range(50):
        member = await builder.member(f"m{i:03d}", "g1" if i % 3 else "d1", f"e{i % 10:02d}")
        await builder.enrollment(member)
        if i % 2:
            await builder.enrollment(member, "SI5")
        for j in range(i % 4):
            await builder.claim(member, submitted_at=start + timedelta(days=i + j),
                                lines=[("HCA", "MEDICAL", Decimal("100.00")),
                                       ("HCA", "HOSPITAL_ALLOWANCE", Decimal(50 * (j + 1)))])


async def _statements(client: Gql, key: str, n: int) -> tuple[int, int]:
    with StatementCount() as counts:
        body = await client.query(QUERY, {"n": n}, key=key)
        await asyncio.sleep(0)  # asyncpg reports statements with call_soon
    assert not body.get("errors"), body["errors"]
    assert len(body["data"]["members"]["edges"]) == n
    return counts["members"] + counts["claims"], len(body["data"]["members"]["edges"])


async def test_statements_do_not_grow_with_the_page(client: Gql, fifty_members: None) -> None:
    # A district key: the visible-organization look-up is part of the count.
    key = await make_key(client.state.databases.members, org="d1", scopes=["members:read", "claims:read"])
    await client.query("{ viewer { keyId } }", key=key)  # the key's own look-ups are cached from here on
    await _statements(client, key, 1)  # and the plans, under the schedule's version
    # d1 sees the members in d1 and g1: 50 - those in g2 (none: members sit in g1 or d1).
    few, _ = await _statements(client, key, 5)
    many, _ = await _statements(client, key, 50)
    assert few == many
    assert many <= MOST_STATEMENTS


async def test_the_city_key_skips_the_visibility_look_up(client: Gql, fifty_members: None) -> None:
    key = await make_key(client.state.databases.members, org="c", scopes=["members:read", "claims:read"])
    await client.query("{ viewer { keyId } }", key=key)
    await _statements(client, key, 1)
    few, _ = await _statements(client, key, 5)
    many, _ = await _statements(client, key, 50)
    assert few == many <= MOST_STATEMENTS - 1


async def test_a_member_page_reads_the_member_employer_and_organization_in_one_statement(
        client: Gql, fifty_members: None) -> None:
    key = await make_key(client.state.databases.members, org="d1", scopes=["members:read", "claims:read"])
    await client.query("{ viewer { keyId } }", key=key)
    query = """query($a: ID!, $b: ID!) {
        a: member(id: $a) { id employer { id name } organization { id name } }
        b: member(id: $b) { id employer { name } organization { level } }
        c: member(id: "m000") { id employer { name } } }"""
    with StatementCount() as counts:
        data = await client.data(query, {"a": "m001", "b": "m002"}, key=key)
        await asyncio.sleep(0)
    assert data["a"] == {"id": "m001", "employer": {"id": "e01", "name": data["a"]["employer"]["name"]},
                         "organization": {"id": "g1", "name": data["a"]["organization"]["name"]}}
    assert data["b"]["organization"] == {"level": "GRASSROOTS"} and data["c"]["id"] == "m000"
    # Three members with their employers and organizations, visibility included: one statement.
    assert counts["members"] == 1, dict(counts)
    outsider = await make_key(client.state.databases.members, org="d2", scopes=["members:read"])
    assert (await client.data('{ member(id: "m001") { employer { name } } }', key=outsider)) == {"member": None}


async def test_plans_come_from_memory_while_the_schedule_is_unchanged(
        client: Gql, builder: Builder, fifty_members: None) -> None:
    key = await make_key(client.state.databases.members, org="c", scopes=["members:read", "claims:read"])
    query = '{ member(id: "m001") { enrollments { plan { code name } } } }'

    async def counted() -> tuple[list[dict], int]:
        with StatementCount() as counts:
            data = await client.data(query, key=key)
            await asyncio.sleep(0)
        return [e["plan"] for e in data["member"]["enrollments"]], counts["claims"]

    await counted()  # the plans are read once, under the schedule's current version
    plans, statements = await counted()
    assert [p["code"] for p in plans] == ["HCA", "SI5"] and statements == 1  # the enrolments only
    await builder.conn.execute("UPDATE claims.plans SET name = 'renamed' WHERE code = 'HCA'")
    plans, statements = await counted()
    assert plans[0] == {"code": "HCA", "name": "renamed"} and statements == 2  # a new version: read again
    assert (await counted())[1] == 1


async def test_organization_members_batch_across_organizations(client: Gql, fifty_members: None) -> None:
    key = await make_key(client.state.databases.members, org="c", scopes=["members:read"])
    await client.query("{ viewer { keyId } }", key=key)
    query = "{ organization(id: \"c\") { children { children { members(first: 3) { totalCount edges { node { employer { id } } } } } } } }"
    with StatementCount() as counts:
        data = await client.data(query, key=key)
        await asyncio.sleep(0)
    grassroots = [g for d in data["organization"]["children"] for g in d["children"]]
    assert sorted(g["members"]["totalCount"] for g in grassroots) == [0, 33]
    # organization, children, grandchildren, their members, employers: one statement each.
    assert counts["members"] == 5


async def test_insurance_look_ups_are_one_call_per_level(builder: Builder, settings, urls, simulator) -> None:
    from tests.gql import gateway

    await builder.employer("e1", "g1")
    for i in range(20):
        member = await builder.member(f"m{i:02d}", "g1", "e1")
        await builder.enrollment(member)
        await builder.claim(member, submitted_at=datetime(2026, 6, 1, tzinfo=timezone.utc),
                            lines=[("HCA", "MEDICAL", Decimal("100.00"))])
    conn = builder.conn
    await conn.execute(
        """INSERT INTO insurance_sim.coverage (national_id, insured, scheme, since)
           SELECT national_id, true, '职工基本医疗保险', DATE '2015-01-01' FROM members.members""")
    await conn.execute(
        """INSERT INTO insurance_sim.settlements
               (settlement_id, national_id, hospital_code, hospital_name, admission_date, discharge_date,
                diagnosis_code, diagnosis_name, total_cost, fund_paid, self_pay_in_policy, self_pay_out_of_policy,
                settled_at)
           SELECT c.settlement_id, m.national_id, 'H001', '无锡市人民医院', DATE '2026-05-01', DATE '2026-05-10',
                  'C34.9', '肺恶性肿瘤', 60000, 40000, 15000, 5000, TIMESTAMPTZ '2026-05-11 10:00+08'
           FROM claims.claims c JOIN members.members m ON m.id = c.member_id""")
    live = settings.model_copy(update={"insurance_url": simulator.url, "api_key_cache_seconds": 60.0})
    query = """{ members(first: 20) { edges { node { medicalInsurance { insured scheme since }
        claims(first: 5) { edges { node { settlement { id hospitalName diagnosisCode totalCost settledAt } } } } } } } }"""
    async with gateway(live, urls) as gql:
        pool = gql.state.databases.members
        medical = await make_key(pool, org="c", scopes=["members:read", "claims:read", "medical:read"])
        plain = await make_key(pool, org="c", scopes=["members:read", "claims:read"])
        simulator.stats.reset()
        full = await gql.data(query, key=medical)
        calls = dict(simulator.stats.calls)
        masked = await gql.data(query, key=plain)
    members = [e["node"] for e in full["members"]["edges"]]
    assert len(members) == 20
    assert all(m["medicalInsurance"] == {"insured": True, "scheme": "职工基本医疗保险", "since": "2015-01-01"}
               for m in members)
    settlements = [c["node"]["settlement"] for m in members for c in m["claims"]["edges"]]
    assert len(settlements) == 20 and all(s["diagnosisCode"] == "C34.9" and s["totalCost"] == "60000.00"
                                          and s["settledAt"] == "2026-05-11T10:00:00+08:00" for s in settlements)
    assert all(c["node"]["settlement"]["diagnosisCode"] is None
               for e in masked["members"]["edges"] for c in e["node"]["claims"]["edges"])
    # Twenty members, twenty settlements: one coverage call and one settlements call.
    assert sorted(calls.values()) == [1, 1], calls


async def test_cross_source_links_batch_per_level(client: Gql, builder: Builder) -> None:
    """W5's shape: contracts (contracts source) → employer → member count (members source)."""
    for i in range(12):
        employer = await builder.employer(f"e{i:02d}", "g1")
        for j in range(i % 3):
            await builder.member(f"m{i:02d}{j}", "g1" if j else "g2", employer)
        await builder.contract(f"k{i:02d}", "d1", employer)
    key = await make_key(client.state.databases.members, org="d1", scopes=["contracts:read", "members:read"])
    await client.query("{ viewer { keyId } }", key=key)
    query = "query($n: Int!) { contracts(first: $n) { edges { node { id employer { id memberCount } } } } }"
    counts_by_n = {}
    for n in (3, 12):
        with StatementCount() as counts:
            data = await client.data(query, {"n": n}, key=key)
            await asyncio.sleep(0)
        counts_by_n[n] = dict(counts)
        assert len(data["contracts"]["edges"]) == n
    assert counts_by_n[3] == counts_by_n[12]
    # Only members the key sees count: d1's key does not see g2's members.
    got = {e["node"]["employer"]["id"]: e["node"]["employer"]["memberCount"] for e in data["contracts"]["edges"]}
    assert got == {f"e{i:02d}": (1 if i % 3 == 2 else 0) for i in range(12)}


async def test_list_links_are_loaded_ahead_so_fields_resolve_synchronously(client: Gql, fifty_members: None) -> None:
    """The staff-list shape is prefetched level by level: no link falls back to a late, per-item load.

    A late load still answers correctly (through the loader's future), but it
    sends every item of its list down graphql-core's asynchronous path, about
    ten times the cost per field; this guards the fast path.
    """
    from schema import prefetch

    key = await make_key(client.state.databases.members, org="c", scopes=["members:read", "claims:read"])
    query = """query($d: ID!) { members(first: 50, filter: {organizationId: $d}) { totalCount edges { node {
        id employer { name organization { id } } organization { name parent { id } }
        enrollments { plan { code } member { id } }
        ... on Member { claims(first: 5) { edges { node { id lines { amount } member { id } } } } }
    } } } }"""
    prefetch.late_loads.clear()
    data = await client.data(query, {"d": "c"}, key=key)
    assert len(data["members"]["edges"]) == 50
    assert sum(len(e["node"]["claims"]["edges"]) for e in data["members"]["edges"]) > 0
    assert dict(prefetch.late_loads) == {}
    # The same data as when nothing is prefetched (each link loaded late by its resolver).
    original = prefetch.LINKS.copy()
    prefetch.LINKS.clear()
    try:
        late = await client.data(query, {"d": "c"}, key=key)
    finally:
        prefetch.LINKS.update(original)
    assert late == data
    assert prefetch.late_loads  # the comparison really took the late path
