"""A tiny builder for statements whose WHERE clause depends on filters and visibility."""
from __future__ import annotations

from typing import Any


class Query:
    """Collects numbered parameters and AND-ed conditions."""

    def __init__(self) -> None:
        self.args: list[Any] = []
        self.conditions: list[str] = []

    def arg(self, value: Any) -> str:
        """The placeholder ($n) for `value`."""
        self.args.append(value)
        return f"${len(self.args)}"

    def where(self, condition: str) -> None:
        self.conditions.append(condition)

    def one_of(self, column: str, values: list[Any], sql_type: str = "text") -> str:
        """`column` is one of `values`, for a statement whose few rows come from keys (a look-up by ids).

        A district's key sees some 2 000 organizations at 1 000 000 members.
        As `column = ANY($n)`, that list cost a look-up of 50 members'
        claims 5 to 9 ms of the server's CPU: planned for its values,
        PostgreSQL estimates each element; planned generically, it compares
        every row with every element. As a semi-join on the unnested array
        it is hashed once: about 0.5 ms. Not for a page walked in index
        order: there the semi-join made the planner hash the whole table
        (a district's claims page went from 5 to 20 ms), where ANY filters
        the walk.
        """
        return f"{column} IN (SELECT unnest({self.arg(values)}::{sql_type}[]))"

    @property
    def where_sql(self) -> str:
        return ("WHERE " + " AND ".join(self.conditions)) if self.conditions else ""


#: The dollar-quote tag of values written into a statement's text (see
#: inline_value). web/redaction.py scrubs whatever it encloses from span
#: attributes, so such statements reach traces without their values.
VALUE_QUOTE = "$value$"


def inline_value(value: str) -> str:
    """`value` as a string literal, for the rare statement sent without parameters.

    Only the simple query protocol runs several statements in one round trip,
    and it takes no parameters. A dollar-quoted literal is taken verbatim
    whatever the server's settings (no escapes of any kind), so the one thing
    to refuse is a value containing the tag itself (or NUL, which no text
    value may hold).
    """
    if VALUE_QUOTE in value or "\x00" in value:
        raise ValueError("value cannot be inlined")
    return f"{VALUE_QUOTE}{value}{VALUE_QUOTE}"
