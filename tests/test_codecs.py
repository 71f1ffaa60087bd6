"""The pools read numeric and timestamptz as text (sources/codecs.py): the values must be asyncpg's own.

Each value is read through a gateway pool and through a plain connection
with asyncpg's binary codecs, and written back through the pool.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import asyncpg

NUMERICS = ["0", "120.00", "-0.50", "12345678901234567890.123456789", "1e-20", "NaN", "1000000", "0.1"]
INSTANTS = ["2026-11-30 02:26:26+00", "2026-03-01 08:00:00.5+08", "2024-02-29 23:59:59.999999+00",
            "1900-01-01 00:00:00+00", "2000-01-01 00:00:00.000001+00", "infinity", "-infinity"]


async def _both(databases: Any, database_url: str, sql: str, *args: Any) -> tuple[list, list]:
    plain = await asyncpg.connect(database_url)
    try:
        binary = [tuple(r) for r in await plain.fetch(sql, *args)]
    finally:
        await plain.close()
    text = [tuple(r) for r in await databases.claims.fetch(sql, *args)]
    return text, binary


async def test_numerics_read_as_the_binary_codec_reads_them(databases: Any, database_url: str) -> None:
    text, binary = await _both(databases, database_url,
                               "SELECT v::numeric, ARRAY[v::numeric, NULL] FROM unnest($1::text[]) v", NUMERICS)
    same = [a == b or (a.is_nan() and b.is_nan()) for (a, _), (b, _) in zip(text, binary)]
    assert same == [True] * len(NUMERICS)
    # The scale is kept (what a DB column of numeric(12, 2) holds shows as cents). The binary
    # codec gives 1000000 as 1.00E+6; the text one as written: equal, and quantized when shown.
    assert [str(a) for a, _ in text] == ["0", "120.00", "-0.50", "12345678901234567890.123456789",
                                         "1E-20", "NaN", "1000000", "0.1"]
    assert [str(a[0]) for _, a in text] == [str(a) for a, _ in text] and {a[1] for _, a in text} == {None}


async def test_instants_read_as_the_binary_codec_reads_them(databases: Any, database_url: str) -> None:
    text, binary = await _both(databases, database_url,
                               "SELECT v::timestamptz, ARRAY[v::timestamptz] FROM unnest($1::text[]) v", INSTANTS)
    assert text == binary  # aware datetimes: equal as instants
    assert [type(a) for a, _ in text] == [datetime] * len(INSTANTS)
    assert text[1][0].utcoffset() == timedelta(hours=8)  # the session's zone, Asia/Shanghai
    assert text[1][0] == datetime(2026, 3, 1, 0, 0, 0, 500000, tzinfo=timezone.utc)


async def test_values_written_through_a_pool_come_back_unchanged(databases: Any) -> None:
    amounts = [Decimal(v) for v in NUMERICS if v != "NaN"] + [Decimal("12.5"), 7]
    instants = [datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8))),
                datetime(2026, 11, 30, 2, 26, 26, tzinfo=timezone.utc),
                datetime.max, datetime.min]
    got = await databases.claims.fetchrow("SELECT $1::numeric[], $2::timestamptz[], $3::numeric, $4::timestamptz",
                                          amounts, instants, Decimal("0.10"), instants[0])
    assert [str(v) for v in got[0]] == [str(Decimal(v)) for v in amounts]
    assert got[1] == instants
    assert str(got[2]) == "0.10" and got[3] == instants[0]
    # Where a value came from the server's clock, the instant is the server's.
    assert abs(await databases.claims.fetchval("SELECT now()") - datetime.now(timezone.utc)) < timedelta(minutes=1)
