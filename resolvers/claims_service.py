"""The settlement path: enrolment, claims, review, payment and the deciding of pending claims.

Orchestrates the sources (members, insurance, the claims store) around the
pure decision in resolvers/decision.py. Errors raised here are GatewayErrors
with the contract's codes; everything else is a bug. A submission's reads and
its write find their rows by member and key: they use the pools that plan a
statement once per connection (sources/database.py).
"""
from __future__ import annotations

import asyncio
import logging
from datetime import date
from functools import partial
from typing import Any, Awaitable, Callable, TypeVar, cast

import asyncpg
from opentelemetry import trace

from resolvers import decision as rules
from resolvers.plan_schedule import current_schedule
from sources import observability
from sources import claims_store as store
from sources.claims_store import ClaimFacts, ClaimRecord, EnrollmentRecord, NewClaim
from sources.database import Databases
from sources.insurance_records import InsuranceUnavailable, Settlement
from sources.members import MemberRow, members_by_ids
from sources.settlement_batch import batcher_for
from sources.viewer import Viewer
from web.errors import BadUserInput, NotFound, UpstreamUnavailable

log = logging.getLogger(__name__)
tracer = trace.get_tracer("union_gateway.settlement")

T = TypeVar("T")

#: The background decider and the sweep act for the union itself: every member.
#: Path "/" is a prefix of every organization path, so the visibility filter passes all.
SYSTEM_VIEWER = Viewer(key_id="system", name="union-gateway", scopes=frozenset(), organization_id="",
                       organization_path="/")

#: A connection dropped mid-transaction: PostgreSQL rolled it back, so the whole
#: (idempotent) unit can run again on a fresh connection. asyncpg reports a
#: connection killed during its own rollback as an InternalClientError.
_CONNECTION_LOST = (asyncpg.PostgresConnectionError, asyncpg.exceptions.OperatorInterventionError,
                    asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError, OSError)
_DB_ATTEMPTS = 3
_MAX_KEY_LENGTH = 200


async def _db(unit: Callable[[], Awaitable[T]]) -> T:
    """Run one transactional unit, again on a lost connection; UPSTREAM_UNAVAILABLE when it keeps failing."""
    for attempt in range(1, _DB_ATTEMPTS + 1):
        try:
            return await unit()
        except _CONNECTION_LOST as exc:
            log.warning("claims database connection lost (attempt %d): %s", attempt, type(exc).__name__)
            if attempt == _DB_ATTEMPTS:
                raise UpstreamUnavailable("The claims database is unavailable; retry the request.") from exc
            await asyncio.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


def _key(value: str, name: str) -> str:
    value = value.strip()
    if not value or len(value) > _MAX_KEY_LENGTH:
        raise BadUserInput(f"{name} must be 1 to {_MAX_KEY_LENGTH} characters.", field=name)
    return value


async def _visible_member(databases: Databases, viewer: Viewer, member_id: str) -> MemberRow:
    """The member, or NOT_FOUND when unknown or outside the caller's organization (the same answer)."""
    found = await members_by_ids(databases.planned_once("members"), ids=[member_id], viewer=viewer)
    if not found:
        raise NotFound(f"No member {member_id}.")
    return found[0]


def _claim_id(value: str | int) -> int | None:
    try:
        claim_id = int(value)
    except (TypeError, ValueError):
        return None
    return claim_id if 0 < claim_id < 2**63 else None


async def _visible_claim(databases: Databases, viewer: Viewer, claim_id: str | int) -> tuple[ClaimRecord, MemberRow]:
    """A claim whose member the caller sees, with that member; NOT_FOUND otherwise."""
    parsed = _claim_id(claim_id)
    claims_pool = databases.planned_once("claims")
    claim = await _db(lambda: store.claim_by_id(claims_pool, parsed)) if parsed is not None else None
    if claim is not None:
        members = await members_by_ids(databases.planned_once("members"), ids=[claim.member_id], viewer=viewer)
        if members:
            return claim, members[0]
    raise NotFound(f"No claim {claim_id}.")


def _traced(span: trace.Span, claim: ClaimRecord) -> ClaimRecord:
    span.set_attribute("claim.id", claim.id)
    span.set_attribute("claim.status", claim.status)
    span.set_attribute("claim.total_payout", str(claim.total_payout))
    if claim.lines:
        span.set_attribute("claim.plans", sorted({line.plan_code for line in claim.lines}))
        span.set_attribute("claim.amounts", [f"{line.plan_code}/{line.benefit}={line.amount}" for line in claim.lines])
    return claim


# --------------------------------------------------------------------------- enrolment

async def enroll_member(*, databases: Databases, insurance: Any, viewer: Viewer, member_id: str, plan_code: str,
                        coverage_start: date) -> EnrollmentRecord:
    """Enrol a visible member in a plan at its premium, if eligible (RULES.md)."""
    with tracer.start_as_current_span("settlement.enroll") as span:
        span.set_attribute("plan.code", plan_code)
        schedule = await _db(lambda: current_schedule(databases.claims))
        plan = schedule.plans.get(plan_code)
        if plan is None:
            raise BadUserInput(f"No plan {plan_code}; plans are {', '.join(schedule.plans)}.", reason="UNKNOWN_PLAN")
        member = await _visible_member(databases, viewer, member_id)
        if plan.eligible_gender is not None and member.gender != plan.eligible_gender:
            raise BadUserInput(f"Plan {plan.code} is only for {plan.eligible_gender} members.", reason="NOT_ELIGIBLE")
        if insurance is None:
            raise UpstreamUnavailable("The medical-insurance system is not configured.")
        try:
            coverage = (await insurance.get_coverage([member.national_id], on=coverage_start)).get(member.national_id)
        except InsuranceUnavailable as exc:
            raise UpstreamUnavailable("The medical-insurance system cannot be reached; retry later.") from exc
        if coverage is None or not coverage.insured:
            raise BadUserInput(f"The member has no city medical insurance on {coverage_start}.",
                               reason="NO_MEDICAL_INSURANCE")
        try:
            enrollment = await _db(lambda: store.enroll(
                databases.claims, member_id=member.id, organization_id=member.organization_id, plan_code=plan.code,
                coverage_start=coverage_start, coverage_end=plan.coverage_end(coverage_start), premium=plan.premium,
            ))
        except store.EnrollmentOverlap as exc:
            raise BadUserInput(f"The member already holds {plan.code} from {exc.existing.coverage_start} to "
                               f"{exc.existing.coverage_end}, which overlaps.", reason="OVERLAPPING_ENROLLMENT") from exc
        span.set_attribute("enrollment.id", enrollment.id)
        return enrollment


# --------------------------------------------------------------------------- claims

def _decide_stay(facts: ClaimFacts, *, settlement: Settlement | None, national_id: str) -> rules.Decision:
    return rules.decide_hospitalization(settlement=settlement, national_id=national_id, enrollments=facts.terms,
                                        schedule=facts.schedule, usage=facts.usage)


def _decide_accident(facts: ClaimFacts, *, accident_date: date, grade: int) -> rules.Decision:
    return rules.decide_accident(accident_date=accident_date, grade=grade, enrollments=facts.terms,
                                 schedule=facts.schedule, usage=facts.usage)


_LOOK_UP = object()


async def open_hospitalization_claim(*, databases: Databases, insurance: Any, member: MemberRow, settlement_id: str,
                                     origin: str = "SUBMITTED", settlement: Any = _LOOK_UP,
                                     snapshot: store.ClaimSnapshot | None = None) -> tuple[ClaimRecord, bool]:
    """Open (or find) the member's claim on a settlement; PENDING_REVIEW if the insurance system is down.

    `settlement` may be given by a caller that already holds the record (the
    sweep), and `snapshot` (the member's facts under this settlement, which
    tell whether a claim already holds it) by one that read it; otherwise
    each is looked up. A settlement already claimed asks the insurance
    system nothing. Returns (claim, whether it was opened now).
    """
    if snapshot is None:
        snapshot = await _db(lambda: store.read_snapshot(databases.planned_once("claims"), member.id,
                                                         settlement_id=settlement_id))
    decide = None
    if snapshot.existing_id is None and settlement is _LOOK_UP:
        try:
            if insurance is None:
                raise InsuranceUnavailable("no insurance system configured")
            settlement = await batcher_for(insurance).get(settlement_id)
        except InsuranceUnavailable as exc:
            log.warning("settlement look-up failed, claim kept PENDING_REVIEW: %s", exc)
            settlement = _LOOK_UP
    if settlement is not _LOOK_UP:
        decide = partial(_decide_stay, settlement=settlement, national_id=member.national_id)
    new = NewClaim(member_id=member.id, organization_id=member.organization_id, kind="HOSPITALIZATION",
                   settlement_id=settlement_id, origin=origin)
    # Facts gone stale (another write, or this one committed before its connection
    # dropped and _db ran it again) are read anew by open_claim.
    return await _db(lambda: store.open_claim(databases.planned_once("claims"), new, decide=decide, snapshot=snapshot))


async def submit_hospitalization_claim(*, databases: Databases, insurance: Any, viewer: Viewer, member_id: str,
                                       settlement_id: str) -> ClaimRecord:
    """Claim on a settled stay, decided at once; the same (member, settlement) returns the first claim."""
    with tracer.start_as_current_span("settlement.submit_hospitalization") as span:
        settlement_id = _key(settlement_id, "settlementId")
        # The member and their facts (which tell whether the settlement is already
        # claimed) are independent reads, so they share one wait. The facts are
        # only used once the member proved visible: an invisible member's claim is
        # never returned, and is NOT_FOUND exactly like an unknown member's.
        found = await asyncio.gather(
            _visible_member(databases, viewer, member_id),
            _db(lambda: store.read_snapshot(databases.planned_once("claims"), member_id, settlement_id=settlement_id)),
            return_exceptions=True)
        for outcome in found:  # the member's answer first: NOT_FOUND wins
            if isinstance(outcome, BaseException):
                raise outcome
        member, snapshot = cast(tuple[MemberRow, store.ClaimSnapshot], found)
        claim, _ = await open_hospitalization_claim(databases=databases, insurance=insurance, member=member,
                                                    settlement_id=settlement_id, snapshot=snapshot)
        return _traced(span, claim)


async def submit_accident_claim(*, databases: Databases, viewer: Viewer, member_id: str, accident_date: date,
                                disability_grade: int, assessment_ref: str) -> ClaimRecord:
    """Claim for accidental disability, decided at once; idempotent on (member, assessmentRef)."""
    with tracer.start_as_current_span("settlement.submit_accident") as span:
        try:
            rules.check_grade(disability_grade)
        except rules.InvalidClaim as exc:
            raise BadUserInput(str(exc), field="disabilityGrade") from exc
        assessment_ref = _key(assessment_ref, "assessmentRef")
        found = await asyncio.gather(  # as for a stay: one wait, the member's answer first
            _visible_member(databases, viewer, member_id),
            _db(lambda: store.read_snapshot(databases.planned_once("claims"), member_id,
                                            assessment_ref=assessment_ref)),
            return_exceptions=True)
        for outcome in found:
            if isinstance(outcome, BaseException):
                raise outcome
        member, snapshot = cast(tuple[MemberRow, store.ClaimSnapshot], found)
        new = NewClaim(member_id=member.id, organization_id=member.organization_id, kind="ACCIDENT_DISABILITY",
                       accident_date=accident_date, disability_grade=disability_grade, assessment_ref=assessment_ref)
        claim, _ = await _db(lambda: store.open_claim(
            databases.planned_once("claims"), new, snapshot=snapshot,
            decide=partial(_decide_accident, accident_date=accident_date, grade=disability_grade)))
        if claim.accident_date != accident_date or claim.disability_grade != disability_grade:
            raise BadUserInput(f"assessmentRef {assessment_ref} already claimed with other facts (claim {claim.id}).",
                               field="assessmentRef")
        return _traced(span, claim)


def _decider_for(claim: ClaimRecord, *, settlements: dict[str, Settlement], national_id: str) -> store.Decider:
    if claim.kind == "ACCIDENT_DISABILITY":
        return partial(_decide_accident, accident_date=claim.accident_date, grade=claim.disability_grade)
    return partial(_decide_stay, settlement=settlements.get(claim.settlement_id or ""), national_id=national_id)


async def review_claim(*, databases: Databases, insurance: Any, viewer: Viewer, claim_id: str, approve: bool,
                       note: str | None = None) -> ClaimRecord:
    """Staff decision on a PENDING_REVIEW claim.

    Rejecting records NOT_ELIGIBLE with the note. Approving decides it by the
    rules with the settlement looked up now, so the payout is always the
    schedule's (a stay the rules reject stays rejected, with their reason).
    """
    with tracer.start_as_current_span("settlement.review") as span:
        claim, member = await _visible_claim(databases, viewer, claim_id)
        if claim.status != store.PENDING_REVIEW:
            raise BadUserInput(f"Claim {claim.id} is {claim.status}; only PENDING_REVIEW claims are reviewed.",
                               reason="NOT_PENDING_REVIEW")
        settlements: dict[str, Settlement] = {}
        if approve and claim.settlement_id is not None:
            try:
                if insurance is None:
                    raise InsuranceUnavailable("no insurance system configured")
                settlements = await insurance.get_settlements([claim.settlement_id])
            except InsuranceUnavailable as exc:
                raise UpstreamUnavailable("The medical-insurance system cannot be reached; the claim stays "
                                          "PENDING_REVIEW and is decided automatically once it can be.") from exc

        async def unit() -> ClaimRecord:
            async with store.transaction(databases.claims) as conn:
                locked = await store.claim_by_id(conn, claim.id, for_update=True)
                if locked is None or locked.status != store.PENDING_REVIEW:
                    raise BadUserInput(f"Claim {claim.id} was decided meanwhile.", reason="NOT_PENDING_REVIEW")
                if not approve:
                    return await store.reject_locked_claim(conn, locked, reason="NOT_ELIGIBLE", review_note=note)
                return await store.decide_locked_claim(
                    conn, locked, decide=_decider_for(locked, settlements=settlements, national_id=member.national_id),
                    review_note=note)

        reviewed = await _db(unit)
        observability.claim_decided(reviewed.status)
        return _traced(span, reviewed)


async def mark_claim_paid(*, databases: Databases, viewer: Viewer, claim_id: str, payment_ref: str) -> ClaimRecord:
    """Record the payment of an APPROVED claim; the same paymentRef again returns it unchanged."""
    with tracer.start_as_current_span("settlement.mark_paid") as span:
        payment_ref = _key(payment_ref, "paymentRef")
        claim, _ = await _visible_claim(databases, viewer, claim_id)
        try:
            paid = await _db(lambda: store.mark_paid(databases.claims, claim_id=claim.id, payment_ref=payment_ref))
        except store.ClaimStateError as exc:
            raise BadUserInput(str(exc), reason="NOT_PAYABLE") from exc
        except store.PaymentRefTaken as exc:
            raise BadUserInput(str(exc), reason="PAYMENT_REF_TAKEN", field="paymentRef") from exc
        if paid is None:
            raise NotFound(f"No claim {claim_id}.")
        return _traced(span, paid)


# --------------------------------------------------------------------------- pending claims

async def decide_pending_claims(*, databases: Databases, insurance: Any, limit: int = 100) -> int:
    """Decide up to `limit` PENDING_REVIEW claims no other process holds; returns how many were decided.

    The claims stay locked (FOR UPDATE SKIP LOCKED) while their settlements
    are fetched and they are decided, so across replicas and `sweep` each is
    decided exactly once. If the insurance system is still down nothing
    changes and 0 is returned.
    """
    with tracer.start_as_current_span("settlement.decide_pending") as span:
        statuses: list[str] = []  # of the committed attempt only, for the claims-decided metric

        async def unit() -> int:
            statuses.clear()
            async with store.pending_claims(databases.claims, limit=limit) as (conn, claims):
                if not claims:
                    return 0
                wanted = [c.settlement_id for c in claims if c.settlement_id is not None]
                if wanted and insurance is None:
                    return 0
                settlements = await insurance.get_settlements(wanted) if wanted else {}
                members = {m.id: m for m in await members_by_ids(
                    databases.members, ids=list({c.member_id for c in claims}), viewer=SYSTEM_VIEWER)}
                decided = 0
                for claim in claims:
                    member = members.get(claim.member_id)
                    national_id = member.national_id if member is not None else ""
                    decide = _decider_for(claim, settlements=settlements, national_id=national_id)
                    statuses.append((await store.decide_locked_claim(conn, claim, decide=decide)).status)
                    decided += 1
                return decided

        try:
            decided = await _db(unit)
            for status in statuses:
                observability.claim_decided(status)
        except InsuranceUnavailable as exc:
            log.info("pending claims wait for the insurance system: %s", exc)
            decided = 0
        span.set_attribute("claims.decided", decided)
        return decided
