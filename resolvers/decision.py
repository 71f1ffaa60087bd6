"""The claim decision of RULES.md as a pure function of its facts: no I/O, no clock.

Every number comes from the schedule (rows of claims.plans, plan_benefits and
diagnosis_lists); the code only knows the four formulas. Amounts are Decimal,
rounded half up to the cent once, at the end of their own formula; caps are
applied to the rounded amount against what the enrolment already used.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Mapping, Protocol, Sequence

from resolvers.plan_schedule import Benefit, Plan, Schedule

CENT = Decimal("0.01")
ZERO = Decimal("0.00")

APPROVED = "APPROVED"
REJECTED = "REJECTED"

SETTLEMENT_NOT_FOUND = "SETTLEMENT_NOT_FOUND"
MEMBER_MISMATCH = "MEMBER_MISMATCH"
NOT_ENROLLED = "NOT_ENROLLED"
WAITING_PERIOD = "WAITING_PERIOD"
NOTHING_PAYABLE = "NOTHING_PAYABLE"

#: Formulas a settled hospital stay can trigger; DISABILITY_GRADE is for accidents only.
STAY_FORMULAS = frozenset({"COPAY_SHARE", "DAILY_ALLOWANCE", "LUMP_SUM_ON_DIAGNOSIS"})
ACCIDENT_FORMULAS = frozenset({"DISABILITY_GRADE"})

MIN_GRADE, MAX_GRADE = 1, 10


class InvalidClaim(ValueError):
    """The claim's own facts are malformed (e.g. a disability grade outside 1..10)."""


class Stay(Protocol):
    """What the decision reads of a settlement (sources.insurance.Settlement fits)."""

    national_id: str
    admission_date: date
    discharge_date: date
    diagnosis_code: str
    self_pay_in_policy: Decimal


@dataclass(frozen=True)
class Term:
    """One enrolment's coverage, as the decision needs it."""

    id: int
    plan_code: str
    coverage_start: date
    coverage_end: date
    cancelled: bool = False

    def covers(self, day: date) -> bool:
        return not self.cancelled and self.coverage_start <= day <= self.coverage_end


@dataclass(frozen=True)
class Usage:
    """What one enrolment already paid under one benefit, over all earlier claims."""

    amount: Decimal = ZERO
    days: int = 0
    lines: int = 0


#: (enrollment id, benefit kind) → usage; a missing key means nothing used yet.
UsageByBenefit = Mapping[tuple[int, str], Usage]


@dataclass(frozen=True)
class Line:
    """One non-zero payout of one benefit of one enrolment."""

    enrollment_id: int
    plan_code: str
    benefit: str
    amount: Decimal
    days: int | None = None
    note: str | None = None


@dataclass(frozen=True)
class Decision:
    status: str
    rejection_reason: str | None = None
    lines: tuple[Line, ...] = field(default_factory=tuple)

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)


def to_cent(value: Decimal) -> Decimal:
    """Half up to the cent: the one rounding every formula ends with."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _rejected(reason: str) -> Decision:
    return Decision(status=REJECTED, rejection_reason=reason)


def _is_renewal(term: Term, enrollments: Sequence[Term]) -> bool:
    """Held the same plan until the day before: the waiting period was served already."""
    day_before = term.coverage_start - timedelta(days=1)
    return any(
        other.plan_code == term.plan_code and not other.cancelled and other.coverage_end == day_before
        for other in enrollments
    )


def in_waiting_period(term: Term, plan: Plan, day: date, enrollments: Sequence[Term]) -> bool:
    """Whether an event on `day` falls in the term's first waiting days and is no renewal."""
    return day < term.coverage_start + timedelta(days=plan.waiting_days) and not _is_renewal(term, enrollments)


def _cap_amount(amount: Decimal, benefit: Benefit, used: Usage) -> tuple[Decimal, str | None]:
    if benefit.cap_amount is None:
        return amount, None
    left = max(ZERO, benefit.cap_amount - used.amount)
    if amount > left:
        return left, f"capped at {benefit.cap_amount} per enrolment; {left} was left"
    return amount, None


def _line(term: Term, benefit: Benefit, amount: Decimal, days: int | None, notes: list[str | None]) -> Line | None:
    if amount <= ZERO:
        return None
    note = "; ".join(n for n in notes if n) or None
    return Line(enrollment_id=term.id, plan_code=term.plan_code, benefit=benefit.kind, amount=amount, days=days, note=note)


def _stay_line(term: Term, benefit: Benefit, stay: Stay, schedule: Schedule, used: Usage) -> Line | None:
    if benefit.once_per_enrollment and used.lines > 0:
        return None
    if benefit.formula == "COPAY_SHARE":
        base = max(ZERO, stay.self_pay_in_policy - (benefit.deductible or ZERO))
        amount = to_cent((benefit.rate or ZERO) * base)
        note = f"{(benefit.rate or ZERO).normalize()} × ({stay.self_pay_in_policy} − {benefit.deductible or ZERO})"
        amount, capped = _cap_amount(amount, benefit, used)
        return _line(term, benefit, amount, None, [note, capped])
    if benefit.formula == "DAILY_ALLOWANCE":
        days = max(1, (stay.discharge_date - stay.admission_date).days)
        capped_days = None
        if benefit.cap_days is not None:
            left = max(0, benefit.cap_days - used.days)
            if days > left:
                capped_days = f"{benefit.cap_days}-day cap per enrolment; {left} days were left"
                days = left
        amount = to_cent((benefit.amount or ZERO) * days)
        amount, capped = _cap_amount(amount, benefit, used)
        return _line(term, benefit, amount, days, [f"{days} days × {benefit.amount}", capped_days, capped])
    if benefit.formula == "LUMP_SUM_ON_DIAGNOSIS":
        if not schedule.on_list(benefit.diagnosis_list or "", stay.diagnosis_code):
            return None
        amount, capped = _cap_amount(to_cent(benefit.amount or ZERO), benefit, used)
        return _line(term, benefit, amount, None, [f"primary diagnosis on the {benefit.diagnosis_list} list", capped])
    return None


def _covering(enrollments: Sequence[Term], schedule: Schedule, day: date, formulas: frozenset[str]) -> list[tuple[Term, Plan]]:
    """Terms covering `day` whose plan pays any of `formulas`, in schedule order."""
    found = []
    for term in enrollments:
        plan = schedule.plans.get(term.plan_code)
        if plan is None or not term.covers(day):
            continue
        if any(b.formula in formulas for b in plan.benefits):
            found.append((term, plan))
    return sorted(found, key=lambda tp: (tp[1].sort_order, tp[1].code, tp[0].id))


def _decide(day: date, enrollments: Sequence[Term], covering: list[tuple[Term, Plan]], formulas: frozenset[str],
            pay) -> Decision:
    if not covering:
        return _rejected(NOT_ENROLLED)
    lines: list[Line] = []
    waited_out = False
    for term, plan in covering:
        waiting = in_waiting_period(term, plan, day, enrollments)
        for benefit in plan.benefits:
            if benefit.formula not in formulas:
                continue
            if benefit.waiting_period and waiting:
                continue
            waited_out = True
            line = pay(term, benefit)
            if line is not None:
                lines.append(line)
    if not waited_out:
        return _rejected(WAITING_PERIOD)
    if not lines:
        return _rejected(NOTHING_PAYABLE)
    return Decision(status=APPROVED, lines=tuple(lines))


def decide_hospitalization(*, settlement: Stay | None, national_id: str, enrollments: Sequence[Term],
                           schedule: Schedule, usage: UsageByBenefit) -> Decision:
    """Decide a claim on one settled stay (None: the insurance system has no such settlement)."""
    if settlement is None:
        return _rejected(SETTLEMENT_NOT_FOUND)
    if settlement.national_id != national_id:
        return _rejected(MEMBER_MISMATCH)
    day = settlement.admission_date
    covering = _covering(enrollments, schedule, day, STAY_FORMULAS)
    # A stay outside every enrolment is NOT_ENROLLED even if some plan without
    # stay benefits covers it; the distinction matters only to custom schedules.
    return _decide(
        day, enrollments, covering, STAY_FORMULAS,
        lambda term, benefit: _stay_line(term, benefit, settlement, schedule, usage.get((term.id, benefit.kind), Usage())),
    )


def check_grade(grade: int) -> None:
    """Raise InvalidClaim unless 1 ≤ grade ≤ 10."""
    if not MIN_GRADE <= grade <= MAX_GRADE:
        raise InvalidClaim(f"disabilityGrade must be between {MIN_GRADE} and {MAX_GRADE}, got {grade}")


def decide_accident(*, accident_date: date, grade: int, enrollments: Sequence[Term], schedule: Schedule,
                    usage: UsageByBenefit) -> Decision:
    """Decide an accidental-disability claim; raises InvalidClaim for a grade outside 1..10."""
    check_grade(grade)

    def pay(term: Term, benefit: Benefit) -> Line | None:
        used = usage.get((term.id, benefit.kind), Usage())
        if benefit.once_per_enrollment and used.lines > 0:
            return None
        amount = to_cent((benefit.amount or ZERO) * (MAX_GRADE + 1 - grade) / MAX_GRADE)
        amount, capped = _cap_amount(amount, benefit, used)
        return _line(term, benefit, amount, None, [f"grade {grade}: {benefit.amount} × {MAX_GRADE + 1 - grade}/{MAX_GRADE}", capped])

    covering = _covering(enrollments, schedule, accident_date, ACCIDENT_FORMULAS)
    return _decide(accident_date, enrollments, covering, ACCIDENT_FORMULAS, pay)
