"""The decorator of the classes a source makes one of per database row, and their SELECT lists."""
from __future__ import annotations

import re
from dataclasses import dataclass, fields

#: A dataclass with slots, hashable and compared by value as a frozen one, but
#: not frozen: frozen=True's __init__ sets every field through object.__setattr__,
#: ~630 ns for eight fields against ~100 ns, and a staff list makes several
#: hundred rows a request (2-3 % of its CPU, measured A/B). Rows are never
#: changed once made; a source makes a new one instead.
row_class = dataclass(slots=True, unsafe_hash=True)

_ALIAS = re.compile(r"\bAS\s+(\w+)\s*$", re.IGNORECASE)
_COLUMN = re.compile(r"(?:\w+\.)?(\w+)\s*$")


def select_list(cls: type, columns: str) -> str:
    """`columns`, a SELECT list, once it is checked to name `cls`'s fields in their order.

    Sources build rows from a slice of the record, `cls(*record[i:i + width])`:
    ~150 ns a row against ~350 ns reading ten columns by name (asyncpg looks
    each name up), and a staff list builds ~340 rows (~2 % of its CPU). That
    is only right while the statement's columns are the class's fields in the
    same order; this check makes a list out of step an import error, not
    values in the wrong fields.
    """
    names = [_output_name(item) for item in _top_level_items(columns)]
    expected = [f.name for f in fields(cls)]
    if None in names:
        raise TypeError(f"the SELECT list for {cls.__name__} has an item without a name: give each expression an alias")
    if names != expected:
        raise TypeError(f"the SELECT list for {cls.__name__} names {names}, not its fields {expected}")
    return columns


def width(cls: type) -> int:
    """How many columns a row of `cls` takes in a record."""
    return len(fields(cls))


def qualified(columns: str, alias: str, prefix: str = "") -> str:
    """A plain SELECT list (bare column names) with each column taken from table `alias`,
    and named `prefix` + its name when a prefix is given (to keep it apart from another table's)."""
    names = [c.strip() for c in columns.split(",")]
    return ", ".join(f"{alias}.{n} AS {prefix}{n}" if prefix else f"{alias}.{n}" for n in names)


def _top_level_items(columns: str) -> list[str]:
    """The list's items: split at commas outside parentheses."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(columns):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(columns[start:i])
            start = i + 1
    items.append(columns[start:])
    return [item.strip() for item in items]


def _output_name(item: str) -> str | None:
    """The name PostgreSQL gives an item's column: its alias, or the column it reads (None: an expression)."""
    found = _ALIAS.search(item) or _COLUMN.search(item)
    return found.group(1) if found else None
