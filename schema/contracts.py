"""Collective bargaining contracts (objects are sources.contracts.ContractRow)."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from schema import scopes
from schema.members import Employer, Organization, require
from schema.prefetch import ready
from schema.pagination import PageInfo, build_edges, encode_cursor, total_of
from sources.contracts import ContractQuery, ContractRow


@strawberry.enum
class ContractKind(Enum):
    COMPREHENSIVE = "COMPREHENSIVE"
    WAGE = "WAGE"
    LABOR_SAFETY = "LABOR_SAFETY"
    FEMALE_PROTECTION = "FEMALE_PROTECTION"
    OCCUPATIONAL_HEALTH = "OCCUPATIONAL_HEALTH"
    TECH_INNOVATION = "TECH_INNOVATION"
    SKILL_LEVEL_WAGE = "SKILL_LEVEL_WAGE"


@strawberry.enum
class ContractStatus(Enum):
    OFFERED = "OFFERED"
    NEGOTIATING = "NEGOTIATING"
    SIGNED = "SIGNED"
    FILED = "FILED"
    EXPIRED = "EXPIRED"


@strawberry.federation.type(keys=["id"])
class BargainingContract:
    id: strawberry.ID
    title: str
    kind: ContractKind
    status: ContractStatus
    campaign: str | None = strawberry.field(description="e.g. 2021春季要约行动")
    effective_from: date | None
    effective_to: date | None
    covered_workers: int
    wage_increase_percent: Decimal | None
    signed_on: date | None

    @strawberry.field
    def employer(self, info: Info) -> Employer:
        return ready(info.context.loaders.employer_by_id, self.employer_id)

    @strawberry.field
    def organization(self, info: Info) -> Organization:
        return ready(info.context.loaders.organization_by_id, self.organization_id)

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> ContractRow | None:
        require(info, scopes.CONTRACTS_READ)
        return await info.context.loaders.contract_by_id.load(id)

    @classmethod
    def is_type_of(cls, obj: Any, info: Info) -> bool:
        return isinstance(obj, ContractRow)


@strawberry.type
class BargainingContractEdge:
    node: BargainingContract
    cursor_of: strawberry.Private[Callable[[Any], str]]

    @strawberry.field
    def cursor(self) -> str:
        return self.cursor_of(self.node)


@strawberry.type
class BargainingContractConnection:
    edges: list[BargainingContractEdge]
    page_info: PageInfo
    total: strawberry.Private[int | Callable[[], Awaitable[int]]]

    @strawberry.field
    def total_count(self) -> int:
        return total_of(self.total)


def contract_connection(rows: list[ContractRow], first: int,
                        total: int | Callable[[], Awaitable[int]]) -> BargainingContractConnection:
    """A BargainingContractConnection over rows fetched first + 1."""
    edges, page_info = build_edges(BargainingContractEdge, rows, first, lambda r: encode_cursor("contract", r.id))
    return BargainingContractConnection(edges=edges, page_info=page_info, total=total)


@strawberry.input
class ContractFilter:
    organization_id: strawberry.ID | None = strawberry.field(
        default=None, description="Contracts of this organization and of every organization under it.")
    employer_id: strawberry.ID | None = None
    kind: ContractKind | None = None
    status: ContractStatus | None = None
    campaign: str | None = None


def contract_query(f: ContractFilter | None) -> ContractQuery:
    """The source's form of a ContractFilter."""
    if f is None:
        return ContractQuery()
    return ContractQuery(organization_id=f.organization_id, employer_id=f.employer_id,
                         kind=f.kind.value if f.kind else None, status=f.status.value if f.status else None,
                         campaign=f.campaign)
