"""The simulator speaks medical-insurance.yaml over a real socket, and its /sim/ admin works."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from simulator.admin import sample_national_id, settlement_json
from simulator.server import start_simulator

SHANGHAI = timezone(timedelta(hours=8))


national_id = sample_national_id


@pytest.fixture
async def http(simulator):
    async with httpx.AsyncClient(base_url=simulator.url, timeout=5.0) as client:
        yield client


@pytest.fixture
async def admin(simulator):
    async with simulator.admin() as client:
        yield client


async def test_batch_get_returns_records_in_contract_shape_and_the_missing_ids(http, admin):
    person = national_id(1)
    await admin.add(settlements=[settlement_json("S-1", person, hospital_name="江南大学附属医院",
                                                 diagnosis_name="脑梗死", total_cost="80000.10")])

    response = await http.post("/v1/settlements/batch-get", json={"ids": ["S-1", "S-nope", "S-1"]})

    assert response.status_code == 200
    body = response.json()
    assert body["missing"] == ["S-nope"]
    assert body["records"] == [{
        "settlement_id": "S-1", "national_id": person, "hospital_code": "H32020100001",
        "hospital_name": "江南大学附属医院", "admission_date": "2024-03-04", "discharge_date": "2024-03-10",
        "diagnosis_code": "K35.800", "diagnosis_name": "脑梗死", "total_cost": "80000.10",
        "fund_paid": "8641.92", "self_pay_in_policy": "2469.12", "self_pay_out_of_policy": "1234.56",
        "settled_at": "2024-03-11T01:30:00+00:00",
    }]


async def test_requests_over_200_keys_or_of_the_wrong_shape_get_400(http):
    too_many = await http.post("/v1/settlements/batch-get", json={"ids": [f"S-{i}" for i in range(201)]})
    assert too_many.status_code == 400
    assert too_many.json()["error"]["code"] == "BAD_REQUEST"
    assert "200" in too_many.json()["error"]["message"]

    for path, body in [
        ("/v1/settlements/batch-get", {"ids": "S-1"}),
        ("/v1/settlements/batch-get", {"ids": [1, 2]}),
        ("/v1/settlements/search", {"national_ids": [], "settled_since": "2024-01-01T00:00:00"}),
        ("/v1/settlements/search", {"national_ids": [], "settled_since": "2024-01-01T00:00:00Z", "page_token": "x"}),
        ("/v1/coverage/batch-get", {"national_ids": [national_id(1)], "on": "2024-02-30"}),
        ("/v1/coverage/batch-get", {"national_ids": [national_id(1)]}),
    ]:
        response = await http.post(path, json=body)
        assert response.status_code == 400, (path, body)
    not_json = await http.post("/v1/coverage/batch-get", content=b"{not json")
    assert not_json.status_code == 400


async def test_coverage_answers_every_asked_id_and_unknown_people_are_not_insured(http, admin):
    insured, later, unknown = national_id(1), national_id(2), national_id(3)
    await admin.add(coverage=[
        {"national_id": insured, "insured": True, "scheme": "城镇职工基本医疗保险", "since": "2015-07-01"},
        {"national_id": later, "insured": True, "scheme": "城乡居民基本医疗保险", "since": "2024-06-01"},
    ])

    response = await http.post("/v1/coverage/batch-get",
                               json={"national_ids": [insured, later, unknown], "on": "2024-03-01"})

    by_id = {entry["national_id"]: entry for entry in response.json()["coverage"]}
    assert by_id == {
        insured: {"national_id": insured, "insured": True, "scheme": "城镇职工基本医疗保险", "since": "2015-07-01"},
        later: {"national_id": later, "insured": False, "scheme": None, "since": None},
        unknown: {"national_id": unknown, "insured": False, "scheme": None, "since": None},
    }


async def test_search_pages_oldest_first_and_the_last_page_has_no_token(database_url):
    running = await start_simulator(database_url, page_size=4)
    try:
        person, other = national_id(7), national_id(8)
        start = datetime(2024, 1, 1, tzinfo=SHANGHAI)
        # Inserted newest first, in pairs settled at the same instant (10h, 8h, ... 2h after start).
        stays = [settlement_json(f"S-{i:02}", person, settled_at=start + timedelta(hours=10 - i // 2 * 2))
                 for i in range(10)]
        too_early = settlement_json("S-early", person, settled_at=start)
        async with running.admin() as admin:
            await admin.add(settlements=[*stays, too_early, settlement_json("S-other", other, settled_at=start)])
        async with httpx.AsyncClient(base_url=running.url) as http:
            query = {"national_ids": [person], "settled_since": (start + timedelta(hours=1)).isoformat()}
            seen, pages, token = [], 0, None
            while True:
                body = (await http.post("/v1/settlements/search",
                                        json={**query, **({"page_token": token} if token else {})})).json()
                pages += 1
                seen += body["records"]
                token = body["next_page_token"]
                if token is None:
                    break
                stolen = await http.post("/v1/settlements/search",
                                         json={"national_ids": [other], "settled_since": query["settled_since"],
                                               "page_token": token})
                assert stolen.status_code == 400
    finally:
        await running.stop()

    assert pages == 3
    assert [r["settlement_id"] for r in seen] == ["S-08", "S-09", "S-06", "S-07", "S-04", "S-05",
                                                  "S-02", "S-03", "S-00", "S-01"]
    times = [datetime.fromisoformat(r["settled_at"]) for r in seen]
    assert times == sorted(times)


async def test_a_configured_token_is_required(database_url):
    running = await start_simulator(database_url, token="s3cret")
    try:
        async with httpx.AsyncClient(base_url=running.url) as http:
            body = {"ids": ["S-1"]}
            assert (await http.post("/v1/settlements/batch-get", json=body)).status_code == 401
            wrong = await http.post("/v1/settlements/batch-get", json=body, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            assert wrong.headers["www-authenticate"] == "Bearer"
            right = await http.post("/v1/settlements/batch-get", json=body,
                                    headers={"Authorization": "Bearer s3cret"})
            assert right.status_code == 200
            assert (await http.get("/sim/stats")).status_code == 401
    finally:
        await running.stop()


async def test_admin_rejects_a_bad_settlement_with_the_field_named(http):
    bad = settlement_json("S-1", national_id(1), total_cost="12.345")
    response = await http.post("/sim/settlements", json={"settlements": [bad]})
    assert response.status_code == 400
    assert "settlements[0].total_cost" in response.json()["error"]["message"]
    reversed_stay = settlement_json("S-2", national_id(1), admission_date="2024-03-10", discharge_date="2024-03-01")
    response = await http.post("/sim/settlements", json={"settlements": [reversed_stay]})
    assert response.status_code == 400
    assert "discharge_date" in response.json()["error"]["message"]


async def test_a_settled_stay_makes_its_person_insured_unless_coverage_says_otherwise(http, admin):
    person = national_id(1)
    await admin.add(settlements=[settlement_json("S-1", person)])
    entry = (await http.post("/v1/coverage/batch-get", json={"national_ids": [person], "on": "2024-03-01"})).json()
    assert entry["coverage"][0]["insured"] is True


async def test_stats_count_calls_and_batch_sizes_until_reset(http, admin):
    await http.post("/v1/settlements/batch-get", json={"ids": ["a", "b", "c"]})
    await http.post("/v1/coverage/batch-get", json={"national_ids": [national_id(1)], "on": "2024-01-01"})
    stats = await admin.stats()
    assert stats["total"] == 2
    assert stats["calls"] == {"/v1/settlements/batch-get": 1, "/v1/coverage/batch-get": 1}
    assert stats["batch_sizes"]["/v1/settlements/batch-get"] == [3]
    await admin.reset_stats()
    assert (await admin.stats())["total"] == 0


async def test_a_burst_answers_the_next_n_requests_then_recovers(http, admin):
    await admin.set_faults(burst={"count": 2, "status": 429, "retry_after": 3})
    answers = [await http.post("/v1/settlements/batch-get", json={"ids": []}) for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["retry-after"] == "3"


async def test_error_rate_is_reproducible_for_a_seed(http, admin):
    async def pattern() -> list[int]:
        await admin.set_faults(error_rate=0.5, seed=42)
        return [(await http.post("/v1/settlements/batch-get", json={"ids": []})).status_code for _ in range(12)]

    first = await pattern()
    assert set(first) == {200, 503}
    assert await pattern() == first


async def test_down_modes_answer_503_or_drop_the_connection(http, admin):
    await admin.set_faults(down="503")
    assert (await http.post("/v1/settlements/batch-get", json={"ids": []})).status_code == 503
    await admin.set_faults(down="reset")
    with pytest.raises(httpx.RemoteProtocolError):
        await http.post("/v1/settlements/batch-get", json={"ids": []})
    await admin.set_faults()
    assert (await http.post("/v1/settlements/batch-get", json={"ids": []})).status_code == 200


async def test_hang_never_answers_until_turned_off(http, admin):
    await admin.set_faults(hang=True)
    with pytest.raises(httpx.ReadTimeout):
        await http.post("/v1/settlements/batch-get", json={"ids": []}, timeout=0.3)
    await admin.set_faults(hang=False)
    assert (await http.post("/v1/settlements/batch-get", json={"ids": []})).status_code == 200


async def test_bad_fault_settings_are_refused(http):
    response = await http.post("/sim/faults", json={"burst": {"count": 1, "status": 500}})
    assert response.status_code == 400
    assert "burst.status" in response.json()["error"]["message"]
