"""`union-gateway seed`: a deterministic, realistic synthetic data set for every source.

The same seed and member count always give byte-identical rows: every random
choice comes from random.Random streams named after the seed, and every date
is relative to seed_data.AS_OF, never to the clock.
"""
from __future__ import annotations

import random
import time
from datetime import timedelta
from dataclasses import dataclass, fields

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from commands.seed_contracts import DEMO_CAMPAIGN, build_contracts
from commands.seed_members import DEMO_MEMBER_ID, DEMO_SETTLEMENT_ID, END_OF_DATA, ClaimDraft, MemberFactory
from commands.seed_orgs import build_tree
from commands.seed_recruitment import SPRING_FAIR_EMPLOYERS, SPRING_FAIR_ID, SPRING_FAIR_POSITIONS, build_recruitment
from commands.seed_writer import SeedWriter
from resolvers.plan_schedule import load_schedule

__all__ = [
    "DEMO_CAMPAIGN", "DEMO_MEMBER_ID", "DEMO_SETTLEMENT_ID", "SPRING_FAIR_EMPLOYERS", "SPRING_FAIR_ID",
    "SPRING_FAIR_POSITIONS", "SeedSummary", "seed_database",
]

CHUNK = 20_000  # members per COPY round: big enough to amortize, small enough to keep memory flat


@dataclass(frozen=True)
class SeedSummary:
    """Rows written, per table, and how long it took."""

    seed: int
    organizations: int
    employers: int
    members: int
    coverage: int
    settlements: int
    unclaimed_settlements: int
    enrollments: int
    claims: int
    claim_lines: int
    payments: int
    contracts: int
    events: int
    event_employers: int
    postings: int
    seconds: float

    def counts(self) -> dict[str, int]:
        """Row counts by table name (without the seed and the timing)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("seed", "seconds",
                                                                                       "unclaimed_settlements")}


def _claim_rows(drafts: list[ClaimDraft]) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Claims, lines and payments, with ids in submission order across all members."""
    _show_every_status(drafts)
    drafts.sort(key=ClaimDraft.sort_key)
    claims, lines, payments = [], [], []
    for claim_id, d in enumerate(drafts, start=1):
        payment_ref = f"PAY{d.paid_at:%Y%m%d}{claim_id:08d}" if d.paid_at else None
        claims.append((claim_id, d.member_id, d.organization_id, d.kind, d.status, d.rejection_reason, d.settlement_id,
                       d.accident_date, d.disability_grade, d.assessment_ref, d.total, d.submitted_at, d.decided_at,
                       d.paid_at, payment_ref, d.origin))
        for line_no, line in enumerate(d.lines, start=1):
            lines.append((claim_id, line_no, line.enrollment_id, line.plan_code, line.benefit, line.amount, line.days,
                          line.note))
        if payment_ref:
            payments.append((len(payments) + 1, claim_id, payment_ref, d.total, d.paid_at))
    return claims, lines, payments


def _show_every_status(drafts: list[ClaimDraft]) -> None:
    """Even a small data set shows a PENDING_REVIEW and a PAID claim."""
    approved = sorted((d for d in drafts if d.status == "APPROVED"), key=ClaimDraft.sort_key)
    if approved and not any(d.status == "PENDING_REVIEW" for d in drafts):
        # Only a member's last claim may lose its lines: no later claim counted them against a cap.
        last = [d for d in approved if d.last_of_member]
        if last:
            d = last[-1]
            d.status, d.lines, d.decided_at = "PENDING_REVIEW", (), None
            approved.remove(d)
    if approved and not any(d.status == "PAID" for d in drafts):
        d = approved[0]
        d.status, d.paid_at = "PAID", min(END_OF_DATA, d.decided_at + timedelta(days=3))


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), disable=not enabled,
    )


async def seed_database(urls: dict[str, str], *, members: int, seed: int = 1, progress: bool = True) -> SeedSummary:
    """Fill empty databases with N members and everything around them; ValueError if any table has rows."""
    if members < 1:
        raise ValueError(f"members must be at least 1, got {members}")
    started = time.perf_counter()
    tree = build_tree(random.Random(f"{seed}/tree"), members=members)
    async with SeedWriter(urls) as writer:
        await writer.refuse_unless_empty()
        schedule = await load_schedule(writer.connections["claims"])
        factory = MemberFactory(random.Random(f"{seed}/members"), tree=tree, schedule=schedule)
        with _progress(progress) as bar:
            task = bar.add_task("organizations", total=2)
            await writer.copy("members.organizations", tree.organizations)
            await writer.copy("members.employers", tree.employer_rows())
            bar.update(task, completed=2)
            task = bar.add_task("members", total=members)
            for first in range(0, members, CHUNK):
                batch = factory.batch(first, min(CHUNK, members - first))
                await writer.copy_many([
                    ("members.members", batch.members),
                    ("claims.enrollments", batch.enrollments),
                    ("insurance_sim.coverage", batch.coverage),
                    ("insurance_sim.settlements", batch.settlements),
                ])
                bar.advance(task, len(batch.members))
            task = bar.add_task("claims", total=len(factory.claims))
            claims, lines, payments = _claim_rows(factory.claims)
            await writer.copy("claims.claims", claims)
            await writer.copy("claims.claim_lines", lines)
            await writer.copy("claims.payments", payments)
            bar.update(task, completed=len(claims))
            task = bar.add_task("contracts, recruitment", total=2)
            contracts = build_contracts(random.Random(f"{seed}/contracts"), employers=tree.employers)
            recruitment = build_recruitment(random.Random(f"{seed}/recruitment"), employers=tree.employers)
            await writer.copy_many([
                ("contracts.contracts", contracts),
                ("recruitment.events", recruitment.events),
                ("recruitment.event_employers", recruitment.event_employers),
                ("recruitment.postings", recruitment.postings),
            ])
            bar.update(task, completed=2)
            await writer.finish()
        c = writer.counts
    return SeedSummary(
        seed=seed,
        organizations=c["members.organizations"], employers=c["members.employers"], members=c["members.members"],
        coverage=c["insurance_sim.coverage"], settlements=c["insurance_sim.settlements"],
        unclaimed_settlements=factory.unclaimed_settlements, enrollments=c["claims.enrollments"],
        claims=c["claims.claims"], claim_lines=c["claims.claim_lines"], payments=c["claims.payments"],
        contracts=c["contracts.contracts"], events=c["recruitment.events"],
        event_employers=c["recruitment.event_employers"], postings=c["recruitment.postings"],
        seconds=round(time.perf_counter() - started, 2),
    )
