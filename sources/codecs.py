"""numeric and timestamptz read as text on the gateway's pooled connections: the same values, decoded faster.

asyncpg decodes both from PostgreSQL's binary format through Python-level
arithmetic: a numeric's base-10000 digits into a Decimal (~730 ns a value),
a timestamptz's microseconds since 2000 into a datetime (~560 ns). The text
format hands the C constructors a string: Decimal(text) and
datetime.fromisoformat(text) take ~300 ns and ~220 ns. A staff list reads
~220 amounts and ~200 instants: 1-3 % fewer instructions a staff list
(bench/instructions.py; README.md, Benchmarks). asyncpg's own
set_type_codec is the hook made for this.

The values are equal to the binary codec's: a numeric keeps its scale
(120.00 stays Decimal('120.00')), an instant is the same instant. Only an
instant's tzinfo differs: the session's offset (+08:00 in Asia/Shanghai)
instead of UTC. Everything that shows one converts it first
(schema/scalars.py), and comparisons between aware datetimes are by instant.
The text format depends on DateStyle, so the pools fix it (ISO).
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import asyncpg

#: Server settings the text decoders rely on.
TEXT_FORMAT_SETTINGS = {"DateStyle": "ISO, YMD"}

#: What asyncpg's binary codec returns for PostgreSQL's infinite instants (naive, as it does).
_INFINITE = {"infinity": datetime.max, "-infinity": datetime.min}


def _timestamptz_from_text(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        infinite = _INFINITE.get(text)
        if infinite is None:
            raise  # a BC date: asyncpg's binary codec cannot give those either
        return infinite


def _timestamptz_to_text(value: datetime) -> str:
    # As asyncpg's binary codec: datetime.max and .min are the infinities, and
    # any other naive datetime is taken as the machine's local time.
    if value.tzinfo is None and value in (datetime.max, datetime.min):
        return "infinity" if value == datetime.max else "-infinity"
    return value.astimezone(timezone.utc).isoformat()


async def decode_as_text(conn: asyncpg.Connection) -> None:
    """Have `conn` read and write numeric and timestamptz in PostgreSQL's text format."""
    await conn.set_type_codec("numeric", schema="pg_catalog", format="text", encoder=str, decoder=Decimal)
    await conn.set_type_codec("timestamptz", schema="pg_catalog", format="text",
                              encoder=_timestamptz_to_text, decoder=_timestamptz_from_text)
