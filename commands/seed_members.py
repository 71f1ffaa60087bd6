"""Members and everything that hangs off one member: insurance coverage, enrolments, hospital stays, claims.

One random stream, consumed member by member, so the rows depend only on the
seed and the member count. Claims are decided by the gateway's own decision
code (resolvers.decision) against the schedule rows, in submission order per
member, so caps and waiting periods hold exactly as the live path applies them.
"""
from __future__ import annotations

import random
from bisect import bisect
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import accumulate

from commands.seed_codes import mobile_phone, national_id
from commands.seed_data import (
    AS_OF, COMMON_FIRST, DIAGNOSES, FEMALE_CHARS, HOSPITALS, ID_REGIONS, MALE_CHARS, MEDICAL_SCHEME, SHANGHAI,
    SURNAMES, WINDOW_START, Diagnosis,
)
from commands.seed_orgs import Employer, Tree
from domain.national_id import check_digit
from resolvers.decision import (
    APPROVED, Decision, Line, Term, Usage, decide_accident, decide_hospitalization,
)
from resolvers.plan_schedule import Schedule

DEMO_MEMBER_ID = "M-DEMO-WANG"
DEMO_SETTLEMENT_ID = "SETL-DEMO-WANG"

END_OF_DATA = datetime.combine(AS_OF, time(23, 59, 59), SHANGHAI)
INSURED_SHARE = 0.965

_SURNAME_CUM = list(accumulate(w for _, w in SURNAMES))
_DIAGNOSES = {
    gender: [d for d in DIAGNOSES if d.gender in (None, gender)] for gender in ("FEMALE", "MALE")
}
_DIAGNOSIS_CUM = {g: list(accumulate(d.weight for d in ds)) for g, ds in _DIAGNOSES.items()}
_GRADE_CUM = list(accumulate((0.2, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0)))


def cents(value: int) -> Decimal:
    """An amount in cents as a two-decimal Decimal."""
    return Decimal(value).scaleb(-2)


@dataclass(frozen=True)
class StayFacts:
    """The decision's view of a settlement."""

    national_id: str
    admission_date: date
    discharge_date: date
    diagnosis_code: str
    self_pay_in_policy: Decimal


@dataclass
class ClaimDraft:
    """A decided claim before it gets its id (ids follow submission time across all members)."""

    submitted_at: datetime
    member_id: str
    organization_id: str
    kind: str
    status: str
    rejection_reason: str | None
    settlement_id: str | None
    accident_date: date | None
    disability_grade: int | None
    assessment_ref: str | None
    decided_at: datetime | None
    origin: str
    lines: tuple[Line, ...]
    last_of_member: bool = False
    paid_at: datetime | None = None

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))

    def sort_key(self) -> tuple:
        return (self.submitted_at, self.member_id, self.settlement_id or self.assessment_ref or "")


@dataclass
class Batch:
    """Rows for one chunk of members, by table."""

    members: list[tuple] = field(default_factory=list)
    coverage: list[tuple] = field(default_factory=list)
    enrollments: list[tuple] = field(default_factory=list)
    settlements: list[tuple] = field(default_factory=list)


@dataclass
class _Stay:
    facts: StayFacts
    settlement_id: str
    settled_at: datetime


class MemberFactory:
    """Generates members in order; keeps the counters and the claims drafted so far."""

    def __init__(self, rng: random.Random, *, tree: Tree, schedule: Schedule) -> None:
        self.rng = rng
        self.tree = tree
        self.schedule = schedule
        self.claims: list[ClaimDraft] = []
        self._national_ids: set[int] = set()
        self._enrollment_id = 0
        self._settlement_no = 0
        self._assessment_no = 0
        self.unclaimed_settlements = 0

    # ------------------------------------------------------------------ one member

    def batch(self, first: int, count: int) -> Batch:
        """Members number first .. first+count-1; number 0 is the demo member."""
        out = Batch()
        for number in range(first, first + count):
            if number == 0:
                self._demo(out)
            else:
                self._member(number, out)
        return out

    def _employer(self) -> Employer:
        cum = self.tree.cumulative_sizes
        return self.tree.employers[bisect(cum, self.rng.random() * cum[-1])]

    def _name(self, female: bool) -> str:
        rng = self.rng
        surname = SURNAMES[bisect(_SURNAME_CUM, rng.random() * _SURNAME_CUM[-1])][0]
        chars = FEMALE_CHARS if female else MALE_CHARS
        if rng.random() < 0.3:
            return surname + rng.choice(chars)
        first = rng.choice(COMMON_FIRST) if rng.random() < 0.35 else rng.choice(chars)
        return surname + first + rng.choice(chars)

    def _national_id(self, region: str, birth: date, female: bool) -> str:
        while True:
            value = national_id(self.rng, region=region, birth=birth, female=female)
            key = int(value[:17])
            if key not in self._national_ids:
                self._national_ids.add(key)
                return value

    def _member(self, number: int, out: Batch) -> None:
        rng = self.rng
        employer = self._employer()
        employer.members += 1
        industry = employer.industry
        female = rng.random() < industry.female_share
        gender = "FEMALE" if female else "MALE"
        name = self._name(female)
        birth = AS_OF - timedelta(days=rng.randrange(20 * 365 + 5, 58 * 365))
        region = employer.district.region
        if rng.random() < 0.3:
            region = rng.choice(ID_REGIONS)
        elif region == "320213" and birth.year < 2000 and rng.random() < 0.5:
            region = "320202"
        nid = self._national_id(region, birth, female)
        adult = date(birth.year + 18, birth.month, min(birth.day, 28))
        joined_from = max(adult, date(2000, 1, 1))
        joined_on = joined_from + timedelta(days=rng.randrange(max(1, (AS_OF - joined_from).days - 30)))
        member_id = f"M-{number:07d}"
        employment = "DISPATCHED" if rng.random() < industry.dispatched_share else "REGULAR"
        out.members.append((member_id, name, gender, birth, nid, mobile_phone(rng), employment, employer.id,
                            employer.organization_id, joined_on))
        if rng.random() >= INSURED_SHARE:
            out.coverage.append((nid, False, None, None))
            # Not insured: no enrolment is allowed and the insurance system has no stays.
            return
        since = max(adult, joined_on - timedelta(days=rng.randrange(3650)))
        out.coverage.append((nid, True, MEDICAL_SCHEME, since))
        terms: list[Term] = []
        if rng.random() < 0.75:
            self._chain(terms, "HCA", joined_on, earliest=2021, renew=0.85, rejoin=0.3)
        if rng.random() < 0.12:
            self._chain(terms, "SI5", joined_on, earliest=2019, renew=0.7, rejoin=0.2)
        if female and rng.random() < 0.35:
            self._chain(terms, "FW3", joined_on, earliest=2019, renew=0.75, rejoin=0.2)
        for term in terms:
            plan = self.schedule.plans[term.plan_code]
            created = datetime.combine(term.coverage_start - timedelta(days=rng.randrange(25)),
                                       time(9 + rng.randrange(8), rng.randrange(60)), SHANGHAI)
            out.enrollments.append((term.id, member_id, employer.organization_id, term.plan_code, term.coverage_start,
                                    term.coverage_end, plan.premium, term.cancelled, created))
        self._claims(member_id, employer, gender, nid, terms, out)

    # ------------------------------------------------------------------ enrolments

    def _first_start(self, joined_on: date, earliest: int) -> date | None:
        rng = self.rng
        if rng.random() < 0.65:
            # A unit's collective enrolment: on January 1st.
            start = date(rng.randint(earliest, AS_OF.year), 1, 1)
            if start < joined_on:
                start = date(joined_on.year + 1, 1, 1)
        else:
            lo = max(joined_on, date(earliest, 1, 1))
            months = (AS_OF.year - lo.year) * 12 + AS_OF.month - lo.month
            index = lo.month - 1 + rng.randint(0, months)
            # Day at most 28: coverage_end is then the same day-1 in every month.
            start = date(lo.year + index // 12, index % 12 + 1, rng.randint(1, 28))
            if start < joined_on:
                start = joined_on.replace(day=min(joined_on.day, 28)) + timedelta(days=28)
                start = start.replace(day=min(start.day, 28))
        return start if start <= AS_OF else None

    def _chain(self, terms: list[Term], plan_code: str, joined_on: date, *, earliest: int, renew: float,
               rejoin: float) -> None:
        rng = self.rng
        plan = self.schedule.plans[plan_code]
        start = self._first_start(joined_on, earliest)
        while start is not None and start <= AS_OF:
            end = plan.coverage_end(start)
            self._enrollment_id += 1
            terms.append(Term(self._enrollment_id, plan_code, start, end))
            if rng.random() < renew:
                start = end + timedelta(days=1)
            elif rng.random() < rejoin:
                gap = end + timedelta(days=rng.randint(30, 400))
                start = gap.replace(day=min(gap.day, 28))
            else:
                break
        last = terms[-1] if terms and terms[-1].plan_code == plan_code else None
        if last is not None and last.coverage_start >= AS_OF - timedelta(days=90) and rng.random() < 0.06:
            terms[-1] = Term(last.id, plan_code, last.coverage_start, last.coverage_end, cancelled=True)

    # ------------------------------------------------------------------ stays and claims

    def _stay(self, nid: str, gender: str, district: str, terms: list[Term], out: Batch) -> _Stay | None:
        rng = self.rng
        fresh = [t for t in terms if not t.cancelled and WINDOW_START <= t.coverage_start <= AS_OF - timedelta(days=40)
                 and not any(o.plan_code == t.plan_code and o.coverage_end == t.coverage_start - timedelta(days=1)
                             for o in terms)]
        inside = [t for t in terms if not t.cancelled and t.coverage_end >= WINDOW_START]
        r = rng.random()
        if fresh and r < 0.15:
            # Admitted soon after a first enrolment: the waiting period decides it.
            admission = rng.choice(fresh).coverage_start + timedelta(days=rng.randrange(30))
        elif inside and r < 0.8:
            # Members mostly claim for stays their enrolment covers.
            term = rng.choice(inside)
            lo = max(term.coverage_start, WINDOW_START)
            hi = min(term.coverage_end, AS_OF - timedelta(days=3))
            admission = lo + timedelta(days=rng.randrange(max(1, (hi - lo).days)))
        else:
            admission = WINDOW_START + timedelta(days=rng.randrange((AS_OF - WINDOW_START).days - 3))
        diagnoses = _DIAGNOSES[gender]
        cum = _DIAGNOSIS_CUM[gender]
        diagnosis: Diagnosis = diagnoses[bisect(cum, rng.random() * cum[-1])]
        discharge = admission + timedelta(days=rng.randint(*diagnosis.days))
        settled = datetime.combine(discharge + timedelta(days=rng.randrange(3)),
                                   time(rng.randrange(9, 18), rng.randrange(60), rng.randrange(60)), SHANGHAI)
        if settled > END_OF_DATA:
            return None  # still in hospital or not settled yet on AS_OF
        total = int(diagnosis.cost * 100 * (0.55 + rng.random() * 1.1))
        fund = int(total * (0.55 + rng.random() * 0.23))
        own = int(total * (0.02 + rng.random() * 0.10))
        in_policy = total - fund - own
        local = [h for h in HOSPITALS if h.district == district]
        city = [h for h in HOSPITALS if h.district is None]
        hospital = rng.choice(local if local and rng.random() < 0.6 else city)
        self._settlement_no += 1
        settlement_id = f"SETL-{settled:%Y%m%d}-{self._settlement_no:07d}"
        out.settlements.append((settlement_id, nid, hospital.code, hospital.name, admission, discharge, diagnosis.code,
                                diagnosis.name, cents(total), cents(fund), cents(in_policy), cents(own), settled))
        facts = StayFacts(nid, admission, discharge, diagnosis.code, cents(in_policy))
        return _Stay(facts, settlement_id, settled)

    def _submission(self, stay: _Stay, enrolled: bool) -> tuple[datetime, str] | None:
        """When and how the stay was claimed, or None if nobody has claimed it yet."""
        rng = self.rng
        if enrolled:
            recent = stay.settled_at >= END_OF_DATA - timedelta(days=12)
            if rng.random() < (0.6 if recent else 0.12):
                return None
            if rng.random() < 0.35:
                night = datetime.combine(stay.settled_at.date() + timedelta(days=1), time(2, 0), SHANGHAI)
                submitted, origin = night + timedelta(seconds=rng.randrange(1800)), "SWEEP"
            else:
                submitted, origin = stay.settled_at + timedelta(seconds=rng.randrange(3600, 20 * 86400)), "SUBMITTED"
        else:
            if rng.random() >= 0.2:
                return None
            submitted, origin = stay.settled_at + timedelta(seconds=rng.randrange(3600, 20 * 86400)), "SUBMITTED"
        return (submitted, origin) if submitted <= END_OF_DATA else None

    def _claims(self, member_id: str, employer: Employer, gender: str, nid: str, terms: list[Term],
                out: Batch) -> None:
        rng = self.rng
        enrolled = bool(terms)
        r = rng.random()
        stays = (2 if r < 0.015 else 1 if r < 0.10 else 0) if enrolled else (2 if r < 0.005 else 1 if r < 0.05 else 0)
        drafts: list[tuple[datetime, str, object]] = []
        for _ in range(stays):
            stay = self._stay(nid, gender, employer.district.key, terms, out)
            if stay is None:
                continue
            when = self._submission(stay, enrolled)
            if when is None:
                self.unclaimed_settlements += 1
                continue
            drafts.append((when[0], when[1], stay))
        has_hca = any(t.plan_code == "HCA" for t in terms)
        if rng.random() < (0.004 if has_hca else 0.0008):
            accident = WINDOW_START + timedelta(days=rng.randrange(700))
            submitted = datetime.combine(accident + timedelta(days=rng.randint(30, 120)),
                                         time(rng.randrange(9, 18), rng.randrange(60)), SHANGHAI)
            if submitted <= END_OF_DATA:
                self._assessment_no += 1
                grade = bisect(_GRADE_CUM, rng.random() * _GRADE_CUM[-1]) + 1
                drafts.append((submitted, "SUBMITTED", (accident, grade, f"JD{accident.year}{self._assessment_no:07d}")))
        if not drafts:
            return
        drafts.sort(key=lambda d: d[0])
        usage: dict[tuple[int, str], Usage] = {}
        for index, (submitted, origin, subject) in enumerate(drafts):
            last = index == len(drafts) - 1
            if isinstance(subject, _Stay):
                decision = decide_hospitalization(settlement=subject.facts, national_id=nid, enrollments=terms,
                                                  schedule=self.schedule, usage=usage)
                keys = dict(kind="HOSPITALIZATION", settlement_id=subject.settlement_id, accident_date=None,
                            disability_grade=None, assessment_ref=None)
            else:
                accident, grade, ref = subject
                decision = decide_accident(accident_date=accident, grade=grade, enrollments=terms,
                                           schedule=self.schedule, usage=usage)
                keys = dict(kind="ACCIDENT_DISABILITY", settlement_id=None, accident_date=accident,
                            disability_grade=grade, assessment_ref=ref)
            self.claims.append(self._draft(decision, submitted, origin, member_id, employer, last, usage, keys))

    def _draft(self, decision: Decision, submitted: datetime, origin: str, member_id: str, employer: Employer,
               last: bool, usage: dict[tuple[int, str], Usage], keys: dict) -> ClaimDraft:
        rng = self.rng
        if last and submitted >= END_OF_DATA - timedelta(days=30) and rng.random() < 0.3:
            # The insurance system was unreachable: kept for review, decided later.
            return ClaimDraft(submitted, member_id, employer.organization_id, status="PENDING_REVIEW",
                              rejection_reason=None, decided_at=None, origin=origin, lines=(), last_of_member=True,
                              **keys)
        decided = submitted + timedelta(seconds=rng.randint(1, 4))
        draft = ClaimDraft(submitted, member_id, employer.organization_id, status=decision.status,
                           rejection_reason=decision.rejection_reason, decided_at=decided, origin=origin,
                           lines=decision.lines, last_of_member=last, **keys)
        if decision.status == APPROVED:
            for line in decision.lines:
                used = usage.get((line.enrollment_id, line.benefit), Usage())
                usage[(line.enrollment_id, line.benefit)] = Usage(used.amount + line.amount,
                                                                  used.days + (line.days or 0), used.lines + 1)
            if decided <= END_OF_DATA - timedelta(days=10) and rng.random() < 0.2:
                draft.paid_at = min(END_OF_DATA, decided + timedelta(days=rng.randint(2, 10), minutes=rng.randrange(600)))
                draft.status = "PAID"
        return draft

    # ------------------------------------------------------------------ the worked example

    def _demo(self, out: Batch) -> None:
        """RULES.md's worked example: 王晓燕, a kindergarten teacher, HCA 2025 renewed for 2026, one unclaimed stay."""
        employer = self.tree.employers[0]  # always a kindergarten in 梁溪区 with its own union
        employer.members += 1
        birth = date(1990, 5, 12)
        nid = f"320213{birth:%Y%m%d}128"
        nid += check_digit(nid)
        self._national_ids.add(int(nid[:17]))
        out.members.append((DEMO_MEMBER_ID, "王晓燕", "FEMALE", birth, nid, "13961850512", "REGULAR", employer.id,
                            employer.organization_id, date(2015, 9, 1)))
        out.coverage.append((nid, True, MEDICAL_SCHEME, date(2013, 9, 1)))
        hca = self.schedule.plans["HCA"]
        for start in (date(2025, 1, 1), date(2026, 1, 1)):
            self._enrollment_id += 1
            created = datetime.combine(start - timedelta(days=10), time(10, 0), SHANGHAI)
            out.enrollments.append((self._enrollment_id, DEMO_MEMBER_ID, employer.organization_id, "HCA", start,
                                    hca.coverage_end(start), hca.premium, False, created))
        in_policy, own, fund = 4718600, 1287050, 10378600
        out.settlements.append((DEMO_SETTLEMENT_ID, nid, "H32021300001", "无锡市人民医院", date(2026, 10, 8),
                                date(2026, 11, 2), "C34.9", "肺恶性肿瘤", cents(in_policy + own + fund), cents(fund),
                                cents(in_policy), cents(own), datetime(2026, 11, 3, 10, 24, 0, tzinfo=SHANGHAI)))
        self.unclaimed_settlements += 1
