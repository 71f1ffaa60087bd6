"""Process-wide counters the rest of the code reports to (metrics come later)."""
from __future__ import annotations


def statement_ran(source: str) -> None:
    """One SQL statement ran against `source`."""
