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

    @property
    def where_sql(self) -> str:
        return ("WHERE " + " AND ".join(self.conditions)) if self.conditions else ""
