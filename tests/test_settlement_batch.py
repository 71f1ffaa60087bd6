"""Concurrent settlement look-ups share one insurance call, over the HTTP simulator."""
from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from simulator.admin import settlement_json
from sources.insurance_records import InsuranceUnavailable
from sources.settlement_batch import SettlementBatcher, batcher_for
from tests.settlement_data import LI, WANG


def stay(sid, person=WANG):
    return settlement_json(sid, person.national_id, admission_date="2026-03-02", discharge_date="2026-03-06",
                           diagnosis_code="K35.8", self_pay_in_policy="3000.00")


async def test_concurrent_look_ups_share_one_call_and_each_gets_its_own_answer(simulator, insurance_client):
    async with simulator.admin() as admin:
        await admin.add(settlements=[stay("S-1"), stay("S-2", LI)])
    batcher = batcher_for(insurance_client)
    assert batcher_for(insurance_client) is batcher
    calls = insurance_client.stats.calls
    one, two, again, unknown = await asyncio.gather(
        batcher.get("S-1"), batcher.get("S-2"), batcher.get("S-1"), batcher.get("S-NONE"))
    assert insurance_client.stats.calls == calls + 1
    assert (one.settlement_id, one.national_id, one.self_pay_in_policy) == ("S-1", WANG.national_id, Decimal("3000.00"))
    assert (two.settlement_id, two.national_id) == ("S-2", LI.national_id)
    assert again == one and unknown is None
    # Look-ups that do not overlap are not held back for one another.
    await batcher.get("S-1")
    await batcher.get("S-2")
    assert insurance_client.stats.calls == calls + 3


async def test_more_ids_than_a_call_takes_are_split(simulator, insurance_client):
    calls = insurance_client.stats.calls
    found = await asyncio.gather(*(batcher_for(insurance_client).get(f"S-{n}") for n in range(201)))
    assert found == [None] * 201 and insurance_client.stats.calls == calls + 2  # 200 + 1, the contract's limit


async def test_when_the_system_is_down_every_waiter_gets_its_own_error(simulator, insurance_client):
    async with simulator.admin() as admin:
        await admin.set_faults(down="503")
    results = await asyncio.gather(*(batcher_for(insurance_client).get(f"S-{n}") for n in range(3)),
                                   return_exceptions=True)
    assert all(isinstance(r, InsuranceUnavailable) for r in results)
    assert len({id(r) for r in results}) == 3


async def test_a_cancelled_waiter_leaves_the_others_their_answers(simulator, insurance_client):
    async with simulator.admin() as admin:
        await admin.add(settlements=[stay("S-1")])
    batcher = SettlementBatcher(insurance_client)
    gone = asyncio.create_task(batcher.get("S-1"))
    kept = asyncio.create_task(batcher.get("S-1"))
    await asyncio.sleep(0)
    gone.cancel()
    assert (await kept).settlement_id == "S-1"
    with pytest.raises(asyncio.CancelledError):
        await gone
