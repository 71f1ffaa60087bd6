"""Organizations, employers and members.

Objects are the sources' frozen rows: leaf fields are plain attributes, link
fields call a loader, and is_type_of recognises the rows (for _entities).
"""
from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import date
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from domain.national_id import mask_national_id, mask_phone
from sources import audit
from schema import scopes
from schema.pagination import PageInfo, build_edges, decode_cursor, encode_cursor, page_size, total_of
from schema.permissions import requires
from schema.prefetch import _node_selections as _connection_nodes
from schema.prefetch import claims_page_key, prefetch, ready, then
from sources.members import EmployerRow, MemberQuery, MemberRow, OrganizationRow
from web.errors import Forbidden

if TYPE_CHECKING:
    from schema.claims import ClaimConnection, Enrollment, MedicalInsuranceCoverage


@functools.cache
def _claims_schema():
    """schema.claims, imported on first use (it imports this module); cached: resolvers run per row."""
    from schema import claims

    return claims


@strawberry.enum
class OrgLevel(Enum):
    CITY = "CITY"
    DISTRICT = "DISTRICT"
    GRASSROOTS = "GRASSROOTS"


@strawberry.enum
class Gender(Enum):
    FEMALE = "FEMALE"
    MALE = "MALE"


@strawberry.enum
class EmploymentType(Enum):
    REGULAR = "REGULAR"
    DISPATCHED = "DISPATCHED"


@strawberry.input
class MemberFilter:
    organization_id: strawberry.ID | None = strawberry.field(
        default=None, description="Members of this organization and of every organization under it.")
    employer_id: strawberry.ID | None = None
    name_contains: str | None = None
    gender: Gender | None = None
    employment_type: EmploymentType | None = None


def member_query(f: MemberFilter | None) -> MemberQuery:
    """The source's form of a MemberFilter."""
    if f is None:
        return MemberQuery()
    return MemberQuery(
        organization_id=f.organization_id, employer_id=f.employer_id, name_contains=f.name_contains or None,
        gender=f.gender.value if f.gender else None,
        employment_type=f.employment_type.value if f.employment_type else None,
    )


def require(info: Info, scope: str) -> None:
    """FORBIDDEN unless the key holds `scope` (for _entities, which has no field of its own per type)."""
    if not info.context.viewer.has(scope):
        raise Forbidden(f"This API key lacks the '{scope}' scope.")


@strawberry.federation.type(keys=["id"])
class Organization:
    id: strawberry.ID
    name: str
    level: OrgLevel

    @strawberry.field(description="Null above the caller's own organization.")
    def parent(self, info: Info) -> Organization | None:
        if self.parent_id is None:
            return None
        return ready(info.context.loaders.organization_by_id, self.parent_id)

    @strawberry.field
    def children(self, info: Info) -> list[Organization]:
        return ready(info.context.loaders.organizations_by_parent_id, self.id)

    @strawberry.field(extensions=requires(scopes.MEMBERS_READ),
                      description="Members directly in this organization, by id.")
    async def members(self, info: Info, filter: MemberFilter | None = None, first: int | None = 50,
                      after: str | None = None) -> MemberConnection:
        limit = page_size(first)
        after_key = decode_cursor("member", after, str)
        loader = info.context.loaders.members_by_organization_id(member_query(filter))
        page = await loader.load((self.id, limit + 1, after_key[0] if after_key else None))
        await prefetch(info, "Member", page.rows[:limit], [s for f in info.selected_fields for s in _connection_nodes(f)])
        return member_connection(page.rows, limit, page.total)

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> OrganizationRow | None:
        require(info, scopes.MEMBERS_READ)
        return await info.context.loaders.organization_by_id.load(id)

    @classmethod
    def is_type_of(cls, obj: Any, info: Info) -> bool:
        return isinstance(obj, OrganizationRow)


@strawberry.federation.type(keys=["id"])
class Employer:
    id: strawberry.ID
    name: str
    credit_code: str = strawberry.field(description="统一社会信用代码, 18 characters.")
    industry: str | None

    @strawberry.field(description="Null when outside the caller's organizations.")
    def organization(self, info: Info) -> Organization | None:
        if self.organization_id is None:
            return None
        return ready(info.context.loaders.organization_by_id, self.organization_id)

    @strawberry.field(extensions=requires(scopes.MEMBERS_READ),
                      description="Union members working here that the caller can see.")
    def member_count(self, info: Info) -> int:
        return ready(info.context.loaders.member_count_by_employer_id, self.id)

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> EmployerRow | None:
        require(info, scopes.MEMBERS_READ)
        loaders = info.context.loaders
        row = await loaders.employer_by_id.load(id)
        if row is None or not await loaders.organization_visible(row.organization_id):
            return None
        return row

    @classmethod
    def is_type_of(cls, obj: Any, info: Info) -> bool:
        return isinstance(obj, EmployerRow)


@strawberry.federation.type(keys=["id"])
class Member:
    id: strawberry.ID
    name: str
    gender: Gender
    birth_date: date
    employment_type: EmploymentType
    joined_on: date

    @strawberry.field(description="Masked as the first 6 and last 4 characters with 8 '*' between, "
                                  "unless the caller has pii:read.")
    def national_id(self, info: Info) -> str:
        if info.context.viewer.has(scopes.PII_READ):
            audit.note(kind=audit.PII_READ, entity_type="Member", entity_id=self.id, field_name="nationalId")
            return self.national_id
        return mask_national_id(self.national_id)

    @strawberry.field(description="Masked as first 3 and last 4 with '****' between, unless pii:read.")
    def phone(self, info: Info) -> str | None:
        if self.phone is None:
            return None
        if info.context.viewer.has(scopes.PII_READ):
            audit.note(kind=audit.PII_READ, entity_type="Member", entity_id=self.id, field_name="phone")
            return self.phone
        return mask_phone(self.phone)

    @strawberry.field
    def employer(self, info: Info) -> Employer:
        return ready(info.context.loaders.employer_by_id, self.employer_id)

    @strawberry.field
    def organization(self, info: Info) -> Organization:
        return ready(info.context.loaders.organization_by_id, self.organization_id)

    @strawberry.field(extensions=requires(scopes.CLAIMS_READ))
    def enrollments(self, info: Info) -> list[Annotated["Enrollment", strawberry.lazy("schema.claims")]]:
        return ready(info.context.loaders.enrollments_by_member_id, self.id)

    @strawberry.field(extensions=requires(scopes.CLAIMS_READ), description="Newest first.")
    def claims(self, info: Info, first: int | None = 20,
               after: str | None = None) -> Annotated["ClaimConnection", strawberry.lazy("schema.claims")]:
        claim_connection = _claims_schema().claim_connection
        limit = page_size(first)
        page = ready(info.context.loaders.claims_by_member_id, claims_page_key(self.id, first, after))
        return then(page, lambda p: claim_connection(p.rows, limit, p.total))

    @strawberry.field(extensions=requires(scopes.CLAIMS_READ),
                      description="Live from the medical-insurance system; null with an UPSTREAM_UNAVAILABLE "
                                  "error if it cannot be reached.")
    def medical_insurance(
            self, info: Info) -> Annotated["MedicalInsuranceCoverage", strawberry.lazy("schema.claims")] | None:
        from schema.claims import coverage_today

        return coverage_today(info, self.national_id)

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> MemberRow | None:
        require(info, scopes.MEMBERS_READ)
        return await info.context.loaders.member_by_id.load(id)

    @classmethod
    def is_type_of(cls, obj: Any, info: Info) -> bool:
        return isinstance(obj, MemberRow)


@strawberry.type
class MemberEdge:
    node: Member
    cursor_of: strawberry.Private[Callable[[Any], str]]

    @strawberry.field
    def cursor(self) -> str:
        return self.cursor_of(self.node)


@strawberry.type
class MemberConnection:
    edges: list[MemberEdge]
    page_info: PageInfo
    total: strawberry.Private[int | Callable[[], Awaitable[int]]]

    @strawberry.field
    def total_count(self) -> int:
        return total_of(self.total)


def member_cursor(row: MemberRow) -> str:
    return encode_cursor("member", row.id)


def member_connection(rows: list[MemberRow], first: int,
                      total: int | Callable[[], Awaitable[int]]) -> MemberConnection:
    """A MemberConnection over rows fetched first + 1."""
    edges, page_info = build_edges(MemberEdge, rows, first, member_cursor)
    return MemberConnection(edges=edges, page_info=page_info, total=total)
