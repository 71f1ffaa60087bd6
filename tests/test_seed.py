"""`seed`: deterministic per seed, valid row by row, consistent with RULES.md, holding the worked example."""
from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from commands.seed import (
    DEMO_CAMPAIGN, DEMO_MEMBER_ID, DEMO_SETTLEMENT_ID, SPRING_FAIR_ID, seed_database,
)
from commands.seed_writer import COLUMNS
from domain.national_id import problem
from tests import pg

D = Decimal
SOURCES = ("members", "claims", "contracts", "recruitment", "simulator")
WUXI_REGIONS = {"320202", "320205", "320206", "320211", "320213", "320214", "320281", "320282"}
WUXI_DISTRICTS = {"梁溪区", "锡山区", "惠山区", "滨湖区", "新吴区", "江阴市", "宜兴市"}
TERM_MONTHS = {"HCA": 12, "SI5": 60, "FW3": 36}
PREMIUM = {"HCA": D("120.00"), "SI5": D("250.00"), "FW3": D("90.00")}
PLAN_ORDER = {"HCA": 1, "SI5": 2, "FW3": 3}
CRITICAL = (("C00", "C97"), ("I21", "I21"), ("I60", "I60"), ("I61", "I61"), ("I63", "I63"), ("N18.5", "N18.5"),
            ("N18.6", "N18.6"), ("Z94", "Z94"))
FEMALE_LIST = (("C50", "C56"),)
# GB 32100, written out again here so the test does not trust the generator's own check.
USCC = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def _urls(url: str) -> dict[str, str]:
    return {s: url for s in SOURCES}


async def _fresh(pg_admin_url: str, pg_template: str) -> tuple[str, str]:
    name = await pg.create_database(pg_admin_url, pg_template)
    return name, pg.with_database(pg_admin_url, name)


async def _digests(url: str) -> dict[str, str]:
    conn = await asyncpg.connect(url)
    try:
        return {
            table: await conn.fetchval(
                f"SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM {table} t"
            )
            for table in COLUMNS
        }
    finally:
        await conn.close()


@pytest_asyncio.fixture(scope="module")
async def seeded(pg_admin_url: str, pg_template: str):
    """One database seeded with 1500 members, read by the validity tests."""
    name, url = await _fresh(pg_admin_url, pg_template)
    summary = await seed_database(_urls(url), members=1500, seed=3, progress=False)
    conn = await asyncpg.connect(url)
    yield conn, summary
    await conn.close()
    await pg.drop_database(pg_admin_url, name)


# --------------------------------------------------------------------------- determinism

async def test_same_seed_gives_identical_rows_and_another_seed_differs(pg_admin_url, pg_template):
    names = []
    try:
        digests = []
        for seed in (7, 7, 8):
            name, url = await _fresh(pg_admin_url, pg_template)
            names.append(name)
            await seed_database(_urls(url), members=600, seed=seed, progress=False)
            digests.append(await _digests(url))
        same, also_same, other = digests
        assert same == also_same
        for table in ("members.members", "members.employers", "claims.enrollments", "claims.claims",
                      "insurance_sim.settlements", "contracts.contracts", "recruitment.postings"):
            assert other[table] != same[table], table
    finally:
        for name in names:
            await pg.drop_database(pg_admin_url, name)


# --------------------------------------------------------------------------- members and organizations

async def test_summary_counts_match_the_tables(seeded):
    conn, summary = seeded
    for table in COLUMNS:
        short = table.split(".")[1]
        assert summary.counts()[short] == await conn.fetchval(f"SELECT count(*) FROM {table}"), table
    assert summary.members == 1500


async def test_member_counters_agree_with_the_rows(seeded):
    conn, _ = seeded
    wrong = await conn.fetch("""
        SELECT o.id FROM members.organizations o
        LEFT JOIN members.organization_member_counts c ON c.organization_id = o.id
        WHERE coalesce(c.members, 0) <> (SELECT count(*) FROM members.members m WHERE m.organization_id = o.id)
           OR coalesce(c.subtree_members, 0) <> (
                SELECT count(*) FROM members.members m JOIN members.organizations x ON x.id = m.organization_id
                WHERE x.path LIKE o.path || '%')""")
    assert wrong == []
    assert await conn.fetchval("SELECT subtree_members FROM members.organization_member_counts "
                               "WHERE organization_id = 'ORG-WX'") == 1500


async def test_organization_tree_is_wuxi_with_paths(seeded):
    conn, _ = seeded
    city = await conn.fetch("SELECT * FROM members.organizations WHERE level = 'CITY'")
    assert [(c["id"], c["name"], c["path"]) for c in city] == [("ORG-WX", "无锡市总工会", "/ORG-WX/")]
    districts = await conn.fetch("SELECT * FROM members.organizations WHERE level = 'DISTRICT'")
    assert {d["name"][:3] for d in districts} == WUXI_DISTRICTS
    assert all(d["parent_id"] == "ORG-WX" and d["path"] == f"/ORG-WX/{d['id']}/" for d in districts)
    bad_grassroots = await conn.fetchval(
        "SELECT count(*) FROM members.organizations g JOIN members.organizations p ON p.id = g.parent_id"
        " WHERE g.level = 'GRASSROOTS' AND (p.level <> 'DISTRICT' OR g.path <> p.path || g.id || '/')"
    )
    assert bad_grassroots == 0
    assert await conn.fetchval("SELECT count(*) FROM members.organizations WHERE level = 'GRASSROOTS'") > 20


async def test_employers_have_valid_credit_codes_and_real_industries(seeded):
    conn, _ = seeded
    rows = await conn.fetch("SELECT * FROM members.employers")
    for row in rows:
        code = row["credit_code"]
        assert len(code) == 18 and set(code) <= set(USCC), code
        rest = 31 - sum(USCC.index(c) * w for c, w in zip(code[:17], USCC_WEIGHTS)) % 31
        assert code[17] == USCC[rest % 31], code
        assert code[2:8] in WUXI_REGIONS, code
    assert len({r["credit_code"] for r in rows}) == len(rows)
    industries = {r["industry"] for r in rows}
    assert {"学前教育", "机械制造", "集成电路与物联网", "纺织服装", "交通运输与物流", "医疗卫生", "批发零售"} <= industries
    assert any("幼儿园" in r["name"] for r in rows if r["industry"] == "学前教育")


async def test_members_have_valid_ids_phones_and_a_realistic_mix(seeded):
    conn, _ = seeded
    rows = await conn.fetch("SELECT * FROM members.members")
    for row in rows:
        nid = row["national_id"]
        assert problem(nid) is None, nid
        assert nid[:6] in WUXI_REGIONS
        assert nid[6:14] == f"{row['birth_date']:%Y%m%d}"
        assert (int(nid[16]) % 2 == 1) == (row["gender"] == "MALE")
        assert len(row["phone"]) == 11 and row["phone"].isdigit() and row["phone"][0] == "1"
        assert 2 <= len(row["name"]) <= 4
        assert row["joined_on"] > row["birth_date"] + timedelta(days=17 * 365)
    genders = {g: sum(r["gender"] == g for r in rows) for g in ("FEMALE", "MALE")}
    assert min(genders.values()) > len(rows) * 0.3
    dispatched = sum(r["employment_type"] == "DISPATCHED" for r in rows) / len(rows)
    assert 0.05 <= dispatched <= 0.18
    under_district = await conn.fetchval(
        "SELECT count(*) FROM members.members m JOIN members.organizations o ON o.id = m.organization_id"
        " WHERE o.level = 'DISTRICT'"
    )
    assert under_district > 0


async def test_every_cross_source_id_points_at_an_existing_row(seeded):
    conn, _ = seeded
    dangling = {
        "member's org is not its employer's":
            "SELECT count(*) FROM members.members m JOIN members.employers e ON e.id = m.employer_id"
            " WHERE e.organization_id <> m.organization_id",
        "enrolment of no member / wrong org":
            "SELECT count(*) FROM claims.enrollments x LEFT JOIN members.members m ON m.id = x.member_id"
            " WHERE m.id IS NULL OR m.organization_id <> x.organization_id",
        "claim of no member / wrong org":
            "SELECT count(*) FROM claims.claims x LEFT JOIN members.members m ON m.id = x.member_id"
            " WHERE m.id IS NULL OR m.organization_id <> x.organization_id",
        "claim's settlement missing or someone else's":
            "SELECT count(*) FROM claims.claims c JOIN members.members m ON m.id = c.member_id"
            " LEFT JOIN insurance_sim.settlements s ON s.settlement_id = c.settlement_id"
            " WHERE c.kind = 'HOSPITALIZATION' AND (s.settlement_id IS NULL OR s.national_id <> m.national_id)",
        "line of another member's enrolment":
            "SELECT count(*) FROM claims.claim_lines l JOIN claims.claims c ON c.id = l.claim_id"
            " JOIN claims.enrollments e ON e.id = l.enrollment_id WHERE e.member_id <> c.member_id"
            " OR e.plan_code <> l.plan_code",
        "contract employer / org":
            "SELECT count(*) FROM contracts.contracts c LEFT JOIN members.employers e ON e.id = c.employer_id"
            " WHERE e.id IS NULL OR e.organization_id <> c.organization_id",
        "posting employer":
            "SELECT count(*) FROM recruitment.postings p LEFT JOIN members.employers e ON e.id = p.employer_id"
            " WHERE e.id IS NULL",
        "event employer":
            "SELECT count(*) FROM recruitment.event_employers p LEFT JOIN members.employers e ON e.id = p.employer_id"
            " WHERE e.id IS NULL",
        "event organizer":
            "SELECT count(*) FROM recruitment.events v LEFT JOIN members.organizations o ON o.id = v.organizer_id"
            " WHERE o.id IS NULL",
        "posting at an event its employer is not part of":
            "SELECT count(*) FROM recruitment.postings p WHERE p.event_id IS NOT NULL AND NOT EXISTS"
            " (SELECT 1 FROM recruitment.event_employers x WHERE x.event_id = p.event_id"
            "  AND x.employer_id = p.employer_id)",
        "settlement of nobody":
            "SELECT count(*) FROM insurance_sim.settlements s LEFT JOIN members.members m"
            " ON m.national_id = s.national_id WHERE m.id IS NULL",
        "member without coverage row":
            "SELECT count(*) FROM members.members m LEFT JOIN insurance_sim.coverage c"
            " ON c.national_id = m.national_id WHERE c.national_id IS NULL",
    }
    found = {what: await conn.fetchval(sql) for what, sql in dangling.items()}
    assert found == {what: 0 for what in dangling}
    assert await conn.fetchval("SELECT count(*) FROM insurance_sim.coverage") == 1500


# --------------------------------------------------------------------------- enrolments

async def test_enrolments_follow_the_plan_rules(seeded):
    conn, _ = seeded
    rows = await conn.fetch(
        "SELECT e.*, m.gender, c.insured, c.since FROM claims.enrollments e"
        " JOIN members.members m ON m.id = e.member_id JOIN insurance_sim.coverage c ON c.national_id = m.national_id"
        " ORDER BY e.member_id, e.plan_code, e.coverage_start"
    )
    by_plan = defaultdict(int)
    renewals = 0
    previous = None
    for row in rows:
        plan = row["plan_code"]
        by_plan[plan] += 1
        start = row["coverage_start"]
        months = start.month - 1 + TERM_MONTHS[plan]
        assert row["coverage_end"] == date(start.year + months // 12, months % 12 + 1, start.day) - timedelta(days=1)
        assert row["premium_paid"] == PREMIUM[plan]
        assert row["insured"] and row["since"] <= start
        if plan == "FW3":
            assert row["gender"] == "FEMALE"
        if previous and (previous["member_id"], previous["plan_code"]) == (row["member_id"], plan):
            assert start > previous["coverage_end"], "overlapping enrolments of one plan"
            renewals += start == previous["coverage_end"] + timedelta(days=1)
        previous = row
    assert by_plan["HCA"] > by_plan["SI5"] > 0 and by_plan["HCA"] > by_plan["FW3"] > 0
    assert renewals > 100
    uninsured = await conn.fetchval("SELECT count(*) FROM insurance_sim.coverage WHERE NOT insured")
    assert 0 < uninsured < 150
    assert await conn.fetchval(
        "SELECT count(DISTINCT scheme) FROM insurance_sim.coverage WHERE insured") == 1


# --------------------------------------------------------------------------- claims against RULES.md

def _on(ranges: tuple[tuple[str, str], ...], code: str) -> bool:
    for low, high in ranges:
        head = code[:len(low)]
        rest = code[len(low):]
        if low <= head <= high and (rest == "" or rest[0] == "." or rest[0].isdigit()):
            return True
    return False


def _cent(value: Decimal) -> Decimal:
    return value.quantize(D("0.01"), rounding=ROUND_HALF_UP)


def _expected(claim, settlement, enrolments, used) -> tuple[str, str | None, list[tuple]]:
    """RULES.md applied by hand: (status, reason, [(enrolment id, plan, benefit, amount)])."""
    if claim["kind"] == "ACCIDENT_DISABILITY":
        day = claim["accident_date"]
        hca = [e for e in enrolments if e["plan_code"] == "HCA" and e["coverage_start"] <= day <= e["coverage_end"]]
        if not hca:
            return "REJECTED", "NOT_ENROLLED", []
        return "APPROVED", None, [(hca[0]["id"], "HCA", "DISABILITY",
                                   _cent(D("30000.00") * (11 - claim["disability_grade"]) / 10))]
    day = settlement["admission_date"]
    covering = [e for e in enrolments if e["coverage_start"] <= day <= e["coverage_end"]]
    if not covering:
        return "REJECTED", "NOT_ENROLLED", []

    def renewal(e) -> bool:
        return any(o["plan_code"] == e["plan_code"] and o["coverage_end"] == e["coverage_start"] - timedelta(days=1)
                   for o in enrolments)

    past_waiting = [e for e in covering if day >= e["coverage_start"] + timedelta(days=30) or renewal(e)]
    if not past_waiting:
        return "REJECTED", "WAITING_PERIOD", []
    code = settlement["diagnosis_code"]
    lines = []
    for e in sorted(past_waiting, key=lambda e: PLAN_ORDER[e["plan_code"]]):
        plan, u = e["plan_code"], used[e["id"]]
        if plan == "HCA":
            medical = _cent(D("0.5") * max(D(0), settlement["self_pay_in_policy"] - D("1000.00")))
            lines.append((e["id"], plan, "MEDICAL", min(medical, D("30000.00") - u["MEDICAL"])))
            days = min(max(1, (settlement["discharge_date"] - day).days), 180 - u["days"])
            lines.append((e["id"], plan, "HOSPITAL_ALLOWANCE", D("50.00") * days))
            if _on(CRITICAL, code) and not u["CRITICAL_ILLNESS"]:
                lines.append((e["id"], plan, "CRITICAL_ILLNESS", D("10000.00")))
        elif plan == "SI5" and _on(CRITICAL, code) and not u["CRITICAL_ILLNESS"]:
            lines.append((e["id"], plan, "CRITICAL_ILLNESS", D("5000.00")))
        elif plan == "FW3" and _on(FEMALE_LIST, code) and not u["CRITICAL_ILLNESS"]:
            lines.append((e["id"], plan, "CRITICAL_ILLNESS", D("8000.00")))
    lines = [line for line in lines if line[3] > 0]
    if not lines:
        return "REJECTED", "NOTHING_PAYABLE", []
    return "APPROVED", None, lines


async def _claims_by_member(conn):
    claims = await conn.fetch("SELECT * FROM claims.claims ORDER BY member_id, submitted_at, id")
    lines = defaultdict(list)
    for line in await conn.fetch("SELECT * FROM claims.claim_lines ORDER BY claim_id, line_no"):
        lines[line["claim_id"]].append(line)
    enrolments = defaultdict(list)
    for e in await conn.fetch("SELECT * FROM claims.enrollments WHERE NOT cancelled ORDER BY coverage_start"):
        enrolments[e["member_id"]].append(e)
    settlements = {s["settlement_id"]: s for s in await conn.fetch("SELECT * FROM insurance_sim.settlements")}
    return claims, lines, enrolments, settlements


async def test_decided_claims_pay_exactly_what_the_rules_say(seeded):
    conn, _ = seeded
    claims, lines, enrolments, settlements = await _claims_by_member(conn)
    used: dict = defaultdict(lambda: defaultdict(lambda: D(0)))
    statuses = defaultdict(int)
    for claim in claims:
        statuses[claim["status"], claim["rejection_reason"]] += 1
        stored = lines[claim["id"]]
        assert claim["total_payout"] == sum((line["amount"] for line in stored), D("0.00"))
        if claim["status"] == "PENDING_REVIEW":
            assert stored == [] and claim["decided_at"] is None
            continue
        assert claim["decided_at"] >= claim["submitted_at"]
        expected = _expected(claim, settlements.get(claim["settlement_id"]), enrolments[claim["member_id"]], used)
        status = "APPROVED" if claim["status"] == "PAID" else claim["status"]
        got = [(line["enrollment_id"], line["plan_code"], line["benefit"], line["amount"]) for line in stored]
        assert (status, claim["rejection_reason"], got) == expected, claim["id"]
        for enrolment_id, _, benefit, amount in got:
            used[enrolment_id][benefit] += amount
        for line in stored:
            used[line["enrollment_id"]]["days"] += line["days"] or 0
    reasons = {reason for (status, reason) in statuses if status == "REJECTED"}
    assert {"NOT_ENROLLED", "WAITING_PERIOD"} <= reasons
    assert {s for s, _ in statuses} >= {"APPROVED", "REJECTED", "PAID", "PENDING_REVIEW"}


async def test_paid_claims_have_a_payment_and_claims_span_two_years(seeded):
    conn, _ = seeded
    unpaid = await conn.fetchval(
        "SELECT count(*) FROM claims.claims c LEFT JOIN claims.payments p ON p.claim_id = c.id"
        " WHERE c.status = 'PAID' AND (p.id IS NULL OR p.payment_ref <> c.payment_ref OR p.amount <> c.total_payout"
        " OR c.paid_at IS NULL OR c.paid_at < c.decided_at)"
    )
    assert unpaid == 0
    assert await conn.fetchval("SELECT count(*) FROM claims.payments") == await conn.fetchval(
        "SELECT count(*) FROM claims.claims WHERE status = 'PAID'")
    months = await conn.fetch(
        "SELECT DISTINCT to_char(submitted_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') AS m FROM claims.claims"
    )
    months = sorted(r["m"] for r in months)
    assert months[0] >= "2024-11" and months[-1] <= "2026-11" and len(months) >= 20


async def test_some_settlements_wait_for_the_sweep(seeded):
    conn, summary = seeded
    unclaimed_enrolled = await conn.fetchval(
        "SELECT count(*) FROM insurance_sim.settlements s JOIN members.members m ON m.national_id = s.national_id"
        " WHERE NOT EXISTS (SELECT 1 FROM claims.claims c WHERE c.settlement_id = s.settlement_id)"
        " AND EXISTS (SELECT 1 FROM claims.enrollments e WHERE e.member_id = m.id"
        "             AND s.admission_date BETWEEN e.coverage_start AND e.coverage_end)"
    )
    assert unclaimed_enrolled >= 5
    assert summary.unclaimed_settlements >= unclaimed_enrolled


# --------------------------------------------------------------------------- contracts and recruitment

async def test_contracts_cover_every_kind_and_status(seeded):
    conn, _ = seeded
    rows = await conn.fetch("SELECT * FROM contracts.contracts")
    assert {r["kind"] for r in rows} == {"COMPREHENSIVE", "WAGE", "LABOR_SAFETY", "FEMALE_PROTECTION",
                                         "OCCUPATIONAL_HEALTH", "TECH_INNOVATION", "SKILL_LEVEL_WAGE"}
    assert {r["status"] for r in rows} == {"OFFERED", "NEGOTIATING", "SIGNED", "FILED", "EXPIRED"}
    assert any(r["campaign"] == DEMO_CAMPAIGN for r in rows)
    for r in rows:
        assert (r["wage_increase_percent"] is not None) == (r["kind"] == "WAGE"), r["id"]
        if r["status"] == "EXPIRED":
            assert r["effective_to"] < date(2026, 11, 29)
        if r["status"] in ("SIGNED", "FILED", "EXPIRED"):
            assert r["signed_on"] is not None and r["effective_from"] is not None


async def test_spring_fair_has_65_employers_and_2128_positions(seeded):
    conn, _ = seeded
    fairs = await conn.fetch("SELECT * FROM recruitment.events WHERE title LIKE '%春风行动%'")
    assert [(f["id"], f["format"]) for f in fairs] == [(SPRING_FAIR_ID, "ONSITE")]
    assert await conn.fetchval(
        "SELECT count(*) FROM recruitment.event_employers WHERE event_id = $1", SPRING_FAIR_ID) == 65
    assert await conn.fetchval(
        "SELECT sum(headcount) FROM recruitment.postings WHERE event_id = $1", SPRING_FAIR_ID) == 2128
    formats = {r["format"] for r in await conn.fetch("SELECT format FROM recruitment.events")}
    assert formats == {"ONSITE", "LIVESTREAM"}
    assert await conn.fetchval(
        "SELECT count(*) FROM recruitment.postings WHERE salary_max < salary_min OR headcount < 1") == 0


# --------------------------------------------------------------------------- the worked example

async def test_worked_example_of_rules_md_is_in_the_data(seeded):
    conn, _ = seeded
    wang = await conn.fetchrow(
        "SELECT m.*, e.name AS employer, e.industry FROM members.members m"
        " JOIN members.employers e ON e.id = m.employer_id WHERE m.id = $1", DEMO_MEMBER_ID)
    assert wang["name"].startswith("王") and wang["gender"] in ("FEMALE", "MALE")
    assert "幼儿园" in wang["employer"] and wang["industry"] == "学前教育"
    enrolments = await conn.fetch(
        "SELECT * FROM claims.enrollments WHERE member_id = $1 ORDER BY coverage_start", DEMO_MEMBER_ID)
    assert [(e["plan_code"], e["coverage_start"], e["coverage_end"], e["cancelled"]) for e in enrolments] == [
        ("HCA", date(2025, 1, 1), date(2025, 12, 31), False),
        ("HCA", date(2026, 1, 1), date(2026, 12, 31), False),
    ]
    stay = await conn.fetchrow("SELECT * FROM insurance_sim.settlements WHERE settlement_id = $1", DEMO_SETTLEMENT_ID)
    assert stay["national_id"] == wang["national_id"]
    assert (stay["admission_date"], stay["discharge_date"], stay["diagnosis_code"], stay["diagnosis_name"],
            stay["self_pay_in_policy"]) == (date(2026, 10, 8), date(2026, 11, 2), "C34.9", "肺恶性肿瘤", D("47186.00"))
    assert stay["total_cost"] == stay["fund_paid"] + stay["self_pay_in_policy"] + stay["self_pay_out_of_policy"]
    assert await conn.fetchval("SELECT count(*) FROM claims.claims WHERE member_id = $1", DEMO_MEMBER_ID) == 0
    assert await conn.fetchval(
        "SELECT insured FROM insurance_sim.coverage WHERE national_id = $1", wang["national_id"])
    status, _, lines = _expected({"kind": "HOSPITALIZATION"}, stay, enrolments, defaultdict(lambda: defaultdict(int)))
    assert status == "APPROVED" and sum(line[3] for line in lines) == D("34343.00")


# --------------------------------------------------------------------------- refusal and the command

async def test_seeding_a_database_with_data_is_refused(urls, databases):
    await seed_database(urls, members=50, seed=1, progress=False)
    before = await databases.members.fetchval("SELECT count(*) FROM members.members")
    with pytest.raises(ValueError, match="already has rows"):
        await seed_database(urls, members=50, seed=2, progress=False)
    assert await databases.members.fetchval("SELECT count(*) FROM members.members") == before == 50
    assert await databases.claims.fetchval(
        "SELECT count(*) FROM claims.enrollments WHERE member_id = $1", DEMO_MEMBER_ID) == 2


async def test_seed_command_fills_then_refuses(database_url: str, tmp_path: Path):
    env = {**os.environ, "UNION_GATEWAY_DATABASE_URL": database_url, "UNION_GATEWAY_HOME": str(tmp_path)}
    command = [sys.executable, "-c", "from gateway import cli; cli()", "seed", "--members", "120", "--seed", "5"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "120 members" in first.stdout
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 1
    assert "already has rows" in second.stderr
