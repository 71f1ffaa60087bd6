"""Loaders: every dataloader of one request, created lazily, sharing the request's Viewer.

Look-ups by key read from their source's pool that plans each statement
once per connection (sources/database.py); pages, counts and groupings from
the default pool, planned for each run's values.

Make one per request (and per subscription event): the loaders' caches are
that request's view of the sources. The visible organization ids, which the
claims, contracts and recruitment sources filter by, are fetched at most
once per request from the members source, and never for the CITY key.
"""
from __future__ import annotations

import asyncio
from functools import cached_property
from typing import Any

from aiodataloader import DataLoader

from sources import claims, contracts, members, recruitment
from sources.database import Databases
from sources.viewer import Viewer


class Loaders:
    """The request's dataloaders (attributes named after what they load)."""

    def __init__(self, *, databases: Databases, viewer: Viewer, insurance: Any = None, batching: bool = True) -> None:
        self.databases = databases
        self.viewer = viewer
        self.insurance = insurance
        self.batching = batching
        self._visible: asyncio.Future[list[str] | None] | None = None
        self._visible_set: frozenset[str] | None = None
        self._members_by_org: dict[members.MemberQuery, members.MembersByOrganizationIdLoader] = {}

    def release(self) -> None:
        """Drop every row this request loaded, once its response is made.

        A request's objects hang together in reference cycles (loaders and the
        bound methods they hold, graphql-core's execution context and its
        plans), so reference counting alone never frees them: the cyclic
        collector did, at ~30 % of the CPU and pauses of 100 ms and more.
        Emptying the caches lets the rows and results go the moment they are
        no longer used.
        """
        for value in list(self.__dict__.values()):
            if isinstance(value, DataLoader):
                value._cache.clear()
                value._queue.clear()
                value.__dict__.pop("_bulk", None)
        self._members_by_org.clear()
        self.__dict__.clear()

    def _made(self, loader: DataLoader) -> DataLoader:
        # Off only for the benchmark's N+1 baseline: every load its own statement.
        loader.batch = self.batching
        return loader

    # ------------------------------------------------------------------ visibility

    async def visible_organization_ids(self) -> list[str] | None:
        """Ids of the organizations the viewer sees, once per request; None when it sees all."""
        if self.viewer.sees_all:
            return None
        if self._visible is None:
            self._visible = asyncio.ensure_future(
                members.visible_organization_ids(self.databases.members, viewer=self.viewer))
        return await asyncio.shield(self._visible)

    async def organization_visible(self, organization_id: str | None) -> bool:
        """Whether a row tagged with `organization_id` is the viewer's to see."""
        if self.viewer.sees_all:
            return True
        if organization_id is None:
            return False
        if self._visible_set is None:
            self._visible_set = frozenset(await self.visible_organization_ids() or ())
        return organization_id in self._visible_set

    # ------------------------------------------------------------------ members source

    @cached_property
    def organization_by_id(self) -> members.OrganizationByIdLoader:
        return self._made(members.OrganizationByIdLoader(self.databases.planned_once("members"), self.viewer))

    @cached_property
    def organizations_by_parent_id(self) -> members.OrganizationsByParentIdLoader:
        return self._made(members.OrganizationsByParentIdLoader(self.databases.members, self.viewer,
                                                                self.organization_by_id))

    @cached_property
    def employer_by_id(self) -> members.EmployerByIdLoader:
        return self._made(members.EmployerByIdLoader(self.databases.planned_once("members")))

    @cached_property
    def member_count_by_employer_id(self) -> members.MemberCountByEmployerIdLoader:
        return self._made(members.MemberCountByEmployerIdLoader(self.databases.members, self.viewer))

    @cached_property
    def member_by_id(self) -> members.MemberByIdLoader:
        return self._made(members.MemberByIdLoader(self.databases.planned_once("members"), self.viewer))

    @cached_property
    def member_with_links_by_id(self) -> members.MemberWithLinksByIdLoader:
        return self._made(members.MemberWithLinksByIdLoader(
            self.databases.planned_once("members"), self.viewer, employers=self.employer_by_id,
            organizations=self.organization_by_id, members=self.member_by_id))

    def members_by_organization_id(self, where: members.MemberQuery) -> members.MembersByOrganizationIdLoader:
        """One loader per distinct filter, so a batch is one statement."""
        loader = self._members_by_org.get(where)
        if loader is None:
            loader = self._members_by_org[where] = self._made(members.MembersByOrganizationIdLoader(
                self.databases.members, self.viewer, where, self.member_by_id))
        return loader

    # ------------------------------------------------------------------ claims source

    @cached_property
    def plan_by_code(self) -> claims.PlanByCodeLoader:
        return self._made(claims.PlanByCodeLoader(self.databases.claims))

    @cached_property
    def enrollment_by_id(self) -> claims.EnrollmentByIdLoader:
        return self._made(claims.EnrollmentByIdLoader(
            self.databases.planned_once("claims"), self.visible_organization_ids))

    @cached_property
    def enrollments_by_member_id(self) -> claims.EnrollmentsByMemberIdLoader:
        return self._made(claims.EnrollmentsByMemberIdLoader(
            self.databases.planned_once("claims"), self.visible_organization_ids, plans=self.plan_by_code))

    @cached_property
    def claim_by_id(self) -> claims.ClaimByIdLoader:
        return self._made(claims.ClaimByIdLoader(self.databases.planned_once("claims"), self.visible_organization_ids))

    @cached_property
    def claims_by_member_id(self) -> claims.ClaimsByMemberIdLoader:
        return self._made(claims.ClaimsByMemberIdLoader(
            self.databases.planned_once("claims"), self.visible_organization_ids, self.claim_by_id))

    @cached_property
    def claim_lines_by_claim_id(self) -> claims.ClaimLinesByClaimIdLoader:
        return self._made(claims.ClaimLinesByClaimIdLoader(self.databases.planned_once("claims")))

    def member_claims(self, *, lines: bool, enrollments: bool) -> claims.MemberClaimsLoader:
        """Member.claims' pages, with their lines and the members' enrolments in the same statement as asked.

        One loader per combination, kept in __dict__ as the cached properties
        are (release() empties it with them).
        """
        name = f"member_claims_{'lines' if lines else ''}_{'enrollments' if enrollments else ''}"
        loader = self.__dict__.get(name)
        if loader is None:
            loader = self.__dict__[name] = self._made(claims.MemberClaimsLoader(
                self.databases.planned_once("claims"), self.visible_organization_ids, self.claims_by_member_id,
                lines=self.claim_lines_by_claim_id if lines else None,
                enrollments=self.enrollments_by_member_id if enrollments else None))
        return loader

    # ------------------------------------------------------------------ contracts source

    @cached_property
    def contract_by_id(self) -> contracts.ContractByIdLoader:
        return self._made(contracts.ContractByIdLoader(
            self.databases.planned_once("contracts"), self.visible_organization_ids))

    # ------------------------------------------------------------------ recruitment source

    @cached_property
    def event_by_id(self) -> recruitment.EventByIdLoader:
        return self._made(recruitment.EventByIdLoader(
            self.databases.planned_once("recruitment"), self.visible_organization_ids))

    @cached_property
    def posting_by_id(self) -> recruitment.PostingByIdLoader:
        return self._made(recruitment.PostingByIdLoader(
            self.databases.planned_once("recruitment"), self.visible_organization_ids))

    @cached_property
    def postings_by_event_id(self) -> recruitment.PostingsByEventIdLoader:
        return self._made(recruitment.PostingsByEventIdLoader(self.databases.recruitment, self.posting_by_id))

    @cached_property
    def employers_by_event_id(self) -> recruitment.EmployersByEventIdLoader:
        return self._made(recruitment.EmployersByEventIdLoader(self.databases.recruitment, self.employer_by_id))

    # ------------------------------------------------------------------ insurance system

    @cached_property
    def settlement_by_id(self) -> DataLoader | None:
        """Settlements by id; None when the process has no insurance client."""
        if self.insurance is None:
            return None
        from sources.insurance_loaders import SettlementByIdLoader

        return self._made(SettlementByIdLoader(self.insurance))

    @cached_property
    def coverage_by_national_id(self) -> DataLoader | None:
        """Coverage by (national id, date); None when the process has no insurance client."""
        if self.insurance is None:
            return None
        from sources.insurance_loaders import CoverageByNationalIdLoader

        return self._made(CoverageByNationalIdLoader(self.insurance))
