"""Keyset pagination: PageInfo, opaque cursors, the `first` cap, and connection building."""
from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import strawberry

from web.errors import BadUserInput

MAX_FIRST = 100

T = TypeVar("T")


@strawberry.type
class PageInfo:
    has_next_page: bool
    # The last row shown and how to make its cursor: a cursor is a JSON dump and a
    # base64 of it, ~5 µs, and a nested page (a member's claims) makes one per parent.
    last: strawberry.Private[Any] = None
    cursor_of: strawberry.Private[Callable[[Any], str] | None] = None

    @strawberry.field
    def end_cursor(self) -> str | None:
        return None if self.last is None or self.cursor_of is None else self.cursor_of(self.last)


def page_size(first: int | None) -> int:
    """`first` checked against the cap; the number of rows to return."""
    if first is None:
        raise BadUserInput("first must be given.")
    if first < 0:
        raise BadUserInput(f"first must not be negative, got {first}.")
    if first > MAX_FIRST:
        raise BadUserInput(f"first must be at most {MAX_FIRST}, got {first}.")
    return first


def encode_cursor(kind: str, *key: Any) -> str:
    """An opaque cursor: base64 of the kind and the row's sort key."""
    return base64.urlsafe_b64encode(json.dumps([kind, *key], separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None, *types: type) -> tuple | None:
    """The sort key a cursor of `kind` holds (one value per type), None for no cursor; else BAD_USER_INPUT."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        value = None
    if (not isinstance(value, list) or len(value) != len(types) + 1 or value[0] != kind
            or not all(isinstance(v, t) and not isinstance(v, bool) for v, t in zip(value[1:], types))):
        raise BadUserInput("after is not a cursor of this list.")
    return tuple(value[1:])


def build_edges(edge: Callable[..., T], rows: Sequence[Any], first: int,
                cursor_of: Callable[[Any], str]) -> tuple[list[T], PageInfo]:
    """Edges of the first `first` rows (the caller fetched first + 1) and their PageInfo."""
    shown = rows[:first]
    # Cursors are encoded only when asked for: a list page rarely selects them.
    edges = [edge(node=row, cursor_of=cursor_of) for row in shown]
    return edges, PageInfo(has_next_page=len(rows) > first, last=shown[-1] if shown else None, cursor_of=cursor_of)


def total_of(total: int | Callable[[], Awaitable[int]]) -> int | Awaitable[int]:
    """A connection's totalCount: known already (returned as is), or counted only when asked for."""
    return total if isinstance(total, int) else total()
