"""Plans, enrolments, claims, lines, settlements, coverage, claim statistics; and the mutations' inputs.

Objects are the sources' frozen rows (sources.claims), Settlement/Coverage
(sources.insurance_records) and ClaimStatsRow (sources.claim_stats).
"""
from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from schema import scopes
from schema.members import require
from schema.pagination import PageInfo, build_edges, encode_cursor, total_of
from schema.permissions import requires
from schema.prefetch import ready
from schema.scalars import SHANGHAI
from sources import audit
from sources.claim_stats import ClaimStatsRow as StatsRow
from sources.claims import ClaimQuery, ClaimRow, EnrollmentRow, PlanRow
from sources.insurance_records import Coverage, InsuranceUnavailable, Settlement
from web.errors import UpstreamUnavailable

if TYPE_CHECKING:
    from schema.members import Member, Organization


# --------------------------------------------------------------------------- enums

@strawberry.enum
class BenefitKind(Enum):
    MEDICAL = "MEDICAL"
    HOSPITAL_ALLOWANCE = "HOSPITAL_ALLOWANCE"
    CRITICAL_ILLNESS = "CRITICAL_ILLNESS"
    DISABILITY = "DISABILITY"


@strawberry.enum
class EnrollmentStatus(Enum):
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"


@strawberry.enum
class ClaimKind(Enum):
    HOSPITALIZATION = "HOSPITALIZATION"
    ACCIDENT_DISABILITY = "ACCIDENT_DISABILITY"


@strawberry.enum
class ClaimStatus(Enum):
    SUBMITTED = "SUBMITTED"
    PENDING_REVIEW = "PENDING_REVIEW"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    PAID = "PAID"


@strawberry.enum
class ClaimRejection(Enum):
    NOT_ENROLLED = "NOT_ENROLLED"
    WAITING_PERIOD = "WAITING_PERIOD"
    NO_MEDICAL_INSURANCE = "NO_MEDICAL_INSURANCE"
    NOT_ELIGIBLE = "NOT_ELIGIBLE"
    SETTLEMENT_NOT_FOUND = "SETTLEMENT_NOT_FOUND"
    MEMBER_MISMATCH = "MEMBER_MISMATCH"
    NOTHING_PAYABLE = "NOTHING_PAYABLE"


@strawberry.enum
class ClaimStatsDimension(Enum):
    PLAN = "PLAN"
    BENEFIT = "BENEFIT"
    ORGANIZATION = "ORGANIZATION"
    MONTH = "MONTH"
    STATUS = "STATUS"


# --------------------------------------------------------------------------- plans and enrolments

@strawberry.type
class BenefitRule:
    kind: BenefitKind
    description: str


@strawberry.federation.type(keys=["code"])
class Plan:
    code: str = strawberry.field(description="HCA (住院+重疾+意外), SI5 (五年期大病), FW3 (三年期女职工).")
    name: str
    premium: Decimal
    term_months: int
    benefits: list[BenefitRule]

    @classmethod
    async def resolve_reference(cls, info: Info, code: str) -> PlanRow | None:
        require(info, scopes.CLAIMS_READ)
        return await info.context.loaders.plan_by_code.load(code)

    @classmethod
    def is_type_of(cls, obj: Any, info: Info) -> bool:
        return isinstance(obj, PlanRow)


@strawberry.federation.type(keys=["id"])
class Enrollment:
    id: strawberry.ID
    coverage_start: date
    coverage_end: date
    premium_paid: Decimal
    status: EnrollmentStatus

    @strawberry.field(extensions=requires(scopes.MEMBERS_READ))
    def member(self, info: Info) -> Annotated["Member", strawberry.lazy("schema.members")]:
        return ready(info.context.loaders.member_by_id, self.member_id)

    @strawberry.field
    def plan(self, info: Info) -> Plan:
        return ready(info.context.loaders.plan_by_code, self.plan_code)

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> EnrollmentRow | None:
        require(info, scopes.CLAIMS_READ)
        return await info.context.loaders.enrollment_by_id.load(id)

    @classmethod
    def is_type_of(cls, obj: Any, info: Info) -> bool:
        return isinstance(obj, EnrollmentRow)


# --------------------------------------------------------------------------- insurance system

@strawberry.type(description="A hospital stay as the city medical-insurance system (医保) settled it.")
class MedicalSettlement:
    hospital_name: str
    admission_date: date
    discharge_date: date
    diagnosis_name: str | None
    total_cost: Decimal
    fund_paid: Decimal
    self_pay_in_policy: Decimal
    self_pay_out_of_policy: Decimal
    settled_at: datetime

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.settlement_id)

    @strawberry.field(description="ICD-10. Null unless the caller has medical:read.")
    def diagnosis_code(self, info: Info) -> str | None:
        if self.diagnosis_code is None or not info.context.viewer.has(scopes.MEDICAL_READ):
            return None
        audit.note(kind=audit.MEDICAL_READ, entity_type="MedicalSettlement", entity_id=self.settlement_id,
                   field_name="diagnosisCode")
        return self.diagnosis_code

    @classmethod
    def is_type_of(cls, obj: Any, info: Info) -> bool:
        return isinstance(obj, Settlement)


@strawberry.type
class MedicalInsuranceCoverage:
    insured: bool
    scheme: str | None
    since: date | None

    @classmethod
    def is_type_of(cls, obj: Any, info: Info) -> bool:
        return isinstance(obj, Coverage)


def _unavailable(cause: BaseException | None = None) -> UpstreamUnavailable:
    error = UpstreamUnavailable("The medical-insurance system cannot be reached; try again later.")
    error.__cause__ = cause
    return error


def _answered(result: Any) -> Any:
    if isinstance(result, InsuranceUnavailable):
        raise _unavailable(result)
    return result


async def _answer_of(pending: Awaitable[Any]) -> Any:
    try:
        return _answered(await pending)
    except InsuranceUnavailable as exc:
        raise _unavailable(exc) from exc


def _from_insurance(loader: Any, key: Any) -> Any:
    """The loader's answer (now if prefetched); UPSTREAM_UNAVAILABLE when the system cannot answer."""
    if loader is None:
        raise _unavailable()
    value = ready(loader, key)
    return _answer_of(value) if inspect.isawaitable(value) else _answered(value)


def settlement_of(info: Info, settlement_id: str) -> Settlement | None | Awaitable[Settlement | None]:
    """The settlement by id through the request's loader; UPSTREAM_UNAVAILABLE when the system cannot answer."""
    return _from_insurance(info.context.loaders.settlement_by_id, settlement_id)


def coverage_today(info: Info, national_id: str) -> Coverage | None | Awaitable[Coverage | None]:
    """Coverage on today's date (Asia/Shanghai); UPSTREAM_UNAVAILABLE when the system cannot answer."""
    return _from_insurance(info.context.loaders.coverage_by_national_id, (national_id, datetime.now(SHANGHAI).date()))


# --------------------------------------------------------------------------- claims

@strawberry.type
class ClaimLine:
    benefit: BenefitKind
    plan_code: str
    amount: Decimal
    note: str | None


@strawberry.federation.type(keys=["id"])
class Claim:
    id: strawberry.ID
    kind: ClaimKind
    status: ClaimStatus
    rejection_reason: ClaimRejection | None
    total_payout: Decimal
    submitted_at: datetime
    decided_at: datetime | None
    paid_at: datetime | None
    payment_ref: str | None

    @strawberry.field(extensions=requires(scopes.MEMBERS_READ))
    def member(self, info: Info) -> Annotated["Member", strawberry.lazy("schema.members")]:
        return ready(info.context.loaders.member_by_id, self.member_id)

    @strawberry.field(description="The stay as the medical-insurance system settled it (batched look-up). "
                                  "Null for accident claims.")
    def settlement(self, info: Info) -> MedicalSettlement | None:
        if self.settlement_id is None:
            return None
        return settlement_of(info, self.settlement_id)

    @strawberry.field
    def lines(self, info: Info) -> list[ClaimLine]:
        return ready(info.context.loaders.claim_lines_by_claim_id, self.id)

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> ClaimRow | None:
        require(info, scopes.CLAIMS_READ)
        return await info.context.loaders.claim_by_id.load(id)

    @classmethod
    def is_type_of(cls, obj: Any, info: Info) -> bool:
        return isinstance(obj, ClaimRow)


@strawberry.type
class ClaimEdge:
    node: Claim
    cursor_of: strawberry.Private[Callable[[Any], str]]

    @strawberry.field
    def cursor(self) -> str:
        return self.cursor_of(self.node)


@strawberry.type
class ClaimConnection:
    edges: list[ClaimEdge]
    page_info: PageInfo
    total: strawberry.Private[int | Callable[[], Awaitable[int]]]

    @strawberry.field
    def total_count(self) -> int:
        return total_of(self.total)


def claim_cursor(row: ClaimRow) -> str:
    return encode_cursor("claim", row.id)


def claim_connection(rows: list[ClaimRow], first: int, total: int | Callable[[], Awaitable[int]]) -> ClaimConnection:
    """A ClaimConnection over rows fetched first + 1 (newest first)."""
    edges, page_info = build_edges(ClaimEdge, rows, first, claim_cursor)
    return ClaimConnection(edges=edges, page_info=page_info, total=total)


@strawberry.input
class ClaimFilter:
    member_id: strawberry.ID | None = None
    organization_id: strawberry.ID | None = strawberry.field(
        default=None, description="Claims of members of this organization or any under it (as of submission).")
    status: ClaimStatus | None = None
    plan_code: str | None = None
    submitted_from: date | None = strawberry.field(default=None, description="Inclusive, Asia/Shanghai.")
    submitted_to: date | None = strawberry.field(default=None, description="Inclusive, Asia/Shanghai.")


def claim_query(f: ClaimFilter | None) -> ClaimQuery:
    """The source's form of a ClaimFilter."""
    if f is None:
        return ClaimQuery()
    return ClaimQuery(member_id=f.member_id, organization_id=f.organization_id,
                      status=f.status.value if f.status else None, plan_code=f.plan_code,
                      submitted_from=f.submitted_from, submitted_to=f.submitted_to)


# --------------------------------------------------------------------------- statistics

@strawberry.type
class ClaimStatsRow:
    plan_code: str | None
    benefit: BenefitKind | None
    month: str | None = strawberry.field(description="YYYY-MM of submittedAt, Asia/Shanghai.")
    status: ClaimStatus | None
    claims: int
    members: int
    payout: Decimal

    @strawberry.field(description="The DISTRICT-level organization the member belongs under "
                                  "(the CITY org for members directly under it).")
    def organization(self, info: Info) -> Annotated["Organization", strawberry.lazy("schema.members")] | None:
        if self.organization_id is None:
            return None
        return ready(info.context.loaders.organization_by_id, self.organization_id)

    @classmethod
    def is_type_of(cls, obj: Any, info: Info) -> bool:
        return isinstance(obj, StatsRow)


# --------------------------------------------------------------------------- mutation inputs

@strawberry.input
class EnrollMemberInput:
    member_id: strawberry.ID
    plan_code: str
    coverage_start: date


@strawberry.input
class HospitalizationClaimInput:
    member_id: strawberry.ID
    settlement_id: strawberry.ID


@strawberry.input
class AccidentClaimInput:
    member_id: strawberry.ID
    accident_date: date
    disability_grade: int
    assessment_ref: str


@strawberry.input
class ReviewClaimInput:
    claim_id: strawberry.ID
    approve: bool
    note: str | None = None


@strawberry.input
class MarkClaimPaidInput:
    claim_id: strawberry.ID
    payment_ref: str


__all__ = [
    "AccidentClaimInput", "BenefitKind", "BenefitRule", "Claim", "ClaimConnection", "ClaimEdge", "ClaimFilter",
    "ClaimKind", "ClaimLine", "ClaimRejection", "ClaimStatsDimension", "ClaimStatsRow", "ClaimStatus",
    "EnrollMemberInput", "Enrollment", "EnrollmentStatus", "HospitalizationClaimInput", "MarkClaimPaidInput",
    "MedicalInsuranceCoverage", "MedicalSettlement", "Plan", "ReviewClaimInput", "claim_connection", "claim_query",
    "coverage_today", "settlement_of",
]
