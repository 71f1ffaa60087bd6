"""Writes seed rows through one connection per source, in one transaction each, with binary COPY."""
from __future__ import annotations

import asyncio
from typing import Iterable, Sequence

import asyncpg

#: Every table the seed fills, by the source (database URL key) that owns it, in write order.
TABLES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "members": (
        ("members.organizations", ("id", "name", "level", "parent_id")),
        ("members.employers", ("id", "name", "credit_code", "industry", "organization_id")),
        ("members.members", ("id", "name", "gender", "birth_date", "national_id", "phone", "employment_type",
                             "employer_id", "organization_id", "joined_on")),
    ),
    "claims": (
        ("claims.enrollments", ("id", "member_id", "organization_id", "plan_code", "coverage_start", "coverage_end",
                                "premium_paid", "cancelled", "created_at")),
        ("claims.claims", ("id", "member_id", "organization_id", "kind", "status", "rejection_reason", "settlement_id",
                           "accident_date", "disability_grade", "assessment_ref", "total_payout", "submitted_at",
                           "decided_at", "paid_at", "payment_ref", "origin")),
        ("claims.claim_lines", ("claim_id", "line_no", "enrollment_id", "plan_code", "benefit", "amount", "days",
                                "note")),
        ("claims.payments", ("id", "claim_id", "payment_ref", "amount", "paid_at")),
    ),
    "contracts": (
        ("contracts.contracts", ("id", "title", "kind", "status", "employer_id", "organization_id", "campaign",
                                 "effective_from", "effective_to", "covered_workers", "wage_increase_percent",
                                 "signed_on")),
    ),
    "recruitment": (
        ("recruitment.events", ("id", "title", "format", "organizer_id", "starts_at")),
        ("recruitment.event_employers", ("event_id", "employer_id")),
        ("recruitment.postings", ("id", "event_id", "employer_id", "title", "sector", "headcount", "salary_min",
                                  "salary_max")),
    ),
    "simulator": (
        ("insurance_sim.settlements", ("settlement_id", "national_id", "hospital_code", "hospital_name",
                                       "admission_date", "discharge_date", "diagnosis_code", "diagnosis_name",
                                       "total_cost", "fund_paid", "self_pay_in_policy", "self_pay_out_of_policy",
                                       "settled_at")),
        ("insurance_sim.coverage", ("national_id", "insured", "scheme", "since")),
    ),
}
COLUMNS = {table: columns for tables in TABLES.values() for table, columns in tables}
SOURCE_OF = {table: source for source, tables in TABLES.items() for table, _ in tables}
# Identity columns whose sequence must continue after the explicit ids we wrote.
_IDENTITIES = (("claims.enrollments", "id"), ("claims.claims", "id"), ("claims.payments", "id"))


class SeedWriter:
    """One connection and one open transaction per source; commit() ends them all."""

    def __init__(self, urls: dict[str, str]) -> None:
        self.urls = urls
        self.connections: dict[str, asyncpg.Connection] = {}
        self._transactions: list[asyncpg.transaction.Transaction] = []
        self.counts: dict[str, int] = {table: 0 for table in COLUMNS}

    async def __aenter__(self) -> "SeedWriter":
        try:
            for source in TABLES:
                conn = await asyncpg.connect(self.urls[source], server_settings={"application_name": "union-gateway/seed"})
                self.connections[source] = conn
                transaction = conn.transaction()
                await transaction.start()
                self._transactions.append(transaction)
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        await self.close()

    async def close(self) -> None:
        for conn in self.connections.values():
            await conn.close()  # an uncommitted transaction rolls back with its connection
        self.connections.clear()

    async def refuse_unless_empty(self) -> None:
        """Raise ValueError if any table the seed writes already has rows."""
        # Held until commit: a second seed started at the same time waits here,
        # then sees the first one's rows and refuses.
        await self.connections["members"].execute("LOCK TABLE members.organizations IN SHARE ROW EXCLUSIVE MODE")
        for source, tables in TABLES.items():
            conn = self.connections[source]
            for table, _ in tables:
                if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):
                    raise ValueError(
                        f"{table} already has rows: seed only fills empty databases"
                        " (use a fresh database, or drop the data first)"
                    )

    async def copy(self, table: str, rows: Sequence[tuple]) -> None:
        if not rows:
            return
        schema, name = table.split(".")
        await self.connections[SOURCE_OF[table]].copy_records_to_table(
            name, schema_name=schema, columns=COLUMNS[table], records=rows
        )
        self.counts[table] += len(rows)

    async def copy_many(self, batches: Iterable[tuple[str, Sequence[tuple]]]) -> None:
        """COPY several tables at once: different sources run in parallel, one source's tables in order."""
        by_source: dict[str, list[tuple[str, Sequence[tuple]]]] = {}
        for table, rows in batches:
            by_source.setdefault(SOURCE_OF[table], []).append((table, rows))

        async def run(items: list[tuple[str, Sequence[tuple]]]) -> None:
            for table, rows in items:
                await self.copy(table, rows)

        await asyncio.gather(*(run(items) for items in by_source.values()))

    async def finish(self) -> None:
        """Fill the organization paths, move identity sequences past our ids, and commit every source."""
        await self.connections["members"].execute("SELECT members.refresh_organization_paths()")
        for table, column in _IDENTITIES:
            await self.connections["claims"].execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
                f" COALESCE((SELECT max({column}) FROM {table}), 0) + 1, false)"
            )
        for transaction in self._transactions:
            await transaction.commit()
        # Fresh statistics, so the first queries after a big seed get good plans.
        for source, tables in TABLES.items():
            await self.connections[source].execute("ANALYZE " + ", ".join(t for t, _ in tables))
