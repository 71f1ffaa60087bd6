"""`union-gateway import KIND FILE.csv`: validate a whole file, then write it in one statement.

The file is parsed and its cells checked in Python, copied into a temporary
staging table, checked against the databases with set-based SQL, and only
if nothing at all is wrong upserted with one INSERT ... SELECT ... ON
CONFLICT, all inside one transaction: a bad row means nothing is written.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from commands.import_csv import Problem, Record, read_csv
from commands.import_kinds import KINDS, Kind
from commands.import_refs import local_reference_problems, remote_reference_problems, unique_problems
from commands.import_tree import tree_problems

__all__ = ["KINDS", "ImportRejected", "ImportSummary", "import_file"]


@dataclass(frozen=True)
class ImportSummary:
    """What a successful import wrote."""

    kind: str
    inserted: int
    updated: int
    seconds: float

    @property
    def rows(self) -> int:
        return self.inserted + self.updated


class ImportRejected(Exception):
    """The file had bad rows; nothing was written."""

    def __init__(self, file: str, problems: list[Problem]) -> None:
        super().__init__(f"{file}: {len(problems)} problem(s)")
        self.file = file
        self.problems = problems

    def lines(self) -> list[str]:
        """Each problem as `FILE:LINE: column: reason`."""
        return [p.format(self.file) for p in self.problems]


async def import_file(urls: dict[str, str], *, kind: str, path: Path | str) -> ImportSummary:
    """Import one CSV file of `kind` into its source's database, all or nothing."""
    started = time.perf_counter()
    spec = KINDS.get(kind)
    if spec is None:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    file = str(path)
    parsed = read_csv(Path(path), columns=spec.column_names)
    problems = list(parsed.problems)
    staged = _parse_rows(spec, parsed.records, problems)

    conn = await asyncpg.connect(urls[spec.source], server_settings={"application_name": "union-gateway/import"})
    try:
        async with conn.transaction():
            # Two imports of one kind at once would each validate against a state the other changes.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"union-gateway:import:{kind}")
            await _stage(conn, spec, staged)
            problems += await _database_problems(conn, urls, spec, staged)
            if problems:
                order = {name: i for i, name in enumerate(spec.column_names)}
                problems.sort(key=lambda p: (p.line, order.get(p.column, -1), p.reason))
                raise ImportRejected(file, problems)
            try:
                inserted, updated = await _write(conn, spec)
            except asyncpg.IntegrityConstraintViolationError as exc:
                # Only reachable through what the checks cannot see, e.g. two stored members swapping national ids.
                reason = f"rejected by the database while writing ({exc.constraint_name or type(exc).__name__})"
                raise ImportRejected(file, [Problem(1, exc.column_name or "row", reason)]) from None
    finally:
        await conn.close()
    return ImportSummary(kind=kind, inserted=inserted, updated=updated, seconds=time.perf_counter() - started)


def _parse_rows(spec: Kind, records: list[Record], problems: list[Problem]) -> list[dict[str, Any]]:
    """The typed rows to stage (cells that failed are None), adding each cell's problems."""
    staged: list[dict[str, Any]] = []
    first_line: dict[str, dict[Any, int]] = {name: {} for name in ("id", *spec.unique)}
    for record in records:
        row: dict[str, Any] = {}
        for column in spec.columns:
            if column.name in record.reported:
                continue
            raw = record.values[column.name]
            if raw == "":
                if column.required:
                    problems.append(Problem(record.line, column.name, "required"))
                else:
                    row[column.name] = None
                continue
            try:
                row[column.name] = column.parse(raw)
            except ValueError as exc:
                problems.append(Problem(record.line, column.name, str(exc)))
        if spec.check_row is not None:
            problems.extend(Problem(record.line, c, reason) for c, reason in spec.check_row(row))

        duplicate = False
        for name, seen in first_line.items():
            value = row.get(name)
            if value is None:
                continue
            if value in seen:
                problems.append(Problem(record.line, name, f"duplicate of line {seen[value]}"))
                duplicate = True
            else:
                seen[value] = record.line
        # A duplicate is reported once; staging it too would only echo its first line's problems.
        if not duplicate:
            staged.append({"line": record.line, **{c: row.get(c) for c in spec.column_names}})
    return staged


async def _stage(conn: asyncpg.Connection, spec: Kind, staged: list[dict[str, Any]]) -> None:
    columns = ", ".join(f"{c.name} {c.sql_type}" for c in spec.columns)
    await conn.execute(f"CREATE TEMPORARY TABLE import_stage (line integer NOT NULL, {columns}) ON COMMIT DROP")
    names = ["line", *spec.column_names]
    await conn.copy_records_to_table(
        "import_stage", records=[tuple(row[n] for n in names) for row in staged], columns=names
    )
    await conn.execute("CREATE INDEX ON import_stage (id)")
    await conn.execute("ANALYZE import_stage")


async def _database_problems(
    conn: asyncpg.Connection, urls: dict[str, str], spec: Kind, staged: list[dict[str, Any]]
) -> list[Problem]:
    problems: list[Problem] = []
    if spec.name == "organizations":
        problems += await tree_problems(conn)
    for column in spec.unique:
        problems += await unique_problems(conn, spec, column)
    for ref in spec.references:
        if ref.source == spec.source:
            problems += await local_reference_problems(conn, ref)
    remote = [ref for ref in spec.references if ref.source != spec.source]
    for source in {ref.source for ref in remote}:
        # Another union service's database: asked through its own connection, never joined.
        other = await asyncpg.connect(urls[source], server_settings={"application_name": "union-gateway/import"})
        try:
            for ref in remote:
                if ref.source == source:
                    problems += await remote_reference_problems(other, ref, staged)
        finally:
            await other.close()
    return problems


async def _write(conn: asyncpg.Connection, spec: Kind) -> tuple[int, int]:
    """Upsert every staged row in one statement; returns (inserted, updated)."""
    names = ", ".join(spec.column_names)
    updates = ", ".join(f"{n} = EXCLUDED.{n}" for n in spec.column_names if n != "id")
    row = await conn.fetchrow(
        f"WITH written AS ("
        f" INSERT INTO {spec.table} ({names}) SELECT {names} FROM import_stage ORDER BY line"
        f" ON CONFLICT (id) DO UPDATE SET {updates}"
        # xmax is 0 only on a freshly inserted row version.
        f" RETURNING (xmax = 0) AS inserted)"
        " SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) FILTER (WHERE NOT inserted) AS updated"
        " FROM written"
    )
    for statement in spec.after_write:
        await conn.execute(statement)
    return row["inserted"], row["updated"]
