"""The settlement path through the service, over real PostgreSQL and the HTTP simulator."""
from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal

import asyncpg
import pytest
import pytest_asyncio

from resolvers import claims_service as service
from simulator.admin import settlement_json
from sources.database import StatementCount
from tests.settlement_data import LI, WANG, Person, ZHAO, create_union, insured, viewer
from web.errors import BadUserInput, GatewayError, NotFound, UpstreamUnavailable

D = Decimal
CITY = viewer("city")


@pytest_asyncio.fixture
async def union(databases):
    async with databases.members.acquire() as conn:
        await create_union(conn)
    return databases


@pytest_asyncio.fixture
async def admin(simulator):
    async with simulator.admin() as client:
        await client.add(coverage=[insured(WANG), insured(LI), insured(ZHAO)])
        yield client


async def enrol(databases, insurance, person=WANG, plan="HCA", start="2026-01-01", v=CITY):
    return await service.enroll_member(databases=databases, insurance=insurance, viewer=v, member_id=person.id,
                                       plan_code=plan, coverage_start=date.fromisoformat(start))


async def submit(databases, insurance, settlement_id, person=WANG, v=CITY):
    return await service.submit_hospitalization_claim(databases=databases, insurance=insurance, viewer=v,
                                                      member_id=person.id, settlement_id=settlement_id)


def stay(sid, person=WANG, **fields):
    fields.setdefault("admission_date", "2026-03-02")
    fields.setdefault("discharge_date", "2026-03-06")
    fields.setdefault("diagnosis_code", "K35.8")
    fields.setdefault("self_pay_in_policy", "3000.00")
    return settlement_json(sid, person.national_id, **fields)


async def claim_rows(databases, member_id=None):
    return await databases.claims.fetch(
        "SELECT * FROM claims.claims WHERE $1::text IS NULL OR member_id = $1 ORDER BY id", member_id)


# --------------------------------------------------------------------------- enrolment

async def test_enrolment_terms_and_premium(union, admin, insurance_client):
    hca = await enrol(union, insurance_client, plan="HCA", start="2026-01-01")
    si5 = await enrol(union, insurance_client, plan="SI5", start="2024-02-29")
    fw3 = await enrol(union, insurance_client, plan="FW3", start="2026-01-31")
    assert (hca.coverage_start, hca.coverage_end, hca.premium_paid) == (date(2026, 1, 1), date(2026, 12, 31), D("120.00"))
    assert (si5.coverage_end, si5.premium_paid) == (date(2029, 2, 27), D("250.00"))
    assert (fw3.coverage_end, fw3.premium_paid, fw3.organization_id) == (date(2029, 1, 30), D("90.00"), "g1")


async def test_enrolment_refusals(union, admin, insurance_client):
    await admin.add(coverage=[{"national_id": ZHAO.national_id, "insured": False, "scheme": None, "since": None}])
    with pytest.raises(BadUserInput) as not_insured:
        await enrol(union, insurance_client, person=ZHAO)
    assert not_insured.value.extensions == {"code": "BAD_USER_INPUT", "reason": "NO_MEDICAL_INSURANCE"}

    with pytest.raises(BadUserInput) as man:
        await enrol(union, insurance_client, person=LI, plan="FW3")
    assert man.value.extensions["reason"] == "NOT_ELIGIBLE" and "FEMALE" in man.value.message

    with pytest.raises(BadUserInput) as unknown:
        await enrol(union, insurance_client, plan="XYZ")
    assert unknown.value.extensions["reason"] == "UNKNOWN_PLAN"

    await enrol(union, insurance_client, start="2026-01-01")
    for overlapping in ("2026-12-31", "2025-01-02", "2026-06-01"):
        with pytest.raises(BadUserInput) as overlap:
            await enrol(union, insurance_client, start=overlapping)
        assert overlap.value.extensions["reason"] == "OVERLAPPING_ENROLLMENT"
    # The day after the term ends, and the term ending the day before it starts, are renewals.
    await enrol(union, insurance_client, start="2027-01-01")
    await enrol(union, insurance_client, start="2025-01-01")
    # Another plan over the same days is fine.
    await enrol(union, insurance_client, plan="SI5", start="2026-01-01")

    with pytest.raises(NotFound):
        await enrol(union, insurance_client, person=ZHAO, v=viewer("d1"))  # Zhao is under d2
    with pytest.raises(NotFound):
        await enrol(union, insurance_client, v=viewer("d2"))
    rows = await union.claims.fetch("SELECT member_id, plan_code, coverage_start FROM claims.enrollments ORDER BY 1, 2, 3")
    assert [tuple(r) for r in rows] == [
        (WANG.id, "HCA", date(2025, 1, 1)), (WANG.id, "HCA", date(2026, 1, 1)), (WANG.id, "HCA", date(2027, 1, 1)),
        (WANG.id, "SI5", date(2026, 1, 1)),
    ]


async def test_enrolment_when_insurance_is_down(union, admin, insurance_client):
    await admin.set_faults(down="503")
    with pytest.raises(UpstreamUnavailable):
        await enrol(union, insurance_client)
    assert await union.claims.fetchval("SELECT count(*) FROM claims.enrollments") == 0


async def test_concurrent_overlapping_enrolments_make_one(union, admin, insurance_client):
    results = await asyncio.gather(*(enrol(union, insurance_client, start=f"2026-01-{d:02d}") for d in range(1, 11)),
                                   return_exceptions=True)
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, BadUserInput) for r in results if isinstance(r, Exception))
    assert await union.claims.fetchval("SELECT count(*) FROM claims.enrollments") == 1


# --------------------------------------------------------------------------- hospitalization claims

async def test_worked_example_is_approved_at_once(union, admin, insurance_client):
    await enrol(union, insurance_client, start="2025-01-01")
    await enrol(union, insurance_client, start="2026-01-01")
    await admin.add(settlements=[stay("S-WANG", admission_date="2026-10-08", discharge_date="2026-11-02",
                                      diagnosis_code="C34.9", diagnosis_name="肺恶性肿瘤", self_pay_in_policy="47186.00")])
    claim = await submit(union, insurance_client, "S-WANG")
    assert (claim.status, claim.rejection_reason, claim.total_payout) == ("APPROVED", None, D("34343.00"))
    assert [(l.plan_code, l.benefit, l.amount) for l in claim.lines] == [
        ("HCA", "MEDICAL", D("23093.00")), ("HCA", "HOSPITAL_ALLOWANCE", D("1250.00")),
        ("HCA", "CRITICAL_ILLNESS", D("10000.00"))]
    assert claim.decided_at is not None and claim.kind == "HOSPITALIZATION" and claim.origin == "SUBMITTED"
    # The same stay again returns the first claim, unchanged, and asks the insurance system nothing.
    calls = insurance_client.stats.calls
    again = await submit(union, insurance_client, "S-WANG")
    assert again == claim and insurance_client.stats.calls == calls


@pytest.mark.parametrize(("case", "sid", "status", "reason"), [
    ("unknown settlement", "S-NONE", "REJECTED", "SETTLEMENT_NOT_FOUND"),
    ("another person's stay", "S-LI", "REJECTED", "MEMBER_MISMATCH"),
    ("before the enrolment", "S-EARLY", "REJECTED", "NOT_ENROLLED"),
    ("in the waiting period", "S-WAIT", "REJECTED", "WAITING_PERIOD"),
    ("nothing payable", "S-SMALL", "REJECTED", "NOTHING_PAYABLE"),
    ("payable", "S-OK", "APPROVED", None),
])
async def test_decisions(union, admin, insurance_client, case, sid, status, reason):
    await enrol(union, insurance_client, start="2026-01-01")
    await admin.add(settlements=[
        stay("S-LI", LI),
        stay("S-EARLY", admission_date="2025-12-20", discharge_date="2025-12-24"),
        stay("S-WAIT", admission_date="2026-01-20", discharge_date="2026-01-24"),
        stay("S-OK"),
    ])
    if sid == "S-SMALL":
        # Only SI5 covers (HCA cancelled): a non-critical diagnosis pays nothing.
        await union.claims.execute("UPDATE claims.enrollments SET cancelled = true WHERE plan_code = 'HCA'")
        await enrol(union, insurance_client, plan="SI5", start="2025-06-01")
        await admin.add(settlements=[stay("S-SMALL")])
    claim = await submit(union, insurance_client, sid)
    assert (claim.status, claim.rejection_reason) == (status, reason), case
    assert (claim.total_payout > 0) == (status == "APPROVED")
    assert bool(claim.lines) == (status == "APPROVED")


async def test_out_of_scope_member_is_not_found_and_nothing_is_written(union, admin, insurance_client):
    await enrol(union, insurance_client)
    await admin.add(settlements=[stay("S-OK")])
    with pytest.raises(NotFound) as missing:
        await submit(union, insurance_client, "S-OK", v=viewer("d2"))
    with pytest.raises(NotFound) as unknown:
        await submit(union, insurance_client, "S-OK", person=Person("m-nobody", "", "", "", ""))
    assert missing.value.message.replace(WANG.id, "X") == unknown.value.message.replace("m-nobody", "X")
    assert await claim_rows(union) == []
    # Once the claim exists, another district still learns nothing of it.
    await submit(union, insurance_client, "S-OK")
    with pytest.raises(NotFound) as after:
        await submit(union, insurance_client, "S-OK", v=viewer("d2"))
    assert after.value.message == missing.value.message
    with pytest.raises(BadUserInput):
        await submit(union, insurance_client, "   ")


async def test_twenty_identical_submissions_make_one_claim(union, admin, insurance_client):
    await enrol(union, insurance_client)
    await admin.add(settlements=[stay("S-OK", self_pay_in_policy="5000.00")])
    claims = await asyncio.gather(*(submit(union, insurance_client, "S-OK") for _ in range(20)))
    assert len({c.id for c in claims}) == 1
    assert {c.total_payout for c in claims} == {D("2200.00")}
    assert len(await claim_rows(union)) == 1
    assert await union.claims.fetchval("SELECT count(*) FROM claims.claim_lines") == 2


async def test_concurrent_claims_of_one_member_never_exceed_the_caps(union, admin, insurance_client):
    await enrol(union, insurance_client)
    # Eight stays of 40 days, 13000.00 self-pay each: 8 × 6000.00 asked of a 30000.00 cap, 320 of 180 days.
    await admin.add(settlements=[
        stay(f"S-{n}", admission_date=f"2026-{n + 2:02d}-01", discharge_date=f"2026-{n + 3:02d}-10",
             self_pay_in_policy="13000.00", diagnosis_code="I21.4")
        for n in range(1, 9)
    ])
    claims = await asyncio.gather(*(submit(union, insurance_client, f"S-{n}") for n in range(1, 9)))
    lines = [line for c in claims for line in c.lines]
    assert sum(l.amount for l in lines if l.benefit == "MEDICAL") == D("30000.00")
    assert sum(l.days for l in lines if l.benefit == "HOSPITAL_ALLOWANCE") == 180
    assert sum(l.amount for l in lines if l.benefit == "HOSPITAL_ALLOWANCE") == D("9000.00")
    assert [l.amount for l in lines if l.benefit == "CRITICAL_ILLNESS"] == [D("10000.00")]
    totals = await union.claims.fetchrow(
        "SELECT sum(total_payout) AS claims, (SELECT sum(amount) FROM claims.claim_lines) AS lines FROM claims.claims")
    assert totals["claims"] == totals["lines"] == D("49000.00")


#: A fresh claim: the member (members) and, beside it, the member's facts (enrolments, usage, schedule version,
#: the member's version, the claim under the key) in one statement; after the insurance call, the claim with its
#: lines and NOTIFY in one statement that takes the member's lock and checks the version (claims). The schedule
#: itself comes from memory while its version is unchanged.
FRESH_CLAIM_STATEMENTS = {"members": 1, "claims": 2}


async def counted_submit(databases, insurance, settlement_id):
    with StatementCount() as counts:
        claim = await submit(databases, insurance, settlement_id)
        await asyncio.sleep(0)  # asyncpg reports statements with call_soon
    return claim, dict(counts)


async def test_a_fresh_claim_runs_three_statements_and_a_repeat_four(union, admin, insurance_client):
    await enrol(union, insurance_client, start="2025-06-01")
    await admin.add(settlements=[stay("S-1"), stay("S-2", admission_date="2026-04-01", discharge_date="2026-04-03")])
    await submit(union, insurance_client, "S-1")  # the schedule at its current version is now in memory
    claim, fresh = await counted_submit(union, insurance_client, "S-2")
    assert (claim.status, claim.total_payout) == ("APPROVED", D("1100.00"))
    assert fresh == FRESH_CLAIM_STATEMENTS, fresh
    calls = insurance_client.stats.calls
    again, repeat = await counted_submit(union, insurance_client, "S-2")
    assert again == claim and insurance_client.stats.calls == calls
    assert repeat == {"members": 1, "claims": 3}, repeat  # the facts, the claim, its lines; nothing written


async def test_a_schedule_change_applies_to_the_next_claim(union, admin, insurance_client):
    await enrol(union, insurance_client, start="2025-06-01")
    await admin.add(settlements=[stay(f"S-{n}", admission_date=f"2026-0{n}-01", discharge_date=f"2026-0{n}-03",
                                      diagnosis_code="J18.9") for n in range(1, 5)])
    first = await submit(union, insurance_client, "S-1")  # 50% of 2000.00 above the deductible, 2 days
    assert [(l.benefit, l.amount) for l in first.lines] == [("MEDICAL", D("1000.00")), ("HOSPITAL_ALLOWANCE", D("100.00"))]
    # The union pays 80% from now on: the next claim, on this replica, without a restart.
    await union.claims.execute(
        "UPDATE claims.plan_benefits SET rate = 0.8 WHERE plan_code = 'HCA' AND kind = 'MEDICAL'")
    second = await submit(union, insurance_client, "S-2")
    assert [(l.benefit, l.amount) for l in second.lines] == [("MEDICAL", D("1600.00")), ("HOSPITAL_ALLOWANCE", D("100.00"))]
    # A new critical diagnosis (a row of another table) applies just as fast.
    await union.claims.execute("INSERT INTO claims.diagnosis_lists (list_name, prefix_from, prefix_to) VALUES ('CRITICAL', 'J18', 'J18')")
    third = await submit(union, insurance_client, "S-3")
    assert ("CRITICAL_ILLNESS", D("10000.00")) in [(l.benefit, l.amount) for l in third.lines]
    # And a change rolled back never applies.
    async with union.claims.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await conn.execute("UPDATE claims.plan_benefits SET amount = 999.00 WHERE kind = 'HOSPITAL_ALLOWANCE'")
        await tx.rollback()
    fourth = await submit(union, insurance_client, "S-4")
    assert ("HOSPITAL_ALLOWANCE", D("100.00")) in [(l.benefit, l.amount) for l in fourth.lines]


# --------------------------------------------------------------------------- accident claims

async def accident(databases, grade, ref="A-1", day="2026-01-01", person=WANG):
    return await service.submit_accident_claim(databases=databases, viewer=CITY, member_id=person.id,
                                               accident_date=date.fromisoformat(day), disability_grade=grade,
                                               assessment_ref=ref)


async def test_accident_claims(union, admin, insurance_client):
    await enrol(union, insurance_client, start="2026-01-01")
    first = await accident(union, 3, "A-1", "2026-01-01")  # no waiting period for accidents
    assert (first.status, first.total_payout, first.kind) == ("APPROVED", D("24000.00"), "ACCIDENT_DISABILITY")
    assert [(l.plan_code, l.benefit, l.amount) for l in first.lines] == [("HCA", "DISABILITY", D("24000.00"))]
    assert await accident(union, 3, "A-1", "2026-01-01") == first
    with pytest.raises(BadUserInput):
        await accident(union, 5, "A-1", "2026-01-01")  # same reference, other facts
    late = await accident(union, 10, "A-2", "2027-01-01")
    assert (late.status, late.rejection_reason, late.total_payout) == ("REJECTED", "NOT_ENROLLED", D("0.00"))
    for grade in (0, 11):
        with pytest.raises(BadUserInput) as bad:
            await accident(union, grade, f"A-{grade}")
        assert "between 1 and 10" in bad.value.message
    assert len(await claim_rows(union)) == 2


# --------------------------------------------------------------------------- insurance down

async def test_insurance_down_keeps_the_claim_pending_then_decides_it_exactly_once(union, admin, insurance_client):
    await enrol(union, insurance_client, start="2025-01-01")
    await enrol(union, insurance_client, start="2026-01-01")
    await admin.add(settlements=[stay("S-WANG", admission_date="2026-10-08", discharge_date="2026-11-02",
                                      diagnosis_code="C34.9", self_pay_in_policy="47186.00")])
    await admin.set_faults(down="503")
    pending = await submit(union, insurance_client, "S-WANG")
    assert (pending.status, pending.lines, pending.decided_at, pending.total_payout) == (
        "PENDING_REVIEW", (), None, D("0.00"))
    assert (await submit(union, insurance_client, "S-WANG")).id == pending.id
    assert await service.decide_pending_claims(databases=union, insurance=insurance_client) == 0

    await admin.set_faults()
    await asyncio.sleep(1.1)  # the client's breaker cools down
    decided = await asyncio.gather(
        service.decide_pending_claims(databases=union, insurance=insurance_client),
        service.decide_pending_claims(databases=union, insurance=insurance_client),
    )
    assert sorted(decided) == [0, 1]
    claim = (await submit(union, insurance_client, "S-WANG"))
    assert (claim.id, claim.status, claim.total_payout, len(claim.lines)) == (pending.id, "APPROVED", D("34343.00"), 3)
    assert await service.decide_pending_claims(databases=union, insurance=insurance_client) == 0
    assert await union.claims.fetchval("SELECT count(*) FROM claims.claim_lines") == 3


async def test_review_of_pending_claims(union, admin, insurance_client):
    await enrol(union, insurance_client, start="2025-06-01")
    await admin.add(settlements=[stay("S-1"), stay("S-2")])
    await admin.set_faults(down="503")
    one = await submit(union, insurance_client, "S-1")
    two = await submit(union, insurance_client, "S-2")
    rejected = await service.review_claim(databases=union, insurance=insurance_client, viewer=CITY,
                                          claim_id=str(one.id), approve=False, note="duplicate paper claim")
    assert (rejected.status, rejected.rejection_reason, rejected.review_note) == (
        "REJECTED", "NOT_ELIGIBLE", "duplicate paper claim")
    with pytest.raises(UpstreamUnavailable):
        await service.review_claim(databases=union, insurance=insurance_client, viewer=CITY, claim_id=str(two.id),
                                   approve=True)
    await admin.set_faults()
    await asyncio.sleep(1.1)
    with pytest.raises(NotFound):
        await service.review_claim(databases=union, insurance=insurance_client, viewer=viewer("d2"),
                                   claim_id=str(two.id), approve=True)
    approved = await service.review_claim(databases=union, insurance=insurance_client, viewer=CITY,
                                          claim_id=str(two.id), approve=True, note="ok")
    assert (approved.status, approved.total_payout) == ("APPROVED", D("1200.00"))
    with pytest.raises(BadUserInput) as again:
        await service.review_claim(databases=union, insurance=insurance_client, viewer=CITY, claim_id=str(two.id),
                                   approve=False)
    assert again.value.extensions["reason"] == "NOT_PENDING_REVIEW"
    for bad_id in ("nope", "0", "99999", "9" * 30):
        with pytest.raises(NotFound):
            await service.review_claim(databases=union, insurance=insurance_client, viewer=CITY, claim_id=bad_id,
                                       approve=False)


# --------------------------------------------------------------------------- payment

async def test_mark_claim_paid(union, admin, insurance_client):
    await enrol(union, insurance_client, start="2025-06-01")
    await admin.add(settlements=[stay("S-1"), stay("S-2"), stay("S-LI", LI)])
    approved = await submit(union, insurance_client, "S-1")
    other = await submit(union, insurance_client, "S-2")
    rejected = await submit(union, insurance_client, "S-LI")

    async def pay(claim, ref, v=CITY):
        return await service.mark_claim_paid(databases=union, viewer=v, claim_id=str(claim.id), payment_ref=ref)

    paid = await asyncio.gather(*(pay(approved, "PAY-1") for _ in range(10)))
    assert {(p.status, p.payment_ref, p.paid_at) for p in paid} == {("PAID", "PAY-1", paid[0].paid_at)}
    rows = await union.claims.fetch("SELECT claim_id, payment_ref, amount FROM claims.payments")
    assert [tuple(r) for r in rows] == [(approved.id, "PAY-1", D("1200.00"))]
    for claim, ref, reason in [(approved, "PAY-9", "NOT_PAYABLE"), (rejected, "PAY-2", "NOT_PAYABLE"),
                               (other, "PAY-1", "PAYMENT_REF_TAKEN")]:
        with pytest.raises(BadUserInput) as refused:
            await pay(claim, ref)
        assert refused.value.extensions["reason"] == reason
    with pytest.raises(NotFound):
        await pay(other, "PAY-3", v=viewer("d2"))
    assert (await pay(other, "PAY-3")).status == "PAID"
    assert await union.claims.fetchval("SELECT count(*) FROM claims.payments") == 2


# --------------------------------------------------------------------------- database faults

async def test_claims_database_connections_killed_while_submitting(union, admin, insurance_client, database_url):
    await enrol(union, insurance_client, start="2025-06-01")
    await admin.add(settlements=[stay(f"S-{n}", self_pay_in_policy=f"{1500 + n}.00") for n in range(30)])
    killer = await asyncpg.connect(database_url)
    stop = asyncio.Event()

    async def kill_claims_connections() -> int:
        killed = 0
        while not stop.is_set():
            killed += await killer.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = 'union-gateway/claims' AND datname = current_database()")
            await asyncio.sleep(0.003)
        return killed

    killing = asyncio.create_task(kill_claims_connections())
    try:
        results = await asyncio.gather(*(submit(union, insurance_client, f"S-{n}") for n in range(30)),
                                       return_exceptions=True)
    finally:
        stop.set()
        killed = await killing
        await killer.close()
    assert killed > 0
    for result in results:
        # Either a decided claim or an error with a code; never a raw driver error.
        assert isinstance(result, GatewayError) or getattr(result, "status", None) == "APPROVED", repr(result)
        if isinstance(result, GatewayError):
            assert result.code == "UPSTREAM_UNAVAILABLE"
    retried = [await submit(union, insurance_client, f"S-{n}") for n in range(30)]
    for before, after in zip(results, retried):
        if not isinstance(before, Exception):
            assert after == before
    assert all(c.status == "APPROVED" for c in retried)
    # Nothing half-written: every claim's lines add up to its payout, and no stay was claimed twice.
    mismatched = await union.claims.fetchval(
        "SELECT count(*) FROM claims.claims c WHERE total_payout <>"
        " coalesce((SELECT sum(amount) FROM claims.claim_lines l WHERE l.claim_id = c.id), 0)")
    assert mismatched == 0
    assert len(await claim_rows(union)) == 30
