"""The `apikey` commands' bodies."""
from __future__ import annotations

import sys
from datetime import datetime

import asyncpg
import typer
from rich.console import Console
from rich.table import Table

from sources.api_keys import create_key, list_keys, revoke_key, set_limits
from schema.scopes import ALL_SCOPES


async def create(url: str, *, name: str, org: str, scopes: str, expires_at: datetime | None = None,
                 limits: dict[str, object] | None = None) -> tuple[str, str]:
    wanted = [s.strip() for s in scopes.split(",") if s.strip()]
    unknown = sorted(set(wanted) - ALL_SCOPES)
    if unknown or not wanted:
        raise typer.BadParameter(
            f"unknown scope(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(sorted(ALL_SCOPES))}",
            param_hint="--scopes",
        )
    conn = await asyncpg.connect(url)
    try:
        if await conn.fetchval("SELECT 1 FROM members.organizations WHERE id = $1", org) is None:
            raise typer.BadParameter(f"no organization {org!r}", param_hint="--org")
        async with conn.transaction():
            key, secret = await create_key(conn, name=name, organization_id=org, scopes=wanted, expires_at=expires_at)
            await set_limits(conn, key.id, **(limits or {}))
    finally:
        await conn.close()
    return key.id, secret


async def show_list(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        keys = await list_keys(conn)
    finally:
        await conn.close()
    table = Table("id", "name", "organization", "scopes", "created", "state")
    for k in keys:
        state = "revoked" if k.revoked_at else "active"
        table.add_row(k.id, k.name, k.organization_id, ",".join(k.scopes), f"{k.created_at:%Y-%m-%d %H:%M}", state)
    # Piped into a script, rich would wrap ids at 80 columns; keep rows whole.
    Console(width=None if sys.stdout.isatty() else 240).print(table)


async def revoke(url: str, key_id: str) -> bool:
    conn = await asyncpg.connect(url)
    try:
        return await revoke_key(conn, key_id)
    finally:
        await conn.close()
