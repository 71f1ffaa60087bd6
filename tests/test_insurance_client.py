"""The insurance client and loaders against the simulator over a real loopback socket."""
from __future__ import annotations

import asyncio
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from simulator.admin import sample_national_id, settlement_json
from simulator.server import start_simulator
from sources.circuit_breaker import CircuitBreaker
from sources.insurance import CallRecord, InsuranceClient, InsuranceUnavailable, Settlement
from sources.insurance_loaders import CoverageByNationalIdLoader, SettlementByIdLoader

SHANGHAI = timezone(timedelta(hours=8))
BATCH_GET = "/v1/settlements/batch-get"
SEARCH = "/v1/settlements/search"
COVERAGE = "/v1/coverage/batch-get"


national_id = sample_national_id


@pytest.fixture
async def admin(simulator):
    async with simulator.admin() as client:
        yield client


def client_for(simulator, **options) -> InsuranceClient:
    defaults = dict(timeout=0.5, max_attempts=3, backoff_base=0.02, backoff_max=0.1)
    return InsuranceClient(base_url=simulator.url, **{**defaults, **options})


async def test_get_settlements_parses_the_contract_types_and_leaves_unknown_ids_out(insurance_client, admin):
    person = national_id(1)
    await admin.add(settlements=[settlement_json(
        "S-1", person, hospital_name="无锡市第二人民医院", diagnosis_name="急性心肌梗死",
        total_cost="23456.78", settled_at="2024-05-06T10:00:00+08:00")])

    found = await insurance_client.get_settlements(["S-1", "S-unknown"])

    assert found == {"S-1": Settlement(
        settlement_id="S-1", national_id=person, hospital_code="H32020100001", hospital_name="无锡市第二人民医院",
        admission_date=date(2024, 3, 4), discharge_date=date(2024, 3, 10), diagnosis_code="K35.800",
        diagnosis_name="急性心肌梗死", total_cost=Decimal("23456.78"), fund_paid=Decimal("8641.92"),
        self_pay_in_policy=Decimal("2469.12"), self_pay_out_of_policy=Decimal("1234.56"),
        settled_at=datetime(2024, 5, 6, 10, tzinfo=SHANGHAI),
    )}
    assert found["S-1"].settled_at.tzinfo is not None


async def test_450_ids_go_out_in_3_calls_of_at_most_200(insurance_client, admin, simulator):
    await admin.add(settlements=[settlement_json(f"S-{i}", national_id(i)) for i in range(450)])
    await admin.reset_stats()

    found = await insurance_client.get_settlements([f"S-{i}" for i in range(450)])

    assert len(found) == 450
    stats = await admin.stats()
    assert stats["calls"] == {BATCH_GET: 3}
    assert sorted(stats["batch_sizes"][BATCH_GET]) == [50, 200, 200]


async def test_repeated_ids_are_asked_once(insurance_client, admin):
    await admin.add(settlements=[settlement_json("S-1", national_id(1)), settlement_json("S-2", national_id(2))])
    await admin.reset_stats()

    found = await insurance_client.get_settlements(["S-1", "S-2", "S-1", "S-2", "S-1"])

    assert set(found) == {"S-1", "S-2"}
    assert (await admin.stats())["batch_sizes"] == {BATCH_GET: [2]}


async def test_search_follows_pages_to_the_end_oldest_first(insurance_client, admin):
    people = [national_id(i) for i in range(3)]
    start = datetime(2024, 1, 1, tzinfo=SHANGHAI)
    stays = [settlement_json(f"S-{i:03}", people[i % 3], settled_at=start + timedelta(minutes=250 - i))
             for i in range(250)]
    await admin.add(settlements=stays)
    await admin.reset_stats()

    since = start + timedelta(minutes=11)  # leaves out the 10 newest-numbered (oldest) stays
    found = await insurance_client.search_settlements([*people, national_id(99)], since)

    assert len(found) == 240
    assert [s.settled_at for s in found] == sorted(s.settled_at for s in found)
    assert found[0].settlement_id == "S-239" and found[-1].settlement_id == "S-000"
    assert (await admin.stats())["calls"] == {SEARCH: 3}  # pages of 100


async def test_search_splits_more_than_200_people_and_merges_in_time_order(insurance_client, admin):
    start = datetime(2024, 1, 1, tzinfo=SHANGHAI)
    people = [national_id(i) for i in range(260)]
    await admin.add(settlements=[settlement_json(f"S-{i}", people[i], settled_at=start + timedelta(minutes=260 - i))
                                 for i in range(0, 260, 10)])
    await admin.reset_stats()

    found = await insurance_client.search_settlements(people, start)

    assert [s.settlement_id for s in found] == [f"S-{i}" for i in range(250, -1, -10)]
    assert sorted((await admin.stats())["batch_sizes"][SEARCH]) == [60, 200]


async def test_coverage_of_an_unknown_person_is_not_insured(insurance_client, admin):
    known, unknown = national_id(1), national_id(2)
    await admin.add(coverage=[{"national_id": known, "insured": True, "scheme": "城镇职工基本医疗保险",
                               "since": "2010-01-01"}])

    coverage = await insurance_client.get_coverage([known, unknown, known], date(2024, 6, 1))

    assert coverage[known].insured is True
    assert coverage[known].scheme == "城镇职工基本医疗保险"
    assert coverage[known].since == date(2010, 1, 1)
    assert coverage[unknown].insured is False
    assert coverage[unknown].scheme is None


async def test_100_loads_in_one_tick_make_one_call(insurance_client, admin):
    await admin.add(settlements=[settlement_json(f"S-{i}", national_id(i)) for i in range(90)])
    await admin.reset_stats()
    loader = SettlementByIdLoader(insurance_client)

    results = await asyncio.gather(*(loader.load(f"S-{i}") for i in range(100)))

    assert [r.settlement_id if r else None for r in results] == [f"S-{i}" for i in range(90)] + [None] * 10
    assert (await admin.stats())["batch_sizes"] == {BATCH_GET: [100]}


async def test_coverage_loader_makes_one_call_per_date(insurance_client, admin):
    insured = national_id(1)
    await admin.add(coverage=[{"national_id": insured, "insured": True, "scheme": "城乡居民基本医疗保险",
                               "since": "2024-03-01"}])
    await admin.reset_stats()
    loader = CoverageByNationalIdLoader(insurance_client)
    before, after = date(2024, 2, 1), date(2024, 4, 1)

    keys = [(national_id(i), day) for i in range(1, 41) for day in (before, after)]
    results = await asyncio.gather(*(loader.load(key) for key in keys))

    answers = dict(zip(keys, results))
    assert answers[(insured, before)].insured is False
    assert answers[(insured, after)].insured is True
    assert answers[(national_id(2), after)].insured is False
    assert (await admin.stats())["batch_sizes"] == {COVERAGE: [40, 40]}


async def test_loaders_give_every_key_insurance_unavailable_when_the_system_is_down(insurance_client, admin):
    await admin.set_faults(down="503")
    settlements = SettlementByIdLoader(insurance_client)
    coverage = CoverageByNationalIdLoader(insurance_client)

    results = await asyncio.gather(
        *(settlements.load(f"S-{i}") for i in range(5)),
        *(coverage.load((national_id(i), date(2024, 1, 1))) for i in range(5)),
        return_exceptions=True,
    )

    assert all(isinstance(r, InsuranceUnavailable) for r in results)
    assert len({id(r) for r in results}) == 10
    await admin.set_faults()
    # The failure is not cached: the same loader asks again and gets the answer.
    assert await settlements.load("S-0") is None


async def test_latency_below_the_timeout_is_waited_out(insurance_client, admin):
    await admin.set_faults(latency_ms=200)
    assert await insurance_client.get_settlements(["S-1"]) == {}
    assert insurance_client.stats.retries == 0


async def test_latency_above_the_timeout_is_retried_then_unavailable(insurance_client, admin):
    await admin.set_faults(latency_ms=800)
    with pytest.raises(InsuranceUnavailable, match="ReadTimeout after 3 attempts"):
        await insurance_client.get_settlements(["S-1"])
    assert (await admin.stats())["calls"] == {BATCH_GET: 3}
    assert (insurance_client.stats.calls, insurance_client.stats.attempts, insurance_client.stats.retries) == (1, 3, 2)


async def test_a_burst_of_503_is_retried_through(insurance_client, admin):
    await admin.add(settlements=[settlement_json("S-1", national_id(1))])
    await admin.set_faults(burst={"count": 2, "status": 503})
    records: list[CallRecord] = []
    insurance_client.on_call = records.append

    assert set(await insurance_client.get_settlements(["S-1"])) == {"S-1"}
    assert records == [CallRecord(BATCH_GET, 200, records[0].seconds, attempts=3, ok=True)]
    assert insurance_client.breaker_state == "closed"


async def test_429_waits_at_least_retry_after(insurance_client, admin):
    await admin.set_faults(burst={"count": 1, "status": 429, "retry_after": 1})
    started = time.monotonic()
    assert await insurance_client.get_coverage([national_id(1)], date(2024, 1, 1))
    assert time.monotonic() - started >= 1.0
    assert insurance_client.stats.retries == 1


async def test_a_retry_after_beyond_the_cap_fails_at_once(simulator, admin):
    client = client_for(simulator, max_retry_after=0.5)
    try:
        await admin.set_faults(burst={"count": 1, "status": 503, "retry_after": 30})
        started = time.monotonic()
        with pytest.raises(InsuranceUnavailable, match="Retry-After"):
            await client.get_settlements(["S-1"])
        assert time.monotonic() - started < 0.5
    finally:
        await client.aclose()


async def test_a_hanging_system_times_out(simulator, admin):
    client = client_for(simulator, max_attempts=1, timeout=0.3)
    try:
        await admin.set_faults(hang=True)
        started = time.monotonic()
        with pytest.raises(InsuranceUnavailable, match="ReadTimeout"):
            await client.get_settlements(["S-1"])
        assert 0.3 <= time.monotonic() - started < 1.5
    finally:
        await admin.set_faults()
        await client.aclose()


@pytest.mark.parametrize("mode", ["503", "reset"])
async def test_a_down_system_is_unavailable(insurance_client, admin, mode):
    await admin.set_faults(down=mode)
    with pytest.raises(InsuranceUnavailable):
        await insurance_client.get_coverage([national_id(1)], date(2024, 1, 1))
    assert (await admin.stats())["total"] == 3  # every attempt reached it


async def test_the_breaker_opens_refuses_then_probes_and_closes(simulator, admin):
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout=0.5)
    client = client_for(simulator, max_attempts=1, breaker=breaker)
    try:
        await admin.set_faults(down="503")
        for _ in range(2):
            with pytest.raises(InsuranceUnavailable, match="HTTP 503"):
                await client.get_settlements(["S-1"])
        assert client.breaker_state == "open"

        await admin.reset_stats()
        started = time.monotonic()
        for _ in range(5):
            with pytest.raises(InsuranceUnavailable, match="circuit breaker open"):
                await client.get_settlements(["S-1"])
        assert time.monotonic() - started < 0.1
        assert (await admin.stats())["total"] == 0
        assert client.stats.rejected == 5

        await asyncio.sleep(0.5)
        assert client.breaker_state == "half_open"
        # Still down: the one probe fails and the breaker re-opens.
        with pytest.raises(InsuranceUnavailable, match="HTTP 503"):
            await client.get_settlements(["S-1"])
        assert client.breaker_state == "open"
        assert (await admin.stats())["total"] == 1

        await asyncio.sleep(0.5)
        await admin.set_faults(latency_ms=100)
        await admin.reset_stats()
        # Two callers at once in half-open: only the probe goes out, and it closes the breaker.
        probe, other = await asyncio.gather(client.get_settlements(["S-1"]), client.get_settlements(["S-2"]),
                                            return_exceptions=True)
        assert probe == {}
        assert isinstance(other, InsuranceUnavailable)
        assert (await admin.stats())["total"] == 1
        assert client.breaker_state == "closed"
        assert await client.get_settlements(["S-2"]) == {}
    finally:
        await client.aclose()


async def test_the_token_is_sent_and_required(database_url):
    running = await start_simulator(database_url, token="s3cret")
    with_token = InsuranceClient(base_url=running.url, token="s3cret", timeout=0.5)
    without = InsuranceClient(base_url=running.url, timeout=0.5)
    try:
        assert (await with_token.get_coverage([national_id(1)], date(2024, 1, 1)))[national_id(1)].insured is False
        with pytest.raises(InsuranceUnavailable, match="HTTP 401") as refused:
            await without.get_coverage([national_id(1)], date(2024, 1, 1))
        assert refused.value.status == 401
        assert without.stats.attempts == 1  # a refusal is not retried
    finally:
        await with_token.aclose()
        await without.aclose()
        await running.stop()


async def test_a_settlement_added_at_run_time_is_returned(insurance_client, admin):
    assert await insurance_client.get_settlements(["S-new"]) == {}
    await admin.add(settlements=[settlement_json("S-new", national_id(5), diagnosis_name="股骨颈骨折")])
    found = await insurance_client.get_settlements(["S-new"])
    assert found["S-new"].diagnosis_name == "股骨颈骨折"


async def test_no_national_id_is_logged(insurance_client, admin, caplog):
    person = national_id(1)
    await admin.set_faults(down="503")
    with caplog.at_level("DEBUG"):
        with pytest.raises(InsuranceUnavailable):
            await insurance_client.search_settlements([person], datetime(2024, 1, 1, tzinfo=SHANGHAI))
    assert caplog.records
    assert person not in caplog.text
