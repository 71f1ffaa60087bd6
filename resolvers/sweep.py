"""The proactive sweep ('不见面'): open and decide claims on new settlements without anyone applying.

For every member with a live enrolment it asks the insurance system, 200
national ids a call, for settlements since where the last sweep started,
opens a claim (origin SWEEP) on each stay one of the member's enrolments
covers, and decides it like a submission. The (member, settlement)
idempotency key makes a re-run open nothing twice; PENDING_REVIEW claims
left by earlier outages are decided too.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from opentelemetry import trace

from resolvers.claims_service import SYSTEM_VIEWER, decide_pending_claims, open_hospitalization_claim
from sources import claims_store as store
from sources.database import Databases
from sources.insurance import BATCH_LIMIT
from sources.members import members_by_ids

tracer = trace.get_tracer("union_gateway.settlement")

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: With no remembered position, the first sweep looks at every settlement there is.
BEGINNING = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: A stay settled now may have been admitted this long ago, under an enrolment
#: that has ended since; such members are still asked about.
LONGEST_STAY = timedelta(days=366)
PENDING_BATCH = 100


@dataclass
class SweepReport:
    since: datetime
    members: int = 0
    batches: int = 0
    settlements: int = 0
    not_covered: int = 0
    already_claimed: int = 0
    opened: int = 0
    approved: int = 0
    rejected: int = 0
    pending: int = 0
    pending_decided: int = 0


async def sweep_settlements(*, databases: Databases, insurance: object, since: datetime | None = None,
                            now: datetime | None = None, batch_size: int = BATCH_LIMIT,
                            progress: Callable[[int, int], None] | None = None) -> SweepReport:
    """Sweep once; `since` overrides the remembered position. Raises InsuranceUnavailable if a call fails."""
    if insurance is None:
        raise ValueError("the sweep needs the insurance system")
    started = now or datetime.now(timezone.utc)
    if since is None:
        since = await store.sweep_since(databases.claims) or BEGINNING
    report = SweepReport(since=since)
    with tracer.start_as_current_span("settlement.sweep") as span:
        member_ids = await store.enrolled_member_ids(
            databases.claims, covering_from=since.astimezone(SHANGHAI).date() - LONGEST_STAY,
            covering_to=started.astimezone(SHANGHAI).date())
        report.members = len(member_ids)
        for start in range(0, len(member_ids), batch_size):
            batch = member_ids[start:start + batch_size]
            await _sweep_batch(databases, insurance, batch, since, report)
            if progress is not None:
                progress(min(start + batch_size, len(member_ids)), len(member_ids))
        while (decided := await decide_pending_claims(databases=databases, insurance=insurance,
                                                      limit=PENDING_BATCH)) > 0:
            report.pending_decided += decided
            if decided < PENDING_BATCH:
                break
        # The start, not the newest settled_at seen: a settlement recorded while
        # this sweep ran is then still found by the next one.
        await store.save_sweep_since(databases.claims, started)
        for name in ("members", "batches", "settlements", "opened", "approved", "rejected", "pending"):
            span.set_attribute(f"sweep.{name}", getattr(report, name))
    return report


async def _sweep_batch(databases: Databases, insurance: object, member_ids: list[str], since: datetime,
                       report: SweepReport) -> None:
    members = {m.id: m for m in await members_by_ids(databases.members, ids=member_ids, viewer=SYSTEM_VIEWER)}
    by_national_id = {m.national_id: m for m in members.values()}
    if not by_national_id:
        return
    settlements = await insurance.search_settlements(list(by_national_id), since)  # type: ignore[attr-defined]
    report.batches += 1
    report.settlements += len(settlements)
    enrollments = await store.enrollments_of_members(databases.claims, list(members))
    claimed = await store.claims_by_settlement(
        databases.claims,
        [(by_national_id[s.national_id].id, s.settlement_id) for s in settlements if s.national_id in by_national_id])
    for settlement in settlements:
        member = by_national_id.get(settlement.national_id)
        if member is None:
            continue
        if (member.id, settlement.settlement_id) in claimed:
            report.already_claimed += 1
            continue
        if not any(e.term().covers(settlement.admission_date) for e in enrollments.get(member.id, ())):
            # A stay no enrolment covers is not the fund's: no claim is opened for it.
            report.not_covered += 1
            continue
        claim, opened = await open_hospitalization_claim(
            databases=databases, insurance=insurance, member=member, settlement_id=settlement.settlement_id,
            origin="SWEEP", settlement=settlement)
        if not opened:
            report.already_claimed += 1
            continue
        report.opened += 1
        if claim.status == "APPROVED":
            report.approved += 1
        elif claim.status == "REJECTED":
            report.rejected += 1
        else:
            report.pending += 1
