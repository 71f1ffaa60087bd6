"""Date, DateTime and Decimal as schema.graphql defines them, parsed strictly.

Installed with `scalar_overrides` so that rows can carry plain `date`,
`datetime` and `Decimal` values and leaf fields stay plain attributes.
"""
from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from strawberry.types.scalar import ScalarDefinition, scalar

from web.errors import BadUserInput

SHANGHAI = ZoneInfo("Asia/Shanghai")
CENT = Decimal("0.01")

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})")
_DECIMAL = re.compile(r"-?\d{1,15}(\.\d{1,2})?")


def serialize_date(value: date) -> str:
    return value.isoformat()


def parse_date(value: Any) -> date:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise BadUserInput(f"Date must be a string YYYY-MM-DD, got {value!r}.")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadUserInput(f"{value!r} is not a calendar date.") from None


def serialize_datetime(value: datetime) -> str:
    # Shown in the city's own time zone; the offset makes it unambiguous.
    return value.astimezone(SHANGHAI).isoformat()


def parse_datetime(value: Any) -> datetime:
    if not isinstance(value, str) or not _DATETIME.fullmatch(value):
        raise BadUserInput(f"DateTime must be ISO 8601 with a UTC offset, e.g. 2026-01-31T23:30:00+08:00, got {value!r}.")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadUserInput(f"{value!r} is not a valid date and time.") from None


def serialize_decimal(value: Decimal) -> str:
    # Rows hold Decimals already: no copy for them (a page serializes hundreds).
    return str((value if value.__class__ is Decimal else Decimal(value)).quantize(CENT))


def parse_decimal(value: Any) -> Decimal:
    # A string only: a JSON number would already be a float, and floats lose cents.
    if not isinstance(value, str) or not _DECIMAL.fullmatch(value):
        raise BadUserInput(f"Decimal must be a string with at most two decimals, e.g. \"120.00\", got {value!r}.")
    try:
        return Decimal(value).quantize(CENT)
    except InvalidOperation:
        raise BadUserInput(f"{value!r} is not an amount.") from None


DateScalar: ScalarDefinition = scalar(
    name="Date", description='A calendar date, "YYYY-MM-DD".',
    serialize=serialize_date, parse_value=parse_date,
)
DateTimeScalar: ScalarDefinition = scalar(
    name="DateTime", description="ISO 8601 date and time with a UTC offset (Asia/Shanghai when served).",
    serialize=serialize_datetime, parse_value=parse_datetime,
)
DecimalScalar: ScalarDefinition = scalar(
    name="Decimal", description='Money in CNY: a string with exactly two decimals, e.g. "34343.00".',
    serialize=serialize_decimal, parse_value=parse_decimal,
)

#: For strawberry's Schema(scalar_overrides=...).
SCALAR_OVERRIDES: dict[object, ScalarDefinition] = {
    date: DateScalar,
    datetime: DateTimeScalar,
    Decimal: DecimalScalar,
}
