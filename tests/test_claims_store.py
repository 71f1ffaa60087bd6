"""The claims store's transactions: atomic claims, notifications on commit, locks, sweep bookkeeping."""
from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import asyncpg
import pytest

from resolvers.decision import Decision, Line
from sources import claims_store as store
from sources.claims_store import NewClaim

D = Decimal


async def enrolment(databases, member="m1", start=date(2026, 1, 1)):
    return await store.enroll(databases.claims, member_id=member, organization_id="g1", plan_code="HCA",
                              coverage_start=start, coverage_end=date(start.year, 12, 31), premium=D("120.00"))


def paying(amount: str):
    """A decider that pays `amount` of MEDICAL on the member's first enrolment."""
    def decide(facts: store.ClaimFacts) -> Decision:
        return Decision("APPROVED", None, (Line(facts.terms[0].id, "HCA", "MEDICAL", D(amount)),))
    return decide


async def listener(database_url):
    conn = await asyncpg.connect(database_url)
    heard: asyncio.Queue[str] = asyncio.Queue()
    await conn.add_listener(store.CLAIM_UPDATED_CHANNEL, lambda *args: heard.put_nowait(args[3]))
    return conn, heard


async def test_a_claim_and_its_lines_commit_together_with_their_notification(databases, database_url):
    await enrolment(databases)
    conn, heard = await listener(database_url)
    try:
        claim, opened = await store.open_claim(
            databases.claims, NewClaim("m1", "g1", "HOSPITALIZATION", settlement_id="S1"), decide=paying("12.34"))
        assert opened and claim.status == "APPROVED" and claim.total_payout == D("12.34")
        assert [(l.line_no, l.benefit, l.amount) for l in claim.lines] == [(1, "MEDICAL", D("12.34"))]
        assert await asyncio.wait_for(heard.get(), 2) == str(claim.id)

        def broken(facts):
            # A line on an enrolment that does not exist fails the INSERT after the claim row went in.
            return Decision("APPROVED", None, (Line(999_999, "HCA", "MEDICAL", D("1.00")),))

        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await store.open_claim(databases.claims, NewClaim("m1", "g1", "HOSPITALIZATION", settlement_id="S2"),
                                   decide=broken)
        assert await databases.claims.fetchval("SELECT count(*) FROM claims.claims") == 1
        await asyncio.sleep(0.2)
        assert heard.empty()  # the rolled-back claim was never announced
    finally:
        await conn.close()


async def test_the_same_key_returns_the_first_claim(databases):
    await enrolment(databases)
    first, opened = await store.open_claim(
        databases.claims, NewClaim("m1", "g1", "HOSPITALIZATION", settlement_id="S1"), decide=paying("5.00"))
    again, opened_again = await store.open_claim(
        databases.claims, NewClaim("m1", "g1", "HOSPITALIZATION", settlement_id="S1"), decide=paying("7.00"))
    assert (opened, opened_again) == (True, False) and again == first
    other_member, _ = await store.open_claim(
        databases.claims, NewClaim("m2", "g1", "HOSPITALIZATION", settlement_id="S1"), decide=None)
    assert other_member.id != first.id and other_member.status == "PENDING_REVIEW" and other_member.lines == ()


async def test_racing_inserts_return_one_claim(databases):
    await enrolment(databases)
    results = await asyncio.gather(*(
        store.open_claim(databases.claims, NewClaim("m1", "g1", "ACCIDENT_DISABILITY", accident_date=date(2026, 2, 1),
                                                    disability_grade=5, assessment_ref="A1"), decide=paying("1.00"))
        for _ in range(10)))
    assert len({claim.id for claim, _ in results}) == 1
    assert sum(opened for _, opened in results) == 1


async def test_a_key_taken_by_a_writer_without_the_lock_returns_that_claim(databases, database_url):
    await enrolment(databases)
    conn, heard = await listener(database_url)
    other = await asyncpg.connect(database_url)
    try:
        tx = other.transaction()
        await tx.start()
        taken = await other.fetchval(
            "INSERT INTO claims.claims (member_id, organization_id, kind, status, settlement_id)"
            " VALUES ('m1', 'g1', 'HOSPITALIZATION', 'PENDING_REVIEW', 'S1') RETURNING id")
        opening = asyncio.create_task(store.open_claim(
            databases.claims, NewClaim("m1", "g1", "HOSPITALIZATION", settlement_id="S1"), decide=paying("5.00")))
        await asyncio.sleep(0.3)
        assert not opening.done()  # its insert waits on the uncommitted key
        await tx.commit()
        claim, opened = await asyncio.wait_for(opening, 5)
        assert (claim.id, opened, claim.status, claim.lines) == (taken, False, "PENDING_REVIEW", ())
        assert await databases.claims.fetchval("SELECT count(*) FROM claims.claim_lines") == 0
        await asyncio.sleep(0.2)
        assert heard.empty()  # nothing was written, so nothing announced
    finally:
        await other.close()
        await conn.close()


async def test_a_member_transaction_holds_the_lock_until_it_ends_and_rolls_back_on_error(databases):
    order: list[str] = []

    async def first() -> None:
        async with store.member_transaction(databases.claims, "m'1$x"):
            order.append("first in")
            await asyncio.sleep(0.3)
            order.append("first out")

    async def second() -> None:
        await asyncio.sleep(0.1)
        async with store.member_transaction(databases.claims, "m'1$x"):
            order.append("second in")

    async def other_member() -> None:
        await asyncio.sleep(0.1)
        async with store.member_transaction(databases.claims, "m2"):
            order.append("other member in")

    await asyncio.gather(first(), second(), other_member())
    # The same member waits for the lock; another member does not.
    assert order == ["first in", "other member in", "first out", "second in"]

    with pytest.raises(ZeroDivisionError):
        async with store.member_transaction(databases.claims, "m1") as conn:
            await conn.execute(
                "INSERT INTO claims.enrollments (member_id, organization_id, plan_code, coverage_start, coverage_end,"
                " premium_paid) VALUES ('m1', 'g1', 'HCA', '2026-01-01', '2026-12-31', 120)")
            1 / 0
    assert await databases.claims.fetchval("SELECT count(*) FROM claims.enrollments") == 0  # rolled back
    async with store.member_transaction(databases.claims, "m1") as conn:  # and the lock was let go
        assert await conn.fetchval("SELECT 1") == 1
    assert await databases.claims.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())") == 0

    with pytest.raises(ValueError):  # a value that would end its quoting is never sent
        async with store.member_transaction(databases.claims, "m$value$; DROP TABLE claims.claims; --"):
            pass


async def version(databases, member="m1") -> int:
    return await databases.claims.fetchval(
        "SELECT coalesce((SELECT version FROM claims.member_versions WHERE member_id = $1), 0)", member)


async def test_every_write_of_a_members_facts_changes_their_version(databases):
    seen = [await version(databases)]

    async def changed_by(statement: str, *args) -> None:
        await databases.claims.execute(statement, *args)
        seen.append(await version(databases))
        assert seen[-1] > seen[-2], statement

    await enrolment(databases)
    seen.append(await version(databases))
    assert seen == [0, 1]
    enrolment_id = await databases.claims.fetchval("SELECT id FROM claims.enrollments WHERE member_id = 'm1'")
    await changed_by("UPDATE claims.enrollments SET cancelled = true WHERE member_id = 'm1'")
    await changed_by("INSERT INTO claims.claims (member_id, organization_id, kind, status, settlement_id)"
                     " VALUES ('m1', 'g1', 'HOSPITALIZATION', 'PENDING_REVIEW', 'S1')")
    claim_id = await databases.claims.fetchval("SELECT id FROM claims.claims WHERE member_id = 'm1'")
    await changed_by("INSERT INTO claims.claim_lines (claim_id, line_no, enrollment_id, plan_code, benefit, amount)"
                     " VALUES ($1, 1, $2, 'HCA', 'MEDICAL', 1.00)", claim_id, enrolment_id)
    await changed_by("UPDATE claims.claim_lines SET amount = 2.00 WHERE claim_id = $1", claim_id)
    await changed_by("UPDATE claims.claims SET status = 'APPROVED', decided_at = now() WHERE id = $1", claim_id)
    await changed_by("DELETE FROM claims.claim_lines WHERE claim_id = $1", claim_id)
    await changed_by("DELETE FROM claims.claims WHERE id = $1", claim_id)
    await changed_by("DELETE FROM claims.enrollments WHERE member_id = 'm1'")
    await changed_by("TRUNCATE claims.enrollments CASCADE")
    assert await version(databases, "m2") == 0  # nobody else's


async def test_a_claim_decided_on_stale_facts_is_decided_again_on_fresh_ones(databases):
    await enrolment(databases)
    stale = await store.read_snapshot(databases.claims, "m1", settlement_id="S2")
    # Meanwhile another claim of the member pays 5.00 and commits.
    await store.open_claim(databases.claims, NewClaim("m1", "g1", "HOSPITALIZATION", settlement_id="S1"),
                           decide=paying("5.00"))
    used_seen = []

    def decide(facts: store.ClaimFacts) -> Decision:
        used_seen.append(sum((u.amount for u in facts.usage.values()), D("0")))
        return paying("1.00")(facts)

    claim, opened = await store.open_claim(
        databases.claims, NewClaim("m1", "g1", "HOSPITALIZATION", settlement_id="S2"), decide=decide, snapshot=stale)
    assert opened and claim.total_payout == D("1.00")
    assert used_seen == [D("0"), D("5.00")]  # decided on the stale facts, refused, decided again on the fresh ones
    assert await databases.claims.fetchval("SELECT count(*) FROM claims.claims") == 2


async def test_a_stale_snapshot_of_a_claimed_key_returns_the_claim(databases):
    await enrolment(databases)
    stale = await store.read_snapshot(databases.claims, "m1", settlement_id="S1")
    first, _ = await store.open_claim(databases.claims, NewClaim("m1", "g1", "HOSPITALIZATION", settlement_id="S1"),
                                      decide=paying("5.00"))
    again, opened = await store.open_claim(
        databases.claims, NewClaim("m1", "g1", "HOSPITALIZATION", settlement_id="S1"), decide=paying("7.00"),
        snapshot=stale)
    assert (again, opened) == (first, False)


async def test_facts_that_keep_changing_are_read_under_the_members_lock(databases, monkeypatch):
    await enrolment(databases)
    read = store._read_snapshot
    locked_reads = []

    async def read_then_change(conn, member_id, **kwargs):
        snapshot = await read(conn, member_id, **kwargs)
        if not isinstance(conn, asyncpg.Pool):  # a connection: open_claim's locked transaction
            assert conn.is_in_transaction()
            locked_reads.append(snapshot.version)
        else:  # another write of the member's facts lands after every unlocked read
            await databases.claims.execute("UPDATE claims.enrollments SET premium_paid = premium_paid"
                                           " WHERE member_id = $1", member_id)
        return snapshot

    monkeypatch.setattr(store, "_read_snapshot", read_then_change)
    calls = []

    def decide(facts):
        calls.append(1)
        return paying("3.00")(facts)

    claim, opened = await store.open_claim(
        databases.claims, NewClaim("m1", "g1", "HOSPITALIZATION", settlement_id="S1"), decide=decide)
    assert opened and claim.total_payout == D("3.00")
    assert len(calls) == store._OPTIMISTIC_ATTEMPTS + 1 and len(locked_reads) == 1


async def test_pending_batches_are_disjoint_across_deciders(databases):
    for n in range(6):
        await store.open_claim(databases.claims, NewClaim(f"m{n}", "g1", "HOSPITALIZATION", settlement_id=f"S{n}"),
                               decide=None)
    async with store.pending_claims(databases.claims, limit=4) as (_, first):
        async with store.pending_claims(databases.claims, limit=4) as (_, second):
            async with store.pending_claims(databases.claims, limit=4) as (_, third):
                assert len(first) == 4 and len(second) == 2 and third == []
                assert not {c.id for c in first} & {c.id for c in second}


async def test_mark_paid_only_approved(databases):
    await enrolment(databases)
    claim, _ = await store.open_claim(databases.claims, NewClaim("m1", "g1", "HOSPITALIZATION", settlement_id="S1"),
                                      decide=paying("9.99"))
    pending, _ = await store.open_claim(databases.claims, NewClaim("m1", "g1", "HOSPITALIZATION", settlement_id="S2"),
                                        decide=None)
    with pytest.raises(store.ClaimStateError):
        await store.mark_paid(databases.claims, claim_id=pending.id, payment_ref="P1")
    paid = await store.mark_paid(databases.claims, claim_id=claim.id, payment_ref="P1")
    assert (paid.status, paid.payment_ref) == ("PAID", "P1") and paid.paid_at is not None
    assert await store.mark_paid(databases.claims, claim_id=claim.id, payment_ref="P1") == paid
    assert await store.mark_paid(databases.claims, claim_id=424242, payment_ref="P1") is None


async def test_sweep_state_never_moves_backwards(databases):
    assert await store.sweep_since(databases.claims) is None
    t = datetime(2026, 5, 1, 8, 0, tzinfo=timezone.utc)
    await store.save_sweep_since(databases.claims, t)
    await store.save_sweep_since(databases.claims, t - timedelta(days=3))
    assert await store.sweep_since(databases.claims) == t
    await store.save_sweep_since(databases.claims, t + timedelta(hours=1))
    assert await store.sweep_since(databases.claims) == t + timedelta(hours=1)


async def test_enrolled_member_ids(databases):
    await enrolment(databases, "m1", date(2025, 1, 1))
    await enrolment(databases, "m2", date(2026, 1, 1))
    await databases.claims.execute("UPDATE claims.enrollments SET cancelled = true WHERE member_id = 'm2'")
    await enrolment(databases, "m3", date(2026, 1, 1))
    assert await store.enrolled_member_ids(databases.claims, covering_from=date(2026, 3, 1),
                                           covering_to=date(2026, 3, 2)) == ["m3"]
    assert await store.enrolled_member_ids(databases.claims, covering_from=date(2025, 3, 1),
                                           covering_to=date(2026, 3, 2)) == ["m1", "m3"]
