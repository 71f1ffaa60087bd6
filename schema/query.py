"""The Query root: each field names its resolver (resolvers/queries.py) and the scope it needs."""
from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry

from resolvers import queries
from schema import scopes
from schema.claims import Claim, ClaimConnection, ClaimFilter, ClaimStatsDimension, ClaimStatsRow, Plan
from schema.contracts import BargainingContract, BargainingContractConnection, ContractFilter
from schema.members import Member, MemberConnection, MemberFilter, Organization
from schema.permissions import requires
from schema.recruitment import RecruitmentEventConnection, RecruitmentEventFilter
from schema.viewer import ViewerType
from strawberry.types import Info


@strawberry.type
class Query:
    @strawberry.field(description="The caller, as its API key identifies it.")
    def viewer(self, info: Info) -> ViewerType:
        return queries.viewer(info)

    @strawberry.field(extensions=requires(scopes.MEMBERS_READ))
    async def organization(self, info: Info, id: strawberry.ID) -> Organization | None:
        return await queries.organization(info, id)

    @strawberry.field(extensions=requires(scopes.MEMBERS_READ))
    async def member(self, info: Info, id: strawberry.ID) -> Member | None:
        return await queries.member(info, id)

    @strawberry.field(extensions=requires(scopes.MEMBERS_READ), description="Visible members by id.")
    async def members(self, info: Info, filter: MemberFilter | None = None, first: int | None = 50,
                      after: str | None = None) -> MemberConnection:
        return await queries.members(info, filter, first, after)

    @strawberry.field(extensions=requires(scopes.CLAIMS_READ))
    async def plans(self, info: Info) -> list[Plan]:
        return await queries.plans(info)

    @strawberry.field(extensions=requires(scopes.CLAIMS_READ))
    async def claim(self, info: Info, id: strawberry.ID) -> Claim | None:
        return await queries.claim(info, id)

    @strawberry.field(extensions=requires(scopes.CLAIMS_READ), description="Visible claims, newest first.")
    async def claims(self, info: Info, filter: ClaimFilter | None = None, first: int | None = 50,
                     after: str | None = None) -> ClaimConnection:
        return await queries.claims(info, filter, first, after)

    @strawberry.field(extensions=requires(scopes.CONTRACTS_READ))
    async def contract(self, info: Info, id: strawberry.ID) -> BargainingContract | None:
        return await queries.contract(info, id)

    @strawberry.field(extensions=requires(scopes.CONTRACTS_READ), description="Visible contracts by id.")
    async def contracts(self, info: Info, filter: ContractFilter | None = None, first: int | None = 50,
                        after: str | None = None) -> BargainingContractConnection:
        return await queries.contracts(info, filter, first, after)

    @strawberry.field(extensions=requires(scopes.RECRUITMENT_READ), description="Visible events by start time.")
    async def recruitment_events(self, info: Info, filter: RecruitmentEventFilter | None = None,
                                 first: int | None = 50, after: str | None = None) -> RecruitmentEventConnection:
        return await queries.recruitment_events(info, filter, first, after)

    @strawberry.field(extensions=requires(scopes.STATS_READ),
                      description="Aggregates for reporting tools. Rows are grouped by the dimensions asked; "
                                  "the other dimension fields are null.")
    async def claim_stats(self, info: Info,
                          date_from: Annotated[date, strawberry.argument(name="from")],
                          date_to: Annotated[date, strawberry.argument(name="to")],
                          group_by: list[ClaimStatsDimension]) -> list[ClaimStatsRow]:
        return await queries.claim_stats(info, date_from, date_to, group_by)
