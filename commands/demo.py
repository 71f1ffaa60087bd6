"""What `serve` does for a first-time user on the embedded database."""
from __future__ import annotations

import os
from pathlib import Path

import asyncpg

from schema.scopes import ALL_SCOPES
from sources.api_keys import KeyAuthenticator, create_key

DEMO_KEY_FILE = "demo-api-key"


async def ensure_demo_data(urls: dict[str, str], *, members: int) -> bool:
    """Seed the demo data set unless members exist already; True if it seeded."""
    from commands.seed import seed_database

    conn = await asyncpg.connect(urls["members"])
    try:
        has_members = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM members.members)")
    finally:
        await conn.close()
    if has_members:
        return False
    await seed_database(urls, members=members, seed=1, progress=True)
    return True


async def demo_api_key(members_url: str, *, home: Path) -> str:
    """The demo key (CITY organization, every scope), kept under `home` between runs.

    Only its hash is in the database; the secret is kept in a 0600 file of
    the embedded data directory so a returning user gets the same key.
    """
    path = home / DEMO_KEY_FILE
    pool = await asyncpg.create_pool(members_url, min_size=1, max_size=1)
    try:
        if path.exists():
            secret = path.read_text().strip()
            if await KeyAuthenticator(pool).authenticate(secret) is not None:
                return secret
        city = await pool.fetchval("SELECT id FROM members.organizations WHERE level = 'CITY'")
        if city is None:
            raise RuntimeError("no CITY organization: import organizations or run seed first")
        _, secret = await create_key(pool, name="demo", organization_id=city, scopes=sorted(ALL_SCOPES))
    finally:
        await pool.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    return secret
