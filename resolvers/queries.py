"""Root query resolvers: check arguments, call a source or a loader, wrap rows in connections.

Scopes are not checked here: the Query fields carry RequireScope.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date

import strawberry
from strawberry.types import Info

from schema.claims import ClaimConnection, ClaimFilter, ClaimStatsDimension, claim_connection, claim_query
from schema.contracts import BargainingContractConnection, ContractFilter, contract_connection, contract_query
from schema.members import MemberConnection, MemberFilter, member_connection, member_query
from schema.pagination import decode_cursor, page_size
from schema.prefetch import connection_prefetch, connection_selections, prefetch, selected_names
from schema.recruitment import RecruitmentEventConnection, RecruitmentEventFilter, event_after, event_connection, event_query
from sources import claim_stats as stats_source
from sources import claims as claims_source
from sources import contracts as contracts_source
from sources import members as members_source
from sources import recruitment as recruitment_source
from sources.claim_stats import ClaimStatsRow
from sources.claims import ClaimRow, PlanRow
from sources.contracts import ContractRow
from sources.members import MemberRow, OrganizationRow
from sources.bulk_load import prime_values
from sources.viewer import Viewer
from web.errors import BadUserInput

#: claimStats reads at most this many days at once, so one request cannot scan the whole history.
MAX_STATS_DAYS = 3 * 366


def viewer(info: Info) -> Viewer:
    return info.context.viewer


async def organization(info: Info, id: strawberry.ID) -> OrganizationRow | None:
    row = await info.context.loaders.organization_by_id.load(id)
    await prefetch(info, "Organization", [row])
    return row


async def member(info: Info, id: strawberry.ID) -> MemberRow | None:
    loaders = info.context.loaders
    # A member page's employer and organization come with the member: one statement, not three.
    wants_links = bool({"employer", "organization"} & selected_names(info.selected_fields, "Member"))
    row = await (loaders.member_with_links_by_id if wants_links else loaders.member_by_id).load(id)
    await prefetch(info, "Member", [row])
    return row


async def members(info: Info, filter: MemberFilter | None = None, first: int | None = 50,
                  after: str | None = None) -> MemberConnection:
    ctx = info.context
    limit = page_size(first)
    after_key = decode_cursor("member", after, str)
    where = member_query(filter)
    pool = ctx.state.databases.members
    selected = info.selected_fields
    on_connection, on_node = connection_selections(selected, "MemberConnection", "Member")
    # A staff list's employer, organization and total come with the page: one statement, not four.
    # Its shape is chosen from the subtree's size and its LIMIT is in its text, so one plan
    # serves every run (sources/database.py).
    page = await members_source.list_members(
        ctx.state.databases.planned_once("members"), viewer=ctx.viewer, where=where, limit=limit + 1,
        after_id=after_key[0] if after_key else None,
        with_links=bool({"employer", "organization"} & on_node), with_total="totalCount" in on_connection)
    prime_values(ctx.loaders.employer_by_id, page.employers)
    prime_values(ctx.loaders.organization_by_id, page.organizations)  # visible: their members are
    prime_values(ctx.loaders.member_by_id, {row.id: row for row in page.rows})
    await connection_prefetch(info, "Member", page.rows[:limit], selected)

    async def count() -> int:
        return await members_source.count_members(pool, viewer=ctx.viewer, where=where)

    return member_connection(page.rows, limit, count if page.total is None else page.total)


async def _with_subtree(info: Info, where):
    """The filter with its organizationId widened to that organization's subtree.

    The claims and contracts sources keep only an organization id, so the
    subtree comes from the members source first: one statement, no join
    across sources.
    """
    if where.organization_id is None:
        return where
    ids = await members_source.subtree_organization_ids(
        info.context.state.databases.members, organization_id=where.organization_id, viewer=info.context.viewer)
    return replace(where, organization_ids=tuple(ids))


async def plans(info: Info) -> list[PlanRow]:
    rows = await claims_source.plans(info.context.state.databases.claims)
    for row in rows:
        info.context.loaders.plan_by_code.prime(row.code, row)
    return rows


async def claim(info: Info, id: strawberry.ID) -> ClaimRow | None:
    row = await info.context.loaders.claim_by_id.load(id)
    await prefetch(info, "Claim", [row])
    return row


async def claims(info: Info, filter: ClaimFilter | None = None, first: int | None = 50,
                 after: str | None = None) -> ClaimConnection:
    ctx = info.context
    limit = page_size(first)
    before = decode_cursor("claim", after, int)
    where = await _with_subtree(info, claim_query(filter))
    if where.submitted_from and where.submitted_to and where.submitted_from > where.submitted_to:
        raise BadUserInput("submittedFrom is after submittedTo.")
    pool = ctx.state.databases.claims
    visible = await ctx.loaders.visible_organization_ids()
    rows = await claims_source.list_claims(pool, visible=visible, where=where, limit=limit + 1,
                                           before_id=before[0] if before else None)
    for row in rows:
        ctx.loaders.claim_by_id.prime(str(row.id), row)
    await connection_prefetch(info, "Claim", rows[:limit])

    async def count() -> int:
        return await claims_source.count_claims(pool, visible=visible, where=where)

    return claim_connection(rows, limit, count)


async def contract(info: Info, id: strawberry.ID) -> ContractRow | None:
    row = await info.context.loaders.contract_by_id.load(id)
    await prefetch(info, "BargainingContract", [row])
    return row


async def contracts(info: Info, filter: ContractFilter | None = None, first: int | None = 50,
                    after: str | None = None) -> BargainingContractConnection:
    ctx = info.context
    limit = page_size(first)
    after_key = decode_cursor("contract", after, str)
    where = await _with_subtree(info, contract_query(filter))
    pool = ctx.state.databases.contracts
    visible = await ctx.loaders.visible_organization_ids()
    rows = await contracts_source.list_contracts(pool, visible=visible, where=where, limit=limit + 1,
                                                 after_id=after_key[0] if after_key else None)
    for row in rows:
        ctx.loaders.contract_by_id.prime(row.id, row)
    await connection_prefetch(info, "BargainingContract", rows[:limit])

    async def count() -> int:
        return await contracts_source.count_contracts(pool, visible=visible, where=where)

    return contract_connection(rows, limit, count)


async def recruitment_events(info: Info, filter: RecruitmentEventFilter | None = None, first: int | None = 50,
                             after: str | None = None) -> RecruitmentEventConnection:
    ctx = info.context
    limit = page_size(first)
    after_key = event_after(after)
    where = event_query(filter)
    pool = ctx.state.databases.recruitment
    visible = await ctx.loaders.visible_organization_ids()
    rows = await recruitment_source.list_events(pool, visible=visible, where=where, limit=limit + 1, after=after_key)
    for row in rows:
        ctx.loaders.event_by_id.prime(row.id, row)
    await connection_prefetch(info, "RecruitmentEvent", rows[:limit])

    async def count() -> int:
        return await recruitment_source.count_events(pool, visible=visible, where=where)

    return event_connection(rows, limit, count)


async def claim_stats(info: Info, date_from: date, date_to: date,
                      group_by: list[ClaimStatsDimension]) -> list[ClaimStatsRow]:
    ctx = info.context
    if date_from > date_to:
        raise BadUserInput("from is after to.")
    if (date_to - date_from).days >= MAX_STATS_DAYS:
        raise BadUserInput(f"from..to spans more than {MAX_STATS_DAYS} days; ask for a shorter period.")
    dims = {d.value for d in group_by}
    districts_json = None
    if stats_source.ORGANIZATION in dims:
        districts_json = await members_source.districts_by_organization_json(ctx.state.databases.members,
                                                                             viewer=ctx.viewer)
    visible = await ctx.loaders.visible_organization_ids()
    return await stats_source.claim_stats(ctx.state.databases.claims, date_from=date_from, date_to=date_to,
                                          group_by=dims, visible=visible, districts_json=districts_json)
