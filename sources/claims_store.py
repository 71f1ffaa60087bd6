"""Writes of the claims source: enrolments, claims with their lines, reviews, payments, sweep state.

Every write that reads a member's usage or enrolments holds a
transaction-scoped advisory lock on the member id while it writes, so two
claims (or an enrolment and a claim) of one member run one after the other
and a cap is never overdrawn; members do not wait on each other. A claim is
decided on facts read before the lock (during the insurance call) and
written only if the member's version (migrations/claims/004) is still the
one they were read at; otherwise it is decided again. A claim, its lines and
its `NOTIFY claim_updated` commit together or not at all. Idempotency rests
on the partial unique indexes on (member_id, settlement_id) and (member_id,
assessment_ref): an insert that loses a race does nothing and the winner's
claim is read back.
"""
from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, AsyncIterator, Callable, Sequence

import asyncpg

from resolvers.decision import Decision, Term, Usage, UsageByBenefit
from resolvers.plan_schedule import Schedule, schedule_at
from sources import observability
from sources.sql import inline_value

#: The channel subscribers LISTEN on; the payload is the claim id.
CLAIM_UPDATED_CHANNEL = "claim_updated"

PENDING_REVIEW = "PENDING_REVIEW"


class EnrollmentOverlap(Exception):
    """The member already holds an enrolment of the plan whose term overlaps the new one."""

    def __init__(self, existing: "EnrollmentRecord") -> None:
        super().__init__(
            f"member already enrolled in {existing.plan_code} from {existing.coverage_start} to {existing.coverage_end}"
        )
        self.existing = existing


class ClaimStateError(Exception):
    """The claim is not in a state that allows the action (e.g. paying a rejected claim)."""

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status


class PaymentRefTaken(Exception):
    """The payment reference already records the payment of another claim."""


@dataclass(frozen=True)
class EnrollmentRecord:
    id: int
    member_id: str
    organization_id: str
    plan_code: str
    coverage_start: date
    coverage_end: date
    premium_paid: Decimal
    cancelled: bool
    created_at: datetime

    def term(self) -> Term:
        return Term(id=self.id, plan_code=self.plan_code, coverage_start=self.coverage_start,
                    coverage_end=self.coverage_end, cancelled=self.cancelled)


@dataclass(frozen=True)
class ClaimLineRecord:
    line_no: int
    enrollment_id: int
    plan_code: str
    benefit: str
    amount: Decimal
    days: int | None
    note: str | None


@dataclass(frozen=True)
class ClaimRecord:
    id: int
    member_id: str
    organization_id: str
    kind: str
    status: str
    rejection_reason: str | None
    settlement_id: str | None
    accident_date: date | None
    disability_grade: int | None
    assessment_ref: str | None
    total_payout: Decimal
    submitted_at: datetime
    decided_at: datetime | None
    paid_at: datetime | None
    payment_ref: str | None
    review_note: str | None
    origin: str
    lines: tuple[ClaimLineRecord, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class NewClaim:
    """A claim to open; exactly one of settlement_id / assessment_ref is its idempotency key."""

    member_id: str
    organization_id: str
    kind: str
    settlement_id: str | None = None
    accident_date: date | None = None
    disability_grade: int | None = None
    assessment_ref: str | None = None
    origin: str = "SUBMITTED"


@dataclass(frozen=True)
class ClaimFacts:
    """What a decision reads from the claims source, in one statement's snapshot (see ClaimSnapshot)."""

    terms: list[Term]
    schedule: Schedule
    usage: UsageByBenefit


Decider = Callable[[ClaimFacts], Decision]


@dataclass(frozen=True)
class ClaimSnapshot:
    """A member's facts as one statement read them, with their version (migrations/claims/004).

    `existing_id` is the claim already under the key asked about, if any.
    """

    existing_id: int | None
    facts: ClaimFacts
    version: int


_ENROLLMENT_COLUMNS = (
    "id, member_id, organization_id, plan_code, coverage_start, coverage_end, premium_paid, cancelled, created_at"
)
_CLAIM_COLUMNS = (
    "id, member_id, organization_id, kind, status, rejection_reason, settlement_id, accident_date,"
    " disability_grade, assessment_ref, total_payout, submitted_at, decided_at, paid_at, payment_ref,"
    " review_note, origin"
)


# --------------------------------------------------------------------------- plumbing

@asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """One connection in one transaction, committed on leaving the block."""
    async with pool.acquire() as conn:
        async with conn.transaction():
            yield conn


#: The member's advisory lock key: one expression, so every writer (and every
#: version of the gateway running during a rolling update) takes the same lock.
_MEMBER_LOCK = "pg_advisory_xact_lock(hashtextextended('union-gateway:claims:member:' || {}::text, 0))"


async def lock_member(conn: asyncpg.Connection, member_id: str) -> None:
    """Serialize this transaction with every other write of the same member's claims and enrolments."""
    await conn.execute(f"SELECT {_MEMBER_LOCK.format('$1')}", member_id)


@asynccontextmanager
async def member_transaction(pool: asyncpg.Pool, member_id: str) -> AsyncIterator[asyncpg.Connection]:
    """transaction() holding the member's lock (lock_member) from its first statement.

    For writes that read and write under the lock (an enrolment, open_claim's
    last tries). BEGIN and the lock travel as one simple-protocol query: one
    round trip where there were two, and each waits its turn on a busy CPU.
    The simple protocol takes no parameters, hence the inlined (and, on spans,
    redacted) member id.
    """
    statement = f"BEGIN; SELECT {_MEMBER_LOCK.format(inline_value(member_id))}"
    async with pool.acquire() as conn:
        try:
            await conn.execute(statement)
            yield conn
        except BaseException:
            if not conn.is_closed():
                try:
                    await conn.execute("ROLLBACK")
                except BaseException:
                    conn.terminate()  # unusable: the pool replaces a terminated connection
                    raise
            raise
        await conn.execute("COMMIT")


async def notify_claim_updated(conn: asyncpg.Connection, claim_id: int) -> None:
    """Queued with the transaction: listeners hear of the change only if it commits."""
    await conn.execute("SELECT pg_notify($1, $2)", CLAIM_UPDATED_CHANNEL, str(claim_id))


# --------------------------------------------------------------------------- enrolments

def _enrollment(row: Any) -> EnrollmentRecord:
    return EnrollmentRecord(**dict(row))


async def enrollments_of(conn: asyncpg.Connection | asyncpg.Pool, member_id: str) -> list[EnrollmentRecord]:
    """Every enrolment of a member, cancelled ones included, oldest first."""
    rows = await conn.fetch(
        f"SELECT {_ENROLLMENT_COLUMNS} FROM claims.enrollments WHERE member_id = $1 ORDER BY coverage_start, id",
        member_id,
    )
    return [_enrollment(row) for row in rows]


async def enroll(pool: asyncpg.Pool, *, member_id: str, organization_id: str, plan_code: str,
                 coverage_start: date, coverage_end: date, premium: Decimal) -> EnrollmentRecord:
    """Record an enrolment; raises EnrollmentOverlap if the member holds the plan for any of those days."""
    async with member_transaction(pool, member_id) as conn:
        clash = await conn.fetchrow(
            f"SELECT {_ENROLLMENT_COLUMNS} FROM claims.enrollments"
            " WHERE member_id = $1 AND plan_code = $2 AND NOT cancelled"
            " AND coverage_start <= $4 AND coverage_end >= $3 ORDER BY coverage_start LIMIT 1",
            member_id, plan_code, coverage_start, coverage_end,
        )
        if clash is not None:
            raise EnrollmentOverlap(_enrollment(clash))
        row = await conn.fetchrow(
            "INSERT INTO claims.enrollments (member_id, organization_id, plan_code, coverage_start, coverage_end,"
            f" premium_paid) VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_ENROLLMENT_COLUMNS}",
            member_id, organization_id, plan_code, coverage_start, coverage_end, premium,
        )
    return _enrollment(row)


# --------------------------------------------------------------------------- reading claims

async def _with_lines(conn: asyncpg.Connection | asyncpg.Pool, rows: Sequence[Any]) -> list[ClaimRecord]:
    if not rows:
        return []
    ids = [row["id"] for row in rows]
    lines: dict[int, list[ClaimLineRecord]] = {}
    for line in await conn.fetch(
        "SELECT claim_id, line_no, enrollment_id, plan_code, benefit, amount, days, note"
        " FROM claims.claim_lines WHERE claim_id = ANY($1::bigint[]) ORDER BY claim_id, line_no",
        ids,
    ):
        values = dict(line)
        lines.setdefault(values.pop("claim_id"), []).append(ClaimLineRecord(**values))
    return [ClaimRecord(**dict(row), lines=tuple(lines.get(row["id"], ()))) for row in rows]


async def claim_by_id(conn: asyncpg.Connection | asyncpg.Pool, claim_id: int, *, for_update: bool = False) -> ClaimRecord | None:
    """One claim with its lines; FOR UPDATE holds its row until the caller's transaction ends."""
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {_CLAIM_COLUMNS} FROM claims.claims WHERE id = $1{lock}", claim_id)
    return (await _with_lines(conn, [row]))[0] if row else None


async def find_claim(conn: asyncpg.Connection | asyncpg.Pool, *, member_id: str, settlement_id: str | None = None,
                     assessment_ref: str | None = None) -> ClaimRecord | None:
    """The claim already opened under an idempotency key, if any."""
    if (settlement_id is None) == (assessment_ref is None):
        raise ValueError("give exactly one of settlement_id and assessment_ref")
    column, key = ("settlement_id", settlement_id) if settlement_id is not None else ("assessment_ref", assessment_ref)
    row = await conn.fetchrow(
        f"SELECT {_CLAIM_COLUMNS} FROM claims.claims WHERE member_id = $1 AND {column} = $2", member_id, key
    )
    return (await _with_lines(conn, [row]))[0] if row else None


async def claims_by_settlement(pool: asyncpg.Pool, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (member id, settlement id) pairs already have a claim."""
    if not keys:
        return set()
    rows = await pool.fetch(
        "SELECT c.member_id, c.settlement_id FROM claims.claims c"
        " JOIN unnest($1::text[], $2::text[]) AS k(member_id, settlement_id)"
        " ON c.member_id = k.member_id AND c.settlement_id = k.settlement_id",
        [m for m, _ in keys], [s for _, s in keys],
    )
    return {(row["member_id"], row["settlement_id"]) for row in rows}


# --------------------------------------------------------------------------- deciding

def _facts_sql(key_column: str | None) -> str:
    """The member's enrolments, what each has paid, the schedule's version and (by key) an existing claim.

    One statement, hence one snapshot, with the member's version read in the
    same snapshot: a write that commits after it bumps the version, which is
    how open_claim knows the facts went stale. One row per (enrolment,
    benefit it has paid), or one bare row when there is no enrolment.
    """
    existing = (f"(SELECT id FROM claims.claims WHERE member_id = $1 AND {key_column} = $2)"
                if key_column is not None else "NULL::bigint")
    return f"""
        WITH terms AS (
            SELECT id, plan_code, coverage_start, coverage_end, cancelled FROM claims.enrollments WHERE member_id = $1
        ), used AS (
            SELECT l.enrollment_id, l.benefit, sum(l.amount) AS amount, coalesce(sum(l.days), 0) AS days,
                   count(*) AS lines
            FROM claims.claim_lines l JOIN claims.claims c ON c.id = l.claim_id
            WHERE l.enrollment_id IN (SELECT id FROM terms) AND c.status IN ('APPROVED', 'PAID')
            GROUP BY l.enrollment_id, l.benefit
        )
        SELECT h.existing_id, h.schedule_version, h.member_version,
               t.id, t.plan_code, t.coverage_start, t.coverage_end, t.cancelled,
               u.benefit, u.amount, u.days, u.lines
        FROM (SELECT {existing} AS existing_id, (SELECT token FROM claims.schedule_version) AS schedule_version,
                     coalesce((SELECT version FROM claims.member_versions WHERE member_id = $1), 0) AS member_version) h
        LEFT JOIN (terms t LEFT JOIN used u ON u.enrollment_id = t.id) ON true
        ORDER BY t.coverage_start, t.id, u.benefit"""


_FACTS_SQL = {column: _facts_sql(column) for column in (None, "settlement_id", "assessment_ref")}


async def _read_snapshot(conn: asyncpg.Connection | asyncpg.Pool, member_id: str, *, key_column: str | None = None,
                         key: str | None = None) -> ClaimSnapshot:
    """The member's facts, their version and (by key) the claim already opened, in one statement."""
    args = (member_id,) if key_column is None else (member_id, key)
    rows = await conn.fetch(_FACTS_SQL[key_column], *args)
    terms: dict[int, Term] = {}
    usage: dict[tuple[int, str], Usage] = {}
    for r in rows:
        if r["id"] is None:
            continue
        if r["id"] not in terms:
            terms[r["id"]] = Term(id=r["id"], plan_code=r["plan_code"], coverage_start=r["coverage_start"],
                                  coverage_end=r["coverage_end"], cancelled=r["cancelled"])
        if r["benefit"] is not None:
            usage[(r["id"], r["benefit"])] = Usage(r["amount"], int(r["days"]), int(r["lines"]))
    head = rows[0]
    schedule = await schedule_at(conn, head["schedule_version"])
    return ClaimSnapshot(head["existing_id"], ClaimFacts(terms=list(terms.values()), schedule=schedule, usage=usage),
                         head["member_version"])


async def read_snapshot(pool: asyncpg.Pool, member_id: str, *, settlement_id: str | None = None,
                        assessment_ref: str | None = None) -> ClaimSnapshot:
    """What open_claim needs to decide a claim under one key, read ahead (e.g. during the insurance call)."""
    if (settlement_id is None) == (assessment_ref is None):
        raise ValueError("give exactly one of settlement_id and assessment_ref")
    key_column, key = (("settlement_id", settlement_id) if settlement_id is not None
                       else ("assessment_ref", assessment_ref))
    return await _read_snapshot(pool, member_id, key_column=key_column, key=key)


async def claim_facts(conn: asyncpg.Connection, member_id: str) -> ClaimFacts:
    """Enrolments, schedule and usage of a member; call with the member locked."""
    return (await _read_snapshot(conn, member_id)).facts


async def _write_lines(conn: asyncpg.Connection, claim_id: int, decision: Decision) -> None:
    if decision.lines:
        await conn.executemany(
            "INSERT INTO claims.claim_lines (claim_id, line_no, enrollment_id, plan_code, benefit, amount, days, note)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            [(claim_id, n, line.enrollment_id, line.plan_code, line.benefit, line.amount, line.days, line.note)
             for n, line in enumerate(decision.lines, start=1)],
        )


#: The claim, its lines and its notification in one statement, written only
#: if the facts it was decided on still stand. The statement takes the
#: member's lock (as every writer of a member's facts does), then bumps the
#: member's version from the one the facts were read at ($19); a write that
#: committed since (it bumped the version too) leaves the guard empty, and
#: nothing is inserted: `fresh` is false and open_claim decides again on new
#: facts. ON CONFLICT DO UPDATE and the key's unique index check the latest
#: committed rows, not the statement's snapshot, which was taken before the
#: lock was granted. The lines ride as parallel arrays (amounts as text, cast
#: to numeric: exact). A key taken without the version changing (only by a
#: writer that skips the triggers) inserts nothing and returns no claim. The
#: notification leaves with the commit, so listeners hear only of claims that
#: stand. Always one row at least: `fresh`, then the claim's columns (NULL
#: when none was inserted), one row per line.
_CLAIM_FIELDS = tuple(c.strip() for c in _CLAIM_COLUMNS.split(","))
_OPEN_CLAIM_SQL = f"""
    WITH locked AS (
        SELECT {_MEMBER_LOCK.format('$1')}
    ), guard AS (
        INSERT INTO claims.member_versions AS v (member_id, version)
        SELECT $1, 1 FROM locked
        ON CONFLICT (member_id) DO UPDATE SET version = v.version + 1 WHERE v.version = $19
        RETURNING v.version
    ), claim AS (
        INSERT INTO claims.claims (member_id, organization_id, kind, status, rejection_reason, settlement_id,
            accident_date, disability_grade, assessment_ref, total_payout, decided_at, origin)
        SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, CASE WHEN $4 = 'PENDING_REVIEW' THEN NULL ELSE now() END, $11
        FROM guard
        ON CONFLICT DO NOTHING
        RETURNING {_CLAIM_COLUMNS}
    ), lines AS (
        INSERT INTO claims.claim_lines (claim_id, line_no, enrollment_id, plan_code, benefit, amount, days, note)
        SELECT claim.id, l.line_no, l.enrollment_id, l.plan_code, l.benefit, l.amount::numeric, l.days, l.note
        FROM claim, unnest($12::int[], $13::bigint[], $14::text[], $15::text[], $16::text[], $17::int[], $18::text[])
            AS l(line_no, enrollment_id, plan_code, benefit, amount, days, note)
        RETURNING line_no, enrollment_id, plan_code, benefit, amount, days, note
    ), announced AS (
        SELECT claim.*, pg_notify('{CLAIM_UPDATED_CHANNEL}', claim.id::text) FROM claim
    )
    SELECT EXISTS (SELECT FROM guard) AS fresh, {", ".join(f"a.{c}" for c in _CLAIM_FIELDS)},
           l.line_no, l.enrollment_id, l.plan_code AS line_plan_code, l.benefit, l.amount, l.days, l.note
    FROM (SELECT) AS one LEFT JOIN announced a ON true LEFT JOIN lines l ON true ORDER BY l.line_no"""

#: Decisions on facts read without the lock before open_claim falls back to
#: reading them under it: a member whose facts keep changing (a burst of their
#: own claims) is still served, one at a time.
_OPTIMISTIC_ATTEMPTS = 3


def _line_arrays(decision: Decision | None) -> tuple[list[Any], ...]:
    lines = decision.lines if decision is not None else ()
    return (list(range(1, len(lines) + 1)), [l.enrollment_id for l in lines], [l.plan_code for l in lines],
            [l.benefit for l in lines], [str(l.amount) for l in lines], [l.days for l in lines],
            [l.note for l in lines])


def _opened_record(rows: Sequence[Any]) -> ClaimRecord:
    head = rows[0]
    lines = tuple(
        ClaimLineRecord(line_no=r["line_no"], enrollment_id=r["enrollment_id"], plan_code=r["line_plan_code"],
                        benefit=r["benefit"], amount=r["amount"], days=r["days"], note=r["note"])
        for r in rows if r["line_no"] is not None
    )
    return ClaimRecord(**{c: head[c] for c in _CLAIM_FIELDS}, lines=lines)


async def open_claim(pool: asyncpg.Pool, claim: NewClaim, *, decide: Decider | None,
                     snapshot: ClaimSnapshot | None = None) -> tuple[ClaimRecord, bool]:
    """Open and decide a claim, or return the one its key already opened.

    decide=None stores it PENDING_REVIEW with no lines (the insurance system
    could not be asked). `snapshot` is the member's facts under the claim's
    key if the caller read them ahead (read_snapshot); they are read here
    otherwise, and again whenever they went stale before the claim was
    written. Returns (claim, whether this call opened it).
    """
    key_column, key = (("settlement_id", claim.settlement_id) if claim.settlement_id is not None
                       else ("assessment_ref", claim.assessment_ref))
    for attempt in range(_OPTIMISTIC_ATTEMPTS + 2):
        if attempt < _OPTIMISTIC_ATTEMPTS:
            outcome = await _try_to_open(pool, claim, decide, snapshot, key_column, key)
        else:
            async with member_transaction(pool, claim.member_id) as conn:
                outcome = await _try_to_open(conn, claim, decide, None, key_column, key)
        snapshot = None
        if outcome is not None:
            record, opened = outcome
            if opened:
                observability.claim_decided(record.status)  # committed: a decision (or PENDING_REVIEW) now stands
            return outcome
    # Under the lock the facts cannot change but by a writer that skips both lock and triggers.
    raise RuntimeError(f"the facts of member {claim.member_id} kept changing under their lock")


async def _try_to_open(conn: asyncpg.Connection | asyncpg.Pool, claim: NewClaim, decide: Decider | None,
                       snapshot: ClaimSnapshot | None, key_column: str, key: str | None,
                       ) -> tuple[ClaimRecord, bool] | None:
    """One attempt: (claim, opened), or None when the facts changed before the claim could be written."""
    if snapshot is None:
        snapshot = await _read_snapshot(conn, claim.member_id, key_column=key_column, key=key)
    if snapshot.existing_id is not None:
        existing = await claim_by_id(conn, snapshot.existing_id)
        return (existing, False) if existing is not None else None
    decision = decide(snapshot.facts) if decide is not None else None
    rows = await conn.fetch(
        _OPEN_CLAIM_SQL,
        claim.member_id, claim.organization_id, claim.kind,
        decision.status if decision else PENDING_REVIEW,
        decision.rejection_reason if decision else None,
        claim.settlement_id, claim.accident_date, claim.disability_grade, claim.assessment_ref,
        decision.total if decision else Decimal("0.00"), claim.origin,
        *_line_arrays(decision), snapshot.version,
    )
    if not rows[0]["fresh"]:
        return None
    if rows[0]["id"] is None:
        existing = await find_claim(conn, member_id=claim.member_id, **{key_column: key})
        return (existing, False) if existing is not None else None
    return _opened_record(rows), True


async def decide_locked_claim(conn: asyncpg.Connection, claim: ClaimRecord, *, decide: Decider,
                              review_note: str | None = None) -> ClaimRecord:
    """Decide a PENDING_REVIEW claim whose row the caller's transaction holds FOR UPDATE."""
    if claim.status != PENDING_REVIEW:
        raise ClaimStateError(f"claim {claim.id} is {claim.status}, not PENDING_REVIEW", claim.status)
    await lock_member(conn, claim.member_id)
    decision = decide(await claim_facts(conn, claim.member_id))
    await conn.execute(
        "UPDATE claims.claims SET status = $2, rejection_reason = $3, total_payout = $4, decided_at = now(),"
        " review_note = coalesce($5, review_note) WHERE id = $1",
        claim.id, decision.status, decision.rejection_reason, decision.total, review_note,
    )
    await _write_lines(conn, claim.id, decision)
    await notify_claim_updated(conn, claim.id)
    record = await claim_by_id(conn, claim.id)
    assert record is not None
    return record


async def reject_locked_claim(conn: asyncpg.Connection, claim: ClaimRecord, *, reason: str,
                              review_note: str | None) -> ClaimRecord:
    """A staff rejection of a PENDING_REVIEW claim the caller holds FOR UPDATE."""
    if claim.status != PENDING_REVIEW:
        raise ClaimStateError(f"claim {claim.id} is {claim.status}, not PENDING_REVIEW", claim.status)
    await conn.execute(
        "UPDATE claims.claims SET status = 'REJECTED', rejection_reason = $2, decided_at = now(), review_note = $3"
        " WHERE id = $1",
        claim.id, reason, review_note,
    )
    await notify_claim_updated(conn, claim.id)
    record = await claim_by_id(conn, claim.id)
    assert record is not None
    return record


@asynccontextmanager
async def pending_claims(pool: asyncpg.Pool, *, limit: int) -> AsyncIterator[tuple[asyncpg.Connection, list[ClaimRecord]]]:
    """Up to `limit` PENDING_REVIEW claims, locked so no other process decides them meanwhile.

    SKIP LOCKED hands each replica (and `sweep`) a disjoint batch; the locks
    hold until the block ends, and a failure inside it rolls back, leaving
    the claims pending for the next round.
    """
    async with transaction(pool) as conn:
        rows = await conn.fetch(
            f"SELECT {_CLAIM_COLUMNS} FROM claims.claims WHERE status = 'PENDING_REVIEW'"
            " ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
            limit,
        )
        yield conn, await _with_lines(conn, rows)


# --------------------------------------------------------------------------- payments

async def mark_paid(pool: asyncpg.Pool, *, claim_id: int, payment_ref: str) -> ClaimRecord | None:
    """Record the payment of an APPROVED claim; the same paymentRef again returns it unchanged.

    None when there is no such claim. Raises ClaimStateError for a claim that
    is not APPROVED (or PAID under another reference) and PaymentRefTaken when
    the reference paid another claim.
    """
    async with transaction(pool) as conn:
        claim = await claim_by_id(conn, claim_id, for_update=True)
        if claim is None:
            return None
        if claim.status == "PAID":
            if claim.payment_ref == payment_ref:
                return claim
            raise ClaimStateError(f"claim {claim_id} was already paid under another paymentRef", claim.status)
        if claim.status != "APPROVED":
            raise ClaimStateError(f"claim {claim_id} is {claim.status}; only APPROVED claims can be paid", claim.status)
        try:
            async with conn.transaction():  # a savepoint: a taken ref must not abort the outer transaction
                paid_at = await conn.fetchval(
                    "INSERT INTO claims.payments (claim_id, payment_ref, amount) VALUES ($1, $2, $3) RETURNING paid_at",
                    claim_id, payment_ref, claim.total_payout,
                )
                await conn.execute(
                    "UPDATE claims.claims SET status = 'PAID', payment_ref = $2, paid_at = $3 WHERE id = $1",
                    claim_id, payment_ref, paid_at,
                )
        except asyncpg.UniqueViolationError as exc:
            raise PaymentRefTaken(f"paymentRef {payment_ref!r} already records another payment") from exc
        await notify_claim_updated(conn, claim_id)
        return await claim_by_id(conn, claim_id)


# --------------------------------------------------------------------------- sweep bookkeeping

async def sweep_since(pool: asyncpg.Pool) -> datetime | None:
    """Where the last completed sweep stopped (settled_at of the newest settlement it saw)."""
    return await pool.fetchval("SELECT settled_since FROM claims.sweep_state")


async def save_sweep_since(pool: asyncpg.Pool, since: datetime) -> None:
    """Remember where to start next time; never moves backwards."""
    await pool.execute(
        "INSERT INTO claims.sweep_state (id, settled_since) VALUES (true, $1)"
        " ON CONFLICT (id) DO UPDATE SET settled_since = greatest(claims.sweep_state.settled_since, excluded.settled_since)",
        since,
    )


async def enrolled_member_ids(pool: asyncpg.Pool, *, covering_from: date, covering_to: date) -> list[str]:
    """Members holding a live enrolment on any day of [covering_from, covering_to], by id."""
    rows = await pool.fetch(
        "SELECT DISTINCT member_id FROM claims.enrollments"
        " WHERE NOT cancelled AND coverage_start <= $2 AND coverage_end >= $1 ORDER BY member_id",
        covering_from, covering_to,
    )
    return [row["member_id"] for row in rows]


async def enrollments_of_members(pool: asyncpg.Pool, member_ids: Sequence[str]) -> dict[str, list[EnrollmentRecord]]:
    """Every enrolment of each member (cancelled included), in one statement."""
    found: dict[str, list[EnrollmentRecord]] = {m: [] for m in member_ids}
    rows = await pool.fetch(
        f"SELECT {_ENROLLMENT_COLUMNS} FROM claims.enrollments WHERE member_id = ANY($1::text[])"
        " ORDER BY member_id, coverage_start, id",
        list(member_ids),
    )
    for row in rows:
        found.setdefault(row["member_id"], []).append(_enrollment(row))
    return found
