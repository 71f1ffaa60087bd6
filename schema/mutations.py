"""The contract's five mutations: each checks its scope, calls the settlement service, returns the row."""
from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from resolvers import claims_service as service
from schema import scopes
from schema.claims import (
    AccidentClaimInput, Claim, EnrollMemberInput, Enrollment, HospitalizationClaimInput, MarkClaimPaidInput,
    ReviewClaimInput,
)
from schema.permissions import requires
from schema.scalars import SHANGHAI
from sources.claims import ClaimLineRow, ClaimRow, EnrollmentRow
from sources.claims_store import ClaimRecord, EnrollmentRecord


def enrollment_row(record: EnrollmentRecord) -> EnrollmentRow:
    """The read side's row for a just-written enrolment (status as sources.claims computes it)."""
    if record.cancelled:
        status = "CANCELLED"
    elif record.coverage_end < datetime.now(SHANGHAI).date():
        status = "EXPIRED"
    else:
        status = "ACTIVE"
    return EnrollmentRow(id=record.id, member_id=record.member_id, organization_id=record.organization_id,
                         plan_code=record.plan_code, coverage_start=record.coverage_start,
                         coverage_end=record.coverage_end, premium_paid=record.premium_paid, status=status)


def claim_row(info: Info, record: ClaimRecord) -> ClaimRow:
    """The read side's row for a written claim; its lines are primed so `lines` costs no statement."""
    info.context.loaders.claim_lines_by_claim_id.prime(record.id, [
        ClaimLineRow(claim_id=record.id, line_no=l.line_no, enrollment_id=l.enrollment_id, plan_code=l.plan_code,
                     benefit=l.benefit, amount=l.amount, days=l.days, note=l.note)
        for l in record.lines
    ])
    return ClaimRow(id=record.id, member_id=record.member_id, organization_id=record.organization_id,
                    kind=record.kind, status=record.status, rejection_reason=record.rejection_reason,
                    settlement_id=record.settlement_id, accident_date=record.accident_date,
                    disability_grade=record.disability_grade, assessment_ref=record.assessment_ref,
                    total_payout=record.total_payout, submitted_at=record.submitted_at,
                    decided_at=record.decided_at, paid_at=record.paid_at, payment_ref=record.payment_ref,
                    review_note=record.review_note)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        extensions=requires(scopes.ENROLLMENTS_WRITE),
        description="Enrol a member in a plan. The premium is the plan's. Fails with BAD_USER_INPUT if not "
                    "eligible (e.g. FW3 for a man).")
    async def enroll_member(self, info: Info, input: EnrollMemberInput) -> Enrollment:
        state = info.context.state
        record = await service.enroll_member(
            databases=state.databases, insurance=state.insurance, viewer=info.context.viewer,
            member_id=str(input.member_id), plan_code=input.plan_code, coverage_start=input.coverage_start)
        return enrollment_row(record)  # type: ignore[return-value]

    @strawberry.mutation(
        extensions=requires(scopes.CLAIMS_WRITE),
        description="Claim on a hospital stay the medical-insurance system has settled. Decided at once "
                    "('zero wait'). Idempotent on (memberId, settlementId).")
    async def submit_hospitalization_claim(self, info: Info, input: HospitalizationClaimInput) -> Claim:
        state = info.context.state
        record = await service.submit_hospitalization_claim(
            databases=state.databases, insurance=state.insurance, viewer=info.context.viewer,
            member_id=str(input.member_id), settlement_id=str(input.settlement_id))
        return claim_row(info, record)  # type: ignore[return-value]

    @strawberry.mutation(
        extensions=requires(scopes.CLAIMS_WRITE),
        description="Claim for accidental disability (身体伤残), graded 1 (worst) to 10 by an assessment.")
    async def submit_accident_claim(self, info: Info, input: AccidentClaimInput) -> Claim:
        record = await service.submit_accident_claim(
            databases=info.context.state.databases, viewer=info.context.viewer, member_id=str(input.member_id),
            accident_date=input.accident_date, disability_grade=input.disability_grade,
            assessment_ref=input.assessment_ref)
        return claim_row(info, record)  # type: ignore[return-value]

    @strawberry.mutation(
        extensions=requires(scopes.CLAIMS_REVIEW),
        description="Staff decision on a claim in PENDING_REVIEW.")
    async def review_claim(self, info: Info, input: ReviewClaimInput) -> Claim:
        state = info.context.state
        record = await service.review_claim(
            databases=state.databases, insurance=state.insurance, viewer=info.context.viewer,
            claim_id=str(input.claim_id), approve=input.approve, note=input.note)
        return claim_row(info, record)  # type: ignore[return-value]

    @strawberry.mutation(
        extensions=requires(scopes.CLAIMS_REVIEW),
        description="Record the payment of an APPROVED claim. Idempotent on paymentRef.")
    async def mark_claim_paid(self, info: Info, input: MarkClaimPaidInput) -> Claim:
        record = await service.mark_claim_paid(
            databases=info.context.state.databases, viewer=info.context.viewer, claim_id=str(input.claim_id),
            payment_ref=input.payment_ref)
        return claim_row(info, record)  # type: ignore[return-value]
