"""The claim decision against the default schedule as the migrations load it (RULES.md)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import asyncpg
import pytest
import pytest_asyncio

from resolvers.decision import (
    Decision, InvalidClaim, Term, Usage, decide_accident, decide_hospitalization, to_cent,
)
from resolvers.plan_schedule import DiagnosisRange, Schedule, load_schedule
from tests import pg

NID = "110101199003077777"
OTHER_NID = "110101199003071234"
D = Decimal


@dataclass(frozen=True)
class Stay:
    national_id: str
    admission_date: date
    discharge_date: date
    diagnosis_code: str
    self_pay_in_policy: Decimal


@pytest_asyncio.fixture(scope="module")
async def schedule(pg_admin_url: str, pg_template: str) -> Schedule:
    name = await pg.create_database(pg_admin_url, pg_template)
    try:
        conn = await asyncpg.connect(pg.with_database(pg_admin_url, name))
        try:
            return await load_schedule(conn)
        finally:
            await conn.close()
    finally:
        await pg.drop_database(pg_admin_url, name)


def stay(admission: str = "2026-03-10", discharge: str = "2026-03-15", code: str = "J18.9",
         self_pay: str = "3000.00", nid: str = NID) -> Stay:
    return Stay(nid, date.fromisoformat(admission), date.fromisoformat(discharge), code, D(self_pay))


def term(id: int, plan: str, start: str, end: str | None = None, cancelled: bool = False) -> Term:
    s = date.fromisoformat(start)
    months = {"HCA": 12, "SI5": 60, "FW3": 36}[plan]
    from resolvers.plan_schedule import add_months

    e = date.fromisoformat(end) if end else add_months(s, months) - timedelta(days=1)
    return Term(id=id, plan_code=plan, coverage_start=s, coverage_end=e, cancelled=cancelled)


HCA_2026 = term(1, "HCA", "2026-01-01")
HCA_2025 = term(2, "HCA", "2025-01-01")


def amounts(decision: Decision) -> dict[tuple[str, str], Decimal]:
    return {(line.plan_code, line.benefit): line.amount for line in decision.lines}


def test_worked_example_wang(schedule: Schedule) -> None:
    decision = decide_hospitalization(
        settlement=stay("2026-10-08", "2026-11-02", "C34.9", "47186.00"),
        national_id=NID, enrollments=[HCA_2025, HCA_2026], schedule=schedule, usage={},
    )
    assert decision.status == "APPROVED" and decision.rejection_reason is None
    assert amounts(decision) == {
        ("HCA", "MEDICAL"): D("23093.00"),
        ("HCA", "HOSPITAL_ALLOWANCE"): D("1250.00"),
        ("HCA", "CRITICAL_ILLNESS"): D("10000.00"),
    }
    assert [line.benefit for line in decision.lines] == ["MEDICAL", "HOSPITAL_ALLOWANCE", "CRITICAL_ILLNESS"]
    assert decision.total == D("34343.00") and str(decision.total) == "34343.00"
    assert all(line.enrollment_id == HCA_2026.id for line in decision.lines)
    assert decision.lines[1].days == 25


@pytest.mark.parametrize(
    ("case", "settlement", "enrollments", "status", "reason"),
    [
        ("no settlement", None, [HCA_2026], "REJECTED", "SETTLEMENT_NOT_FOUND"),
        ("someone else's stay", stay(nid=OTHER_NID), [HCA_2026], "REJECTED", "MEMBER_MISMATCH"),
        ("no enrolment at all", stay(), [], "REJECTED", "NOT_ENROLLED"),
        ("admitted before coverage", stay("2025-12-31", "2026-01-05"), [HCA_2026], "REJECTED", "NOT_ENROLLED"),
        ("admitted after coverage", stay("2027-01-01", "2027-01-05"), [HCA_2026], "REJECTED", "NOT_ENROLLED"),
        ("cancelled enrolment", stay(), [term(1, "HCA", "2026-01-01", cancelled=True)], "REJECTED", "NOT_ENROLLED"),
        ("admitted on day 1", stay("2026-01-01", "2026-01-03"), [HCA_2026], "REJECTED", "WAITING_PERIOD"),
        ("admitted on day 30", stay("2026-01-30", "2026-02-03"), [HCA_2026], "REJECTED", "WAITING_PERIOD"),
        ("admitted on day 31", stay("2026-01-31", "2026-02-03", self_pay="1000.00"), [HCA_2026], "APPROVED", None),
        ("continuous renewal waives waiting", stay("2026-01-02", "2026-01-04"), [HCA_2025, HCA_2026], "APPROVED", None),
        ("a gap of one day is no renewal", stay("2026-01-02", "2026-01-04"),
         [term(2, "HCA", "2025-01-01", "2025-12-30"), HCA_2026], "REJECTED", "WAITING_PERIOD"),
        ("a cancelled previous term is no renewal", stay("2026-01-02", "2026-01-04"),
         [term(2, "HCA", "2025-01-01", cancelled=True), HCA_2026], "REJECTED", "WAITING_PERIOD"),
        ("renewal of another plan is no renewal", stay("2026-01-02", "2026-01-04", "C34.9"),
         [term(2, "SI5", "2021-01-01"), HCA_2026], "REJECTED", "WAITING_PERIOD"),
        ("SI5 covers but diagnosis not critical", stay(code="J18.9"), [term(3, "SI5", "2025-06-01")],
         "REJECTED", "NOTHING_PAYABLE"),
        ("FW3 covers but diagnosis not on female list", stay(code="C34.9"), [term(4, "FW3", "2025-06-01")],
         "REJECTED", "NOTHING_PAYABLE"),
        ("FW3 in waiting and SI5 past it but nothing payable", stay("2026-01-05", "2026-01-06", "J18.9"),
         [term(4, "FW3", "2026-01-01"), term(3, "SI5", "2025-01-01")], "REJECTED", "NOTHING_PAYABLE"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_outcomes(schedule: Schedule, case: str, settlement: Stay | None, enrollments: list[Term],
                  status: str, reason: str | None) -> None:
    decision = decide_hospitalization(settlement=settlement, national_id=NID, enrollments=enrollments,
                                      schedule=schedule, usage={})
    assert (decision.status, decision.rejection_reason) == (status, reason), case
    if status == "REJECTED":
        assert decision.lines == () and decision.total == D("0.00")
    else:
        assert decision.total > 0 and all(line.amount > 0 for line in decision.lines)


def test_day_31_with_self_pay_at_deductible_pays_only_the_allowance(schedule: Schedule) -> None:
    decision = decide_hospitalization(settlement=stay("2026-01-31", "2026-02-03", self_pay="1000.00"),
                                      national_id=NID, enrollments=[HCA_2026], schedule=schedule, usage={})
    assert amounts(decision) == {("HCA", "HOSPITAL_ALLOWANCE"): D("150.00")}


@pytest.mark.parametrize(
    ("self_pay", "medical"),
    [
        ("1000.00", None),
        ("999.99", None),
        ("0.00", None),
        ("1000.01", "0.01"),   # 0.005 rounds half up to 0.01
        ("1000.02", "0.01"),
        ("1000.03", "0.02"),   # 0.015 → 0.02, not banker's 0.02/0.01
        ("1000.05", "0.03"),   # 0.025 → 0.03 (half even would give 0.02)
        ("1001.00", "0.50"),
        ("61000.00", "30000.00"),
        ("90000.00", "30000.00"),
    ],
)
def test_medical_share_rounds_half_up_at_the_cent(schedule: Schedule, self_pay: str, medical: str | None) -> None:
    decision = decide_hospitalization(settlement=stay(self_pay=self_pay), national_id=NID, enrollments=[HCA_2026],
                                      schedule=schedule, usage={})
    assert amounts(decision).get(("HCA", "MEDICAL")) == (D(medical) if medical else None)


def test_to_cent_is_half_up() -> None:
    assert to_cent(D("0.005")) == D("0.01")
    assert to_cent(D("0.015")) == D("0.02")
    assert to_cent(D("0.025")) == D("0.03")
    assert to_cent(D("0.0049")) == D("0.00")


@pytest.mark.parametrize(
    ("admission", "discharge", "days"),
    [("2026-03-10", "2026-03-10", 1), ("2026-03-10", "2026-03-11", 1), ("2026-03-10", "2026-03-12", 2),
     ("2026-02-27", "2026-03-02", 3), ("2026-03-01", "2026-12-01", 275)],
)
def test_allowance_days(schedule: Schedule, admission: str, discharge: str, days: int) -> None:
    decision = decide_hospitalization(settlement=stay(admission, discharge, self_pay="0"), national_id=NID,
                                      enrollments=[HCA_2026], schedule=schedule, usage={})
    expected_days = min(days, 180)
    assert amounts(decision) == {("HCA", "HOSPITAL_ALLOWANCE"): D(50) * expected_days}
    assert decision.lines[0].days == expected_days


def run_claims(schedule: Schedule, stays: list[Stay], enrollments: list[Term]) -> list[Decision]:
    """Decide claims one after another, feeding each one's lines into the next one's usage."""
    usage: dict[tuple[int, str], Usage] = {}
    decisions = []
    for s in stays:
        decision = decide_hospitalization(settlement=s, national_id=NID, enrollments=enrollments,
                                          schedule=schedule, usage=usage)
        for line in decision.lines:
            u = usage.get((line.enrollment_id, line.benefit), Usage())
            usage[(line.enrollment_id, line.benefit)] = Usage(u.amount + line.amount, u.days + (line.days or 0), u.lines + 1)
        decisions.append(decision)
    return decisions


def test_medical_cap_across_claims(schedule: Schedule) -> None:
    # 12000 + 12000 + 12000 asked, 30000 per enrolment: the third gets 6000, a fourth nothing.
    stays = [stay(f"2026-0{m}-01", f"2026-0{m}-02", self_pay="25000.00") for m in (3, 4, 5, 6)]
    decisions = run_claims(schedule, stays, [HCA_2026])
    medical = [amounts(d).get(("HCA", "MEDICAL")) for d in decisions]
    assert medical == [D("12000.00"), D("12000.00"), D("6000.00"), None]
    assert decisions[3].status == "APPROVED"  # the allowance is still paid
    assert sum(m for m in medical if m) == D("30000.00")


def test_medical_cap_is_per_enrolment(schedule: Schedule) -> None:
    stays = [stay("2025-05-01", "2025-05-02", self_pay="70000.00"), stay("2026-05-01", "2026-05-02", self_pay="70000.00")]
    decisions = run_claims(schedule, stays, [HCA_2025, HCA_2026])
    assert [amounts(d)[("HCA", "MEDICAL")] for d in decisions] == [D("30000.00"), D("30000.00")]
    assert [d.lines[0].enrollment_id for d in decisions] == [HCA_2025.id, HCA_2026.id]


def test_allowance_day_cap_across_claims(schedule: Schedule) -> None:
    # 100 + 70 + 30 days: the third gets 10 days, a fourth none and so nothing at all.
    stays = [stay("2026-02-01", "2026-05-12", self_pay="0"), stay("2026-06-01", "2026-08-10", self_pay="0"),
             stay("2026-09-01", "2026-10-01", self_pay="0"), stay("2026-11-01", "2026-11-05", self_pay="0")]
    decisions = run_claims(schedule, stays, [HCA_2026])
    assert [d.lines[0].days if d.lines else None for d in decisions] == [100, 70, 10, None]
    assert [amounts(d).get(("HCA", "HOSPITAL_ALLOWANCE")) for d in decisions] == [
        D("5000.00"), D("3500.00"), D("500.00"), None]
    assert (decisions[3].status, decisions[3].rejection_reason) == ("REJECTED", "NOTHING_PAYABLE")


def test_critical_illness_once_per_enrolment_per_plan(schedule: Schedule) -> None:
    enrollments = [HCA_2026, term(3, "SI5", "2025-01-01"), term(4, "FW3", "2025-01-01")]
    stays = [stay("2026-03-01", "2026-03-03", "C50.9", "0"), stay("2026-04-01", "2026-04-03", "C50.9", "0")]
    first, second = run_claims(schedule, stays, enrollments)
    assert amounts(first) == {
        ("HCA", "HOSPITAL_ALLOWANCE"): D("100.00"), ("HCA", "CRITICAL_ILLNESS"): D("10000.00"),
        ("SI5", "CRITICAL_ILLNESS"): D("5000.00"), ("FW3", "CRITICAL_ILLNESS"): D("8000.00"),
    }
    assert amounts(second) == {("HCA", "HOSPITAL_ALLOWANCE"): D("100.00")}


@pytest.mark.parametrize(
    ("code", "critical", "female"),
    [
        ("C34.9", True, False), ("C34", True, False), ("C349", True, False), ("C00", True, False),
        ("C97", True, False), ("C98", False, False), ("D00", False, False), ("B99", False, False),
        ("I21", True, False), ("I219", True, False), ("I21.4", True, False), ("I22", False, False),
        ("I2", False, False), ("I21A", False, False), ("I60.1", True, False), ("I61", True, False),
        ("I62", False, False), ("I63.9", True, False), ("N18.5", True, False), ("N18.6", True, False),
        ("N18.4", False, False), ("N18", False, False), ("N18.50", True, False), ("Z94.0", True, False),
        ("c50.1", True, True), ("C50", True, True), ("C53.9", True, True), ("C56", True, True),
        ("C57", True, False), ("C49.9", True, False), ("", False, False),
    ],
)
def test_diagnosis_lists(schedule: Schedule, code: str, critical: bool, female: bool) -> None:
    assert schedule.on_list("CRITICAL", code) is critical
    assert schedule.on_list("FEMALE", code) is female


def test_female_list_pays_fw3_only_on_female_diagnoses(schedule: Schedule) -> None:
    fw3 = term(4, "FW3", "2025-01-01")
    for code, expected in [("C53.1", D("8000.00")), ("C56", D("8000.00")), ("C57.0", None), ("N18.6", None)]:
        decision = decide_hospitalization(settlement=stay(code=code, self_pay="0"), national_id=NID,
                                          enrollments=[fw3], schedule=schedule, usage={})
        assert amounts(decision).get(("FW3", "CRITICAL_ILLNESS")) == expected, code


@pytest.mark.parametrize(("grade", "payout"), [
    (1, "30000.00"), (2, "27000.00"), (3, "24000.00"), (4, "21000.00"), (5, "18000.00"),
    (6, "15000.00"), (7, "12000.00"), (8, "9000.00"), (9, "6000.00"), (10, "3000.00"),
])
def test_disability_grades(schedule: Schedule, grade: int, payout: str) -> None:
    # Accidents have no waiting period: the day coverage starts is covered.
    decision = decide_accident(accident_date=date(2026, 1, 1), grade=grade, enrollments=[HCA_2026],
                               schedule=schedule, usage={})
    assert decision.status == "APPROVED"
    assert amounts(decision) == {("HCA", "DISABILITY"): D(payout)}


@pytest.mark.parametrize("grade", [0, 11, -1, 100])
def test_disability_grade_outside_range_is_invalid(schedule: Schedule, grade: int) -> None:
    with pytest.raises(InvalidClaim, match="between 1 and 10"):
        decide_accident(accident_date=date(2026, 3, 1), grade=grade, enrollments=[HCA_2026], schedule=schedule, usage={})


@pytest.mark.parametrize(("accident", "enrollments"), [
    (date(2025, 12, 31), [HCA_2026]),
    (date(2026, 3, 1), [term(3, "SI5", "2025-01-01"), term(4, "FW3", "2025-01-01")]),  # no accident benefit
    (date(2026, 3, 1), [term(1, "HCA", "2026-01-01", cancelled=True)]),
])
def test_accident_not_enrolled(schedule: Schedule, accident: date, enrollments: list[Term]) -> None:
    decision = decide_accident(accident_date=accident, grade=5, enrollments=enrollments, schedule=schedule, usage={})
    assert (decision.status, decision.rejection_reason, decision.lines) == ("REJECTED", "NOT_ENROLLED", ())


def test_schedule_is_data(schedule: Schedule) -> None:
    """A union that changes its rows changes the decision, with no code change."""
    plans = dict(schedule.plans)
    hca = plans["HCA"]
    plans["HCA"] = dataclasses.replace(hca, waiting_days=0, benefits=tuple(
        dataclasses.replace(b, rate=D("0.8"), deductible=D("500.00")) if b.kind == "MEDICAL" else b
        for b in hca.benefits
    ))
    lists = dict(schedule.diagnosis_lists, CRITICAL=(DiagnosisRange("J18", "J18"),))
    changed = Schedule(plans=plans, diagnosis_lists=lists)
    decision = decide_hospitalization(settlement=stay("2026-01-01", "2026-01-02", "J18.9", "1500.00"),
                                      national_id=NID, enrollments=[HCA_2026], schedule=changed, usage={})
    assert amounts(decision) == {("HCA", "MEDICAL"): D("800.00"), ("HCA", "HOSPITAL_ALLOWANCE"): D("50.00"),
                                 ("HCA", "CRITICAL_ILLNESS"): D("10000.00")}


def test_plan_terms_from_schedule(schedule: Schedule) -> None:
    assert {code: (p.premium, p.term_months, p.eligible_gender) for code, p in schedule.plans.items()} == {
        "HCA": (D("120.00"), 12, None), "SI5": (D("250.00"), 60, None), "FW3": (D("90.00"), 36, "FEMALE"),
    }
    assert schedule.plans["HCA"].coverage_end(date(2026, 1, 1)) == date(2026, 12, 31)
    assert schedule.plans["SI5"].coverage_end(date(2024, 2, 29)) == date(2029, 2, 27)
    assert schedule.plans["FW3"].coverage_end(date(2026, 1, 31)) == date(2029, 1, 30)


async def test_the_schedule_is_read_once_per_version(databases) -> None:
    """Kept in memory while its rows stand; any change to any of its three tables is seen at once."""
    import asyncio

    from resolvers.plan_schedule import current_schedule
    from sources.database import StatementCount

    first = await current_schedule(databases.claims)
    with StatementCount() as counts:
        again = await current_schedule(databases.claims)
        await asyncio.sleep(0)  # asyncpg reports statements with call_soon
    assert again is first and counts["claims"] == 1  # the version token alone

    await databases.claims.execute("UPDATE claims.plans SET premium = 130.00 WHERE code = 'HCA'")
    premium = await current_schedule(databases.claims)
    assert premium.plans["HCA"].premium == D("130.00") and first.plans["HCA"].premium == D("120.00")
    await databases.claims.execute("UPDATE claims.plan_benefits SET cap_days = 90 WHERE kind = 'HOSPITAL_ALLOWANCE'")
    days = await current_schedule(databases.claims)
    assert [b.cap_days for b in days.plans["HCA"].benefits if b.kind == "HOSPITAL_ALLOWANCE"] == [90]
    await databases.claims.execute("DELETE FROM claims.diagnosis_lists WHERE list_name = 'FEMALE'")
    lists = await current_schedule(databases.claims)
    assert "FEMALE" not in lists.diagnosis_lists and "FEMALE" in days.diagnosis_lists
    assert await current_schedule(databases.claims) is lists
