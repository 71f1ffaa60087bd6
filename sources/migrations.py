"""Applies the SQL files under migrations/<set>/ in order, once each.

Each set (a source, the gateway's own tables, the simulator's) lives in a
PostgreSQL schema of its name and records what it applied in
<set>.schema_migrations. Two processes migrating at once serialize on an
advisory lock taken per set, so the loser sees the winner's work and does
nothing.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import asyncpg

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

#: Which database each migration set belongs in, by source name.
MIGRATION_SETS = {
    "members": "members",
    "claims": "claims",
    "contracts": "contracts",
    "recruitment": "recruitment",
    "gateway": "members",
    "insurance_sim": "simulator",
}


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"union-gateway:migrate:{name}".encode()).digest()[:8], "big", signed=True)


def pending_files(name: str) -> list[Path]:
    return sorted((MIGRATIONS_DIR / name).glob("*.sql"))


async def migrate_set(conn: asyncpg.Connection, name: str) -> list[str]:
    """Apply `name`'s pending files on `conn`; returns the versions applied."""
    applied_now: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _lock_key(name))
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{name}"')
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{name}".schema_migrations ('
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch(f'SELECT version FROM "{name}".schema_migrations')}
        for path in pending_files(name):
            if path.stem in done:
                continue
            await conn.execute(path.read_text(encoding="utf-8"))
            await conn.execute(f'INSERT INTO "{name}".schema_migrations (version) VALUES ($1)', path.stem)
            applied_now.append(path.stem)
    return applied_now


async def migrate_all(urls: dict[str, str]) -> dict[str, list[str]]:
    """Migrate every set into its database; `urls` maps source (and 'simulator') to URL."""
    result = {}
    for name, target in MIGRATION_SETS.items():
        conn = await asyncpg.connect(urls[target])
        try:
            result[name] = await migrate_set(conn, name)
        finally:
            await conn.close()
    return result
