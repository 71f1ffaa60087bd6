"""The simulator's reads and writes of insurance_sim.settlements / insurance_sim.coverage."""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import asyncpg

_COLUMNS = (
    "settlement_id, national_id, hospital_code, hospital_name, admission_date, discharge_date, "
    "diagnosis_code, diagnosis_name, total_cost, fund_paid, self_pay_in_policy, "
    "self_pay_out_of_policy, settled_at"
)
_MONEY = ("total_cost", "fund_paid", "self_pay_in_policy", "self_pay_out_of_policy")
#: The scheme a person gets when only their settlement is added.
DEFAULT_SCHEME = "城镇职工基本医疗保险"


def encode_settlement(row: asyncpg.Record) -> dict[str, Any]:
    """A row as the contract's Settlement: dates ISO, money decimal strings."""
    return {
        "settlement_id": row["settlement_id"],
        "national_id": row["national_id"],
        "hospital_code": row["hospital_code"],
        "hospital_name": row["hospital_name"],
        "admission_date": row["admission_date"].isoformat(),
        "discharge_date": row["discharge_date"].isoformat(),
        "diagnosis_code": row["diagnosis_code"],
        "diagnosis_name": row["diagnosis_name"],
        **{name: str(row[name]) for name in _MONEY},
        "settled_at": row["settled_at"].isoformat(),
    }


async def settlements_by_id(pool: asyncpg.Pool, ids: list[str]) -> list[asyncpg.Record]:
    return await pool.fetch(
        f"SELECT {_COLUMNS} FROM insurance_sim.settlements WHERE settlement_id = ANY($1::text[])"
        " ORDER BY settlement_id",
        ids,
    )


async def search_page(
    pool: asyncpg.Pool, *, national_ids: list[str], since: datetime,
    after: tuple[datetime, str] | None, limit: int,
) -> list[asyncpg.Record]:
    """Up to `limit` settlements after the keyset position `after`, oldest first."""
    after_at, after_id = after if after is not None else (None, None)
    return await pool.fetch(
        f"SELECT {_COLUMNS} FROM insurance_sim.settlements"
        " WHERE national_id = ANY($1::text[]) AND settled_at >= $2"
        "   AND ($3::timestamptz IS NULL OR (settled_at, settlement_id) > ($3, $4::text))"
        " ORDER BY settled_at, settlement_id LIMIT $5",
        national_ids, since, after_at, after_id, limit,
    )


async def coverage_on(pool: asyncpg.Pool, national_ids: list[str], on: date) -> list[dict[str, Any]]:
    """One entry per asked id: unknown people and those not yet insured on `on` are insured: false."""
    rows = await pool.fetch(
        "SELECT national_id, insured, scheme, since FROM insurance_sim.coverage WHERE national_id = ANY($1::text[])",
        national_ids,
    )
    known = {row["national_id"]: row for row in rows}
    entries = []
    for national_id in dict.fromkeys(national_ids):
        row = known.get(national_id)
        if row is not None and row["insured"] and (row["since"] is None or row["since"] <= on):
            entries.append({
                "national_id": national_id, "insured": True, "scheme": row["scheme"],
                "since": row["since"].isoformat() if row["since"] else None,
            })
        else:
            entries.append({"national_id": national_id, "insured": False, "scheme": None, "since": None})
    return entries


def parse_settlement(data: Any, where: str) -> tuple[Any, ...]:
    """Validate an admin-posted settlement into a row tuple; ValueError says which field is wrong."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: must be an object")

    def text(name: str, *, optional: bool = False) -> str | None:
        value = data.get(name)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value:
            raise ValueError(f"{where}.{name}: required, a non-empty string")
        return value

    def day(name: str) -> date:
        try:
            return date.fromisoformat(text(name) or "")
        except ValueError:
            raise ValueError(f"{where}.{name}: must be a date YYYY-MM-DD") from None

    def money(name: str) -> Decimal:
        value = data.get(name)
        if not isinstance(value, str):
            raise ValueError(f"{where}.{name}: required, a decimal string")
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"{where}.{name}: {value!r} is not a decimal") from None
        if not amount.is_finite() or not 0 <= amount < 10**10 or amount != amount.quantize(Decimal("0.01")):
            raise ValueError(f"{where}.{name}: must be an amount from 0 to 9999999999.99 with at most 2 decimals")
        return amount

    admission, discharge = day("admission_date"), day("discharge_date")
    if discharge < admission:
        raise ValueError(f"{where}.discharge_date: before admission_date")
    settled = data.get("settled_at")
    if settled is None:
        settled_at = datetime.now(timezone.utc)
    else:
        try:
            settled_at = datetime.fromisoformat(settled) if isinstance(settled, str) else None
        except ValueError:
            settled_at = None
        if settled_at is None or settled_at.tzinfo is None:
            raise ValueError(f"{where}.settled_at: must be a date-time with a UTC offset")
    return (
        text("settlement_id"), text("national_id"), text("hospital_code"), text("hospital_name"),
        admission, discharge, text("diagnosis_code"), text("diagnosis_name", optional=True),
        *(money(name) for name in _MONEY), settled_at,
    )


def parse_coverage(data: Any, where: str) -> tuple[str, bool, str | None, date | None]:
    """Validate an admin-posted coverage entry into a row tuple."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: must be an object")
    national_id, insured, scheme, since = (data.get(k) for k in ("national_id", "insured", "scheme", "since"))
    if not isinstance(national_id, str) or not national_id:
        raise ValueError(f"{where}.national_id: required, a non-empty string")
    if not isinstance(insured, bool):
        raise ValueError(f"{where}.insured: required, true or false")
    if scheme is not None and not isinstance(scheme, str):
        raise ValueError(f"{where}.scheme: must be a string or null")
    try:
        since_day = date.fromisoformat(since) if since is not None else None
    except (TypeError, ValueError):
        raise ValueError(f"{where}.since: must be a date YYYY-MM-DD or null") from None
    return national_id, insured, scheme, since_day


async def upsert(pool: asyncpg.Pool, *, settlements: list[tuple[Any, ...]],
                 coverage: list[tuple[str, bool, str | None, date | None]]) -> None:
    """Write settlements and coverage in one transaction.

    A person with a settled stay is insured: when no coverage is on record
    for them, they get the default scheme with no start date.
    """
    async with pool.acquire() as conn, conn.transaction():
        if settlements:
            await conn.executemany(
                f"INSERT INTO insurance_sim.settlements ({_COLUMNS})"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                " ON CONFLICT (settlement_id) DO UPDATE SET"
                " national_id = EXCLUDED.national_id, hospital_code = EXCLUDED.hospital_code,"
                " hospital_name = EXCLUDED.hospital_name, admission_date = EXCLUDED.admission_date,"
                " discharge_date = EXCLUDED.discharge_date, diagnosis_code = EXCLUDED.diagnosis_code,"
                " diagnosis_name = EXCLUDED.diagnosis_name, total_cost = EXCLUDED.total_cost,"
                " fund_paid = EXCLUDED.fund_paid, self_pay_in_policy = EXCLUDED.self_pay_in_policy,"
                " self_pay_out_of_policy = EXCLUDED.self_pay_out_of_policy, settled_at = EXCLUDED.settled_at",
                settlements,
            )
        if coverage:
            await conn.executemany(
                "INSERT INTO insurance_sim.coverage (national_id, insured, scheme, since) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (national_id) DO UPDATE SET"
                " insured = EXCLUDED.insured, scheme = EXCLUDED.scheme, since = EXCLUDED.since",
                coverage,
            )
        explicit = {entry[0] for entry in coverage}
        implied = sorted({row[1] for row in settlements} - explicit)
        if implied:
            await conn.execute(
                "INSERT INTO insurance_sim.coverage (national_id, insured, scheme, since)"
                " SELECT unnest($1::text[]), true, $2, NULL ON CONFLICT (national_id) DO NOTHING",
                implied, DEFAULT_SCHEME,
            )
