"""Migrations: applied once, recorded, safe twice and from two processes at once."""
from __future__ import annotations

import asyncio

import asyncpg

from sources.migrations import MIGRATION_SETS, migrate_all, pending_files
from tests import pg


async def test_fresh_database_gets_every_set_and_records_it(pg_admin_url):
    name = f"ug_mig_{id(object())}"
    conn = await asyncpg.connect(pg_admin_url)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = pg.with_database(pg_admin_url, name)
    try:
        urls = {s: url for s in ("members", "claims", "contracts", "recruitment", "simulator")}
        first = await migrate_all(urls)
        assert all(first[s] == [p.stem for p in pending_files(s)] and first[s] for s in MIGRATION_SETS)
        second = await migrate_all(urls)
        assert all(v == [] for v in second.values())
        conn = await asyncpg.connect(url)
        plans = await conn.fetch("SELECT code, premium FROM claims.plans ORDER BY sort_order")
        await conn.close()
        assert [(p["code"], str(p["premium"])) for p in plans] == [("HCA", "120.00"), ("SI5", "250.00"), ("FW3", "90.00")]
    finally:
        await pg.drop_database(pg_admin_url, name)


async def test_two_concurrent_migrations_apply_each_file_once(pg_admin_url):
    name = f"ug_mig2_{id(object())}"
    conn = await asyncpg.connect(pg_admin_url)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = pg.with_database(pg_admin_url, name)
    try:
        urls = {s: url for s in ("members", "claims", "contracts", "recruitment", "simulator")}
        a, b = await asyncio.gather(migrate_all(urls), migrate_all(urls))
        for s in MIGRATION_SETS:
            # Each file was applied by exactly one of the two runs.
            assert sorted(a[s] + b[s]) == sorted(p.stem for p in pending_files(s))
    finally:
        await pg.drop_database(pg_admin_url, name)


async def test_two_sources_in_two_databases(pg_admin_url):
    names = [f"ug_split_{i}_{id(object())}" for i in range(2)]
    conn = await asyncpg.connect(pg_admin_url)
    for n in names:
        await conn.execute(f'CREATE DATABASE "{n}"')
    await conn.close()
    a, b = (pg.with_database(pg_admin_url, n) for n in names)
    try:
        await migrate_all({"members": a, "claims": b, "contracts": a, "recruitment": a, "simulator": a})
        ca, cb = await asyncpg.connect(a), await asyncpg.connect(b)
        assert await ca.fetchval("SELECT to_regclass('claims.claims')") is None
        assert await cb.fetchval("SELECT to_regclass('claims.claims')") is not None
        assert await cb.fetchval("SELECT to_regclass('members.members')") is None
        await ca.close()
        await cb.close()
    finally:
        for n in names:
            await pg.drop_database(pg_admin_url, n)
