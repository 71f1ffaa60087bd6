"""Set-based checks of the staged rows against what the databases already hold."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from commands.import_csv import Problem
from commands.import_kinds import Kind, Reference


async def local_reference_problems(conn: asyncpg.Connection, ref: Reference) -> list[Problem]:
    """`ref` checked in one statement against the staging table, in the same database."""
    rows = await conn.fetch(
        f"SELECT s.line, s.{ref.column} AS value FROM import_stage s"
        f" WHERE s.{ref.column} IS NOT NULL"
        f" AND NOT EXISTS (SELECT 1 FROM {ref.table} t WHERE t.id = s.{ref.column})"
        " ORDER BY s.line"
    )
    return [Problem(r["line"], ref.column, f"unknown {ref.noun} {r['value']!r}") for r in rows]


async def remote_reference_problems(
    conn: asyncpg.Connection, ref: Reference, staged: Sequence[Mapping[str, Any]]
) -> list[Problem]:
    """`ref` checked in the database that owns its table: one look-up of every distinct id."""
    wanted = {row[ref.column] for row in staged if row[ref.column] is not None}
    if not wanted:
        return []
    found = {r["id"] for r in await conn.fetch(f"SELECT id FROM {ref.table} WHERE id = ANY($1::text[])", list(wanted))}
    return [
        Problem(row["line"], ref.column, f"unknown {ref.noun} {row[ref.column]!r} (not in the {ref.source} source)")
        for row in staged
        if row[ref.column] is not None and row[ref.column] not in found
    ]


async def unique_problems(conn: asyncpg.Connection, kind: Kind, column: str) -> list[Problem]:
    """Values of `column` that another stored row (a different id) already holds."""
    # Conservative: a value held by another stored row is a conflict even if the
    # file moves it away, because the single upsert checks uniqueness row by row.
    rows = await conn.fetch(
        f"SELECT s.line, t.id FROM import_stage s JOIN {kind.table} t ON t.{column} = s.{column}"
        f" WHERE s.id IS DISTINCT FROM t.id ORDER BY s.line"
    )
    return [Problem(r["line"], column, f"already used by {r['id']!r}") for r in rows]
