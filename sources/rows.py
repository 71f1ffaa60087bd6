"""The decorator of the classes a source makes one of per database row."""
from __future__ import annotations

from dataclasses import dataclass

#: A dataclass with slots, hashable and compared by value as a frozen one, but
#: not frozen: frozen=True's __init__ sets every field through object.__setattr__,
#: ~630 ns for eight fields against ~100 ns, and a staff list makes several
#: hundred rows a request (2-3 % of its CPU, measured A/B). Rows are never
#: changed once made; a source makes a new one instead.
row_class = dataclass(slots=True, unsafe_hash=True)
