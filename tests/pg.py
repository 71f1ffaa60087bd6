"""Test databases: one PostgreSQL per test session, one fresh database per test.

With UNION_GATEWAY_TEST_DATABASE_URL set (an admin URL of any server), tests
use that server; otherwise pgserver runs one under the session's temp dir.
A template database is migrated once; each test gets `CREATE DATABASE ...
TEMPLATE`, which copies it in milliseconds, so tests are isolated even when
the app under test opens its own pools and commits.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from sources.migrations import migrate_all


def with_database(url: str, dbname: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def start_server(tmp: Path) -> tuple[str, object | None]:
    """(admin URL, server to stop or None)."""
    url = os.environ.get("UNION_GATEWAY_TEST_DATABASE_URL")
    if url:
        return url, None
    import pgserver

    server = pgserver.get_server(tmp / "pgdata", cleanup_mode="stop")
    return server.get_uri(), server


async def create_template(admin_url: str) -> str:
    """Create and migrate a template database; returns its name."""
    name = f"ug_template_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = with_database(admin_url, name)
    await migrate_all({"members": url, "claims": url, "contracts": url, "recruitment": url, "simulator": url})
    return name


async def create_database(admin_url: str, template: str) -> str:
    """A fresh copy of the template; returns its name."""
    name = f"ug_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await conn.close()
    return name


async def drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
