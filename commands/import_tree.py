"""The organization tree's rules, checked on the tree as it would be after the import.

The staged rows replace the stored rows with the same id; every rule is
checked on that merged tree, so a parent may come from the database or
from the same file, and re-parenting or re-levelling is judged with the
stored children it would affect.
"""
from __future__ import annotations

import asyncpg

from commands.import_csv import Problem

_MERGED = """
    WITH RECURSIVE merged AS (
        SELECT line, id, level, parent_id FROM import_stage WHERE id IS NOT NULL
        UNION ALL
        SELECT NULL, o.id, o.level, o.parent_id FROM members.organizations o
        WHERE NOT EXISTS (SELECT 1 FROM import_stage s WHERE s.id = o.id)
    )
"""

# A DISTRICT hangs under the CITY; a GRASSROOTS under a DISTRICT or the CITY.
_FITS = """(
    (c.level = 'DISTRICT' AND p.level = 'CITY')
    OR (c.level = 'GRASSROOTS' AND p.level IN ('DISTRICT', 'CITY'))
)"""

_PARENTS = _MERGED + f"""
    SELECT c.line, c.id, c.level, c.parent_id, p.level AS parent_level, p.id IS NOT NULL AS parent_known
    FROM merged c LEFT JOIN merged p ON p.id = c.parent_id
    WHERE c.line IS NOT NULL AND c.parent_id IS NOT NULL
      AND (p.id IS NULL OR (c.level IN ('DISTRICT', 'GRASSROOTS') AND p.level IS NOT NULL AND NOT {_FITS}))
    ORDER BY c.line
"""

_STRANDED_CHILDREN = _MERGED + f"""
    SELECT p.line, p.level, count(*) AS children, min(c.id) AS child, min(c.level) AS child_level
    FROM merged c JOIN merged p ON p.id = c.parent_id
    WHERE c.line IS NULL AND p.line IS NOT NULL AND p.level IS NOT NULL AND NOT {_FITS}
    GROUP BY p.line, p.level
    ORDER BY p.line
"""

_CITIES = _MERGED + """
    SELECT line, id FROM merged WHERE level = 'CITY' ORDER BY line NULLS FIRST, id
"""

# Rows that cannot be reached from a root are orphans of an unknown parent
# (reported already) or lie on or under a cycle; only those few are traced.
_UNREACHABLE = _MERGED + """
    , reachable (id) AS (
        SELECT id FROM merged WHERE parent_id IS NULL
        UNION
        SELECT m.id FROM merged m JOIN reachable r ON m.parent_id = r.id
    )
    SELECT line, id, parent_id FROM merged
    WHERE parent_id IS NOT NULL AND id NOT IN (SELECT id FROM reachable)
"""


def _under(level: str) -> str:
    return "the CITY" if level == "DISTRICT" else "a DISTRICT or the CITY"


async def tree_problems(conn: asyncpg.Connection) -> list[Problem]:
    """Every way the staged organizations would break the tree."""
    problems: list[Problem] = []
    for row in await conn.fetch(_PARENTS):
        if not row["parent_known"]:
            reason = f"unknown organization {row['parent_id']!r} (not in the database or this file)"
        else:
            reason = (f"a {row['level']} must be under {_under(row['level'])}; "
                      f"{row['parent_id']!r} is a {row['parent_level']}")
        problems.append(Problem(row["line"], "parent_id", reason))

    for row in await conn.fetch(_STRANDED_CHILDREN):
        problems.append(Problem(row["line"], "level", (
            f"a {row['level']} cannot hold its {row['children']} stored child organization(s), "
            f"e.g. {row['child']!r} ({row['child_level']})")))

    cities = await conn.fetch(_CITIES)
    for row in cities[1:]:
        if row["line"] is not None:
            problems.append(Problem(row["line"], "level", f"there is exactly one CITY, and it is {cities[0]['id']!r}"))

    unreachable = await conn.fetch(_UNREACHABLE)
    parent_of = {r["id"]: r["parent_id"] for r in unreachable}
    for row in unreachable:
        if row["line"] is None:
            continue
        chain = [row["id"]]
        current = parent_of.get(row["id"])
        while current in parent_of and current not in chain:
            chain.append(current)
            current = parent_of[current]
        if current == row["id"]:
            problems.append(Problem(row["line"], "parent_id", "cycle: " + " → ".join([*chain, row["id"]])))
    return problems
