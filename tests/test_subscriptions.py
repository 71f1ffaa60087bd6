"""claimUpdated and the mutations through the real app: two replicas on one database, real sockets."""
from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import httpx
import pytest
import pytest_asyncio
import websockets

from simulator.admin import settlement_json
from tests.running_gateway import api_key, in_process_gateway
from tests.settlement_data import LI, WANG, ZHAO, create_union, insured

ALL = "members:read,claims:read,claims:write,claims:review,enrollments:write,medical:read"

SUBSCRIPTION = """subscription ($memberId: ID) {
  claimUpdated(memberId: $memberId) { id status totalPayout member { id } lines { benefit amount } }
}"""
SUBMIT = """mutation ($input: HospitalizationClaimInput!) {
  submitHospitalizationClaim(input: $input) {
    id status rejectionReason totalPayout decidedAt
    lines { benefit planCode amount note }
    settlement { id hospitalName diagnosisCode selfPayInPolicy }
  }
}"""
ENROL = """mutation ($input: EnrollMemberInput!) {
  enrollMember(input: $input) { id coverageStart coverageEnd premiumPaid status plan { code } member { id } }
}"""


@pytest_asyncio.fixture
async def replicas(settings, urls, databases, simulator):
    """Two gateways (two create_app) on the one test database, with the simulator as insurance system."""
    async with databases.members.acquire() as conn:
        await create_union(conn)
    async with simulator.admin() as admin:
        await admin.add(coverage=[insured(WANG), insured(LI), insured(ZHAO)])
    configured = settings.model_copy(update={"insurance_url": simulator.url, "pending_retry_seconds": 0.2})
    async with in_process_gateway(configured, urls) as one, in_process_gateway(configured, urls) as two:
        yield one, two


async def gql(url: str, key: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(f"{url}/graphql", json={"query": query, "variables": variables},
                                   headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    return response.json()


@asynccontextmanager
async def subscribed(url: str, key: str, member_id: str | None) -> AsyncIterator[websockets.ClientConnection]:
    """A graphql-transport-ws connection with claimUpdated running, authenticated in connection_init."""
    ws_url = url.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe",
                                  "payload": {"query": SUBSCRIPTION, "variables": {"memberId": member_id}}}))
        await asyncio.sleep(0.3)  # the subscription is registered with the listener before anything is sent
        yield ws


async def next_message(ws, timeout: float = 5.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def test_an_update_made_through_one_replica_reaches_subscribers_on_the_other(replicas, database_url, simulator):
    one, two = replicas
    key = await api_key(database_url, scopes=ALL)
    outsider = await api_key(database_url, scopes=ALL, org="d2")  # Wang is under d1
    async with simulator.admin() as admin:
        await admin.add(settlements=[settlement_json("S-WANG", WANG.national_id, admission_date="2026-10-08",
                                                     discharge_date="2026-11-02", diagnosis_code="C34.9",
                                                     self_pay_in_policy="47186.00"),
                                     settlement_json("S-LI", LI.national_id, admission_date="2026-03-01")])
    for start in ("2025-01-01", "2026-01-01"):
        body = await gql(two.url, key, ENROL, {"input": {"memberId": WANG.id, "planCode": "HCA", "coverageStart": start}})
        assert not body.get("errors"), body
    assert body["data"]["enrollMember"]["coverageEnd"] == "2026-12-31"
    assert body["data"]["enrollMember"]["premiumPaid"] == "120.00"
    await gql(two.url, key, ENROL, {"input": {"memberId": LI.id, "planCode": "HCA", "coverageStart": "2026-01-01"}})

    async with subscribed(one.url, key, WANG.id) as wang_only, subscribed(one.url, key, None) as everything, \
            subscribed(one.url, outsider, None) as out_of_scope:
        body = await gql(two.url, key, SUBMIT, {"input": {"memberId": LI.id, "settlementId": "S-LI"}})
        li_claim = body["data"]["submitHospitalizationClaim"]
        body = await gql(two.url, key, SUBMIT, {"input": {"memberId": WANG.id, "settlementId": "S-WANG"}})
        assert not body.get("errors"), body
        claim = body["data"]["submitHospitalizationClaim"]
        assert (claim["status"], claim["totalPayout"]) == ("APPROVED", "34343.00")
        assert [(l["benefit"], l["amount"]) for l in claim["lines"]] == [
            ("MEDICAL", "23093.00"), ("HOSPITAL_ALLOWANCE", "1250.00"), ("CRITICAL_ILLNESS", "10000.00")]
        assert claim["settlement"]["diagnosisCode"] == "C34.9"

        update = await next_message(wang_only)
        assert update["type"] == "next" and update["id"] == "1"
        got = update["payload"]["data"]["claimUpdated"]
        assert (got["id"], got["status"], got["totalPayout"], got["member"]["id"]) == (
            claim["id"], "APPROVED", "34343.00", WANG.id)
        assert len(got["lines"]) == 3
        seen = [(await next_message(everything))["payload"]["data"]["claimUpdated"]["id"] for _ in range(2)]
        assert seen == [li_claim["id"], claim["id"]]
        with pytest.raises(TimeoutError):
            await next_message(wang_only, 0.5)  # Li's claim is not Wang's
        # Both members are under d1: a key of d2 hears of neither.
        with pytest.raises(TimeoutError):
            await next_message(out_of_scope, 0.5)


async def test_subscription_needs_claims_read(replicas, database_url):
    one, _ = replicas
    key = await api_key(database_url, scopes="members:read")
    async with subscribed(one.url, key, None) as ws:
        message = await next_message(ws)
    assert message["type"] == "error"
    assert message["payload"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_twenty_identical_submissions_over_http_make_one_claim(replicas, database_url, simulator, databases):
    one, two = replicas
    key = await api_key(database_url, scopes=ALL)
    async with simulator.admin() as admin:
        await admin.add(settlements=[settlement_json("S-OK", WANG.national_id, admission_date="2026-03-01",
                                                     self_pay_in_policy="3000.00")])
    await gql(one.url, key, ENROL, {"input": {"memberId": WANG.id, "planCode": "HCA", "coverageStart": "2026-01-01"}})
    bodies = await asyncio.gather(*(
        gql((one, two)[n % 2].url, key, SUBMIT, {"input": {"memberId": WANG.id, "settlementId": "S-OK"}})
        for n in range(20)))
    assert all(not b.get("errors") for b in bodies), [b["errors"] for b in bodies if b.get("errors")]
    claims = [b["data"]["submitHospitalizationClaim"] for b in bodies]
    assert len({c["id"] for c in claims}) == 1
    assert {(c["status"], c["totalPayout"]) for c in claims} == {("APPROVED", "1300.00")}
    assert await databases.claims.fetchval("SELECT count(*) FROM claims.claims") == 1


async def test_mutation_errors_carry_codes(replicas, database_url):
    one, _ = replicas
    key = await api_key(database_url, scopes=ALL)
    reader = await api_key(database_url, scopes="claims:read,members:read")
    body = await gql(one.url, key, ENROL, {"input": {"memberId": LI.id, "planCode": "FW3", "coverageStart": "2026-01-01"}})
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "reason": "NOT_ELIGIBLE"}
    body = await gql(one.url, reader, SUBMIT, {"input": {"memberId": WANG.id, "settlementId": "S-1"}})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await gql(one.url, key, SUBMIT, {"input": {"memberId": "m-nobody", "settlementId": "S-1"}})
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    accident = """mutation ($input: AccidentClaimInput!) { submitAccidentClaim(input: $input) { id status } }"""
    body = await gql(one.url, key, accident, {"input": {"memberId": WANG.id, "accidentDate": "2026-03-01",
                                                        "disabilityGrade": 11, "assessmentRef": "A-1"}})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_the_background_task_decides_pending_claims(replicas, database_url, simulator):
    one, two = replicas
    key = await api_key(database_url, scopes=ALL)
    await gql(one.url, key, ENROL, {"input": {"memberId": WANG.id, "planCode": "HCA", "coverageStart": "2025-06-01"}})
    async with simulator.admin() as admin:
        await admin.add(settlements=[settlement_json("S-P", WANG.national_id, admission_date="2026-03-01",
                                                     self_pay_in_policy="3000.00")])
        await admin.set_faults(down="503")
        async with subscribed(two.url, key, WANG.id) as ws:
            body = await gql(one.url, key, SUBMIT, {"input": {"memberId": WANG.id, "settlementId": "S-P"}})
            pending = body["data"]["submitHospitalizationClaim"]
            assert (pending["status"], pending["lines"], pending["decidedAt"]) == ("PENDING_REVIEW", [], None)
            assert (await next_message(ws))["payload"]["data"]["claimUpdated"]["status"] == "PENDING_REVIEW"
            await admin.set_faults()
            # Both replicas' retry tasks race for it; it is decided, and announced, once.
            decided = (await next_message(ws, 30))["payload"]["data"]["claimUpdated"]
            assert (decided["id"], decided["status"], decided["totalPayout"]) == (pending["id"], "APPROVED", "1300.00")
            with pytest.raises(TimeoutError):
                await next_message(ws, 1.0)
