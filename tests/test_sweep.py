"""The proactive sweep: batching, idempotent re-runs, remembered position, pending claims, the CLI."""
from __future__ import annotations

import asyncio
import os
import sys
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio

from resolvers import claims_service as service
from resolvers.sweep import BEGINNING, sweep_settlements
from simulator.admin import settlement_json
from sources import claims_store as store
from sources.insurance_records import InsuranceUnavailable
from tests.settlement_data import Person, add_members, create_union, national_id, viewer

ROOT = Path(__file__).resolve().parent.parent
CST = timezone(timedelta(hours=8))
MEMBERS = 1000


def person(n: int) -> Person:
    return Person(f"s{n:04d}", f"成员{n}", "FEMALE", national_id(7, born=date(1970, 1, 1) + timedelta(days=n)), "g1")


def stay(sid: str, who: Person, admission: str, settled: datetime, self_pay: str = "3000.00") -> dict:
    admitted = date.fromisoformat(admission)
    return settlement_json(sid, who.national_id, admission_date=admitted, discharge_date=admitted + timedelta(days=4),
                           self_pay_in_policy=self_pay, settled_at=settled)


@pytest_asyncio.fixture
async def enrolled(databases):
    """1 000 members, each holding HCA for 2026."""
    people = [person(n) for n in range(MEMBERS)]
    async with databases.members.acquire() as conn:
        await create_union(conn, people=[])
        await add_members(conn, people)
    await databases.claims.executemany(
        "INSERT INTO claims.enrollments (member_id, organization_id, plan_code, coverage_start, coverage_end,"
        " premium_paid) VALUES ($1, 'g1', 'HCA', '2026-01-01', '2026-12-31', 120.00)",
        [(p.id,) for p in people])
    return people


async def test_sweep_batches_opens_and_remembers(databases, enrolled, simulator, insurance_client):
    people = enrolled
    stranger = Person("x", "", "FEMALE", national_id(9, born=date(1960, 1, 1)), "g1")
    async with simulator.admin() as admin:
        await admin.add(settlements=[
            stay("SW-1", people[0], "2026-03-01", datetime(2026, 3, 6, 10, tzinfo=CST)),
            stay("SW-2", people[450], "2026-04-01", datetime(2026, 4, 6, 10, tzinfo=CST), "500.00"),
            stay("SW-3", people[999], "2026-01-10", datetime(2026, 1, 15, 10, tzinfo=CST)),  # in waiting
            stay("SW-4", people[1], "2025-11-01", datetime(2025, 11, 6, 10, tzinfo=CST)),  # before coverage
            stay("SW-5", stranger, "2026-03-01", datetime(2026, 3, 6, 10, tzinfo=CST)),  # not a member
        ])
        await admin.reset_stats()
        first = await sweep_settlements(databases=databases, insurance=insurance_client,
                                        now=datetime(2026, 11, 29, 12, tzinfo=CST))
        stats = await admin.stats()
    assert stats["calls"] == {"/v1/settlements/search": 5}
    assert stats["batch_sizes"]["/v1/settlements/search"] == [200] * 5
    assert (first.members, first.batches, first.settlements) == (1000, 5, 4)
    assert (first.opened, first.approved, first.rejected, first.not_covered) == (3, 2, 1, 1)
    rows = await databases.claims.fetch(
        "SELECT member_id, settlement_id, status, rejection_reason, total_payout, origin FROM claims.claims ORDER BY 2")
    assert [tuple(r) for r in rows] == [
        (people[0].id, "SW-1", "APPROVED", None, Decimal("1200.00"), "SWEEP"),
        (people[450].id, "SW-2", "APPROVED", None, Decimal("200.00"), "SWEEP"),
        (people[999].id, "SW-3", "REJECTED", "WAITING_PERIOD", Decimal("0.00"), "SWEEP"),
    ]
    assert await store.sweep_since(databases.claims) == datetime(2026, 11, 29, 12, tzinfo=CST)

    # Re-running from the remembered position finds nothing new; from the beginning, nothing twice.
    again = await sweep_settlements(databases=databases, insurance=insurance_client,
                                    now=datetime(2026, 11, 30, 12, tzinfo=CST))
    assert (again.since, again.settlements, again.opened) == (datetime(2026, 11, 29, 12, tzinfo=CST), 0, 0)
    everything = await sweep_settlements(databases=databases, insurance=insurance_client, since=BEGINNING,
                                         now=datetime(2026, 11, 30, 13, tzinfo=CST))
    assert (everything.settlements, everything.opened, everything.already_claimed) == (4, 0, 3)
    assert await databases.claims.fetchval("SELECT count(*) FROM claims.claims") == 3
    # A member submitting the same stay later gets the swept claim.
    claim = await service.submit_hospitalization_claim(databases=databases, insurance=insurance_client,
                                                       viewer=viewer("city"), member_id=people[0].id,
                                                       settlement_id="SW-1")
    assert (claim.origin, claim.status) == ("SWEEP", "APPROVED")


async def test_sweep_decides_pending_claims_and_stops_cleanly_when_insurance_is_down(
        databases, enrolled, simulator, insurance_client):
    who = enrolled[5]
    async with simulator.admin() as admin:
        await admin.add(settlements=[stay("SW-P", who, "2026-05-01", datetime(2026, 5, 6, tzinfo=CST))])
        await admin.set_faults(down="503")
        pending = await service.submit_hospitalization_claim(
            databases=databases, insurance=insurance_client, viewer=viewer("city"), member_id=who.id,
            settlement_id="SW-P")
        assert pending.status == "PENDING_REVIEW"
        with pytest.raises(InsuranceUnavailable):
            await sweep_settlements(databases=databases, insurance=insurance_client)
        assert await store.sweep_since(databases.claims) is None  # an unfinished sweep moves nothing
        await admin.set_faults()
    await asyncio.sleep(1.1)  # breaker cool-down
    report = await sweep_settlements(databases=databases, insurance=insurance_client)
    assert (report.opened, report.already_claimed, report.pending_decided) == (0, 1, 1)
    decided = await store.claim_by_id(databases.claims, pending.id)
    assert (decided.status, decided.total_payout, decided.origin) == ("APPROVED", Decimal("1200.00"), "SUBMITTED")


async def test_sweep_command(database_url, databases, simulator):
    async with databases.members.acquire() as conn:
        await create_union(conn, people=[])
        await add_members(conn, [person(1)])
    await databases.claims.execute(
        "INSERT INTO claims.enrollments (member_id, organization_id, plan_code, coverage_start, coverage_end,"
        " premium_paid) VALUES ($1, 'g1', 'HCA', '2025-06-01', '2026-05-31', 120.00)", person(1).id)
    async with simulator.admin() as admin:
        await admin.add(settlements=[stay("SW-C", person(1), "2026-02-01", datetime(2026, 2, 6, tzinfo=CST))])
    env = {**os.environ, "UNION_GATEWAY_DATABASE_URL": database_url, "UNION_GATEWAY_INSURANCE_URL": simulator.url}

    async def run(*args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "sweep", *args, cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        return proc.returncode, out.decode()

    code, out = await run("--since", "2026-01-01")
    assert code == 0, out
    assert "opened 1 claims (1 approved" in " ".join(out.split())
    code, out = await run("--since", "2026-01-01T00:00:00+08:00")
    assert code == 0 and "opened 0 claims" in " ".join(out.split()), out
    code, out = await run("--since", "yesterday")
    assert code == 2 and "--since" in out
    assert await databases.claims.fetchval("SELECT count(*) FROM claims.claims WHERE origin = 'SWEEP'") == 1
