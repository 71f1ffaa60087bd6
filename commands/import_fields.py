"""Parsers for one CSV cell: each returns the typed value or raises ValueError(reason)."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from domain import national_id as nid

#: A starts_at without an offset is local time in the federation's city.
LOCAL_ZONE = ZoneInfo("Asia/Shanghai")

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_COUNT = re.compile(r"-?\d+", re.ASCII)
_MONEY = re.compile(r"\d{1,10}(\.\d{1,2})?", re.ASCII)
_PERCENT = re.compile(r"-?\d{1,3}(\.\d{1,2})?", re.ASCII)
_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", re.ASCII)
_CREDIT_CODE = re.compile(r"[0-9A-Z]{18}", re.ASCII)
_PHONE = re.compile(r"\+?[0-9][0-9 -]{4,19}", re.ASCII)
_INT_MAX = 2**31 - 1

Parser = Callable[[str], Any]


@dataclass(frozen=True)
class Column:
    """One CSV column: how to parse it and the staging table's SQL type."""

    name: str
    parse: Parser
    sql_type: str = "text"
    required: bool = True


def text(value: str) -> str:
    return value


def org_id(value: str) -> str:
    # '/' separates the ids in an organization's materialized path.
    if "/" in value:
        raise ValueError("must not contain '/'")
    return value


def enum(*allowed: str) -> Parser:
    def parse(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")
        return value

    return parse


def iso_date(value: str) -> date:
    if not _DATE.fullmatch(value):
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date") from None


def past_date(value: str) -> date:
    day = iso_date(value)
    if day > date.today():
        raise ValueError(f"{value} is in the future")
    return day


def iso_datetime(value: str) -> datetime:
    """ISO 8601 date and time; without an offset it is Asia/Shanghai time."""
    if not _DATE.fullmatch(value[:10]) or len(value) < 16 or value[10] not in "T ":
        raise ValueError(f"{value!r} is not an ISO 8601 date and time (e.g. 2024-03-01T09:30:00+08:00)")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date and time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=LOCAL_ZONE)


def count(value: str) -> int:
    if not _COUNT.fullmatch(value):
        raise ValueError(f"{value!r} is not a whole number")
    number = int(value)
    if number < 0:
        raise ValueError(f"{value} is negative")
    if number > _INT_MAX:
        raise ValueError(f"{value} is too large")
    return number


def money(value: str) -> Decimal:
    if not _MONEY.fullmatch(value):
        if value.startswith("-") and _MONEY.fullmatch(value[1:]):
            raise ValueError(f"{value} is negative")
        if _NUMBER.fullmatch(value):
            raise ValueError(f"{value!r} must be a plain amount with at most 2 decimals, e.g. 6500.00")
        raise ValueError(f"{value!r} is not a number")
    return Decimal(value)


def percent(value: str) -> Decimal:
    if not _PERCENT.fullmatch(value):
        if _NUMBER.fullmatch(value):
            raise ValueError(f"{value!r} must be between -999.99 and 999.99 with at most 2 decimals")
        raise ValueError(f"{value!r} is not a number")
    return Decimal(value)


def national_id(value: str) -> str:
    reason = nid.problem(value)
    if reason is not None:
        raise ValueError(reason)
    return value


def credit_code(value: str) -> str:
    if not _CREDIT_CODE.fullmatch(value):
        raise ValueError("must be 18 digits or capital letters (统一社会信用代码)")
    return value


def phone(value: str) -> str:
    if not _PHONE.fullmatch(value):
        raise ValueError("is not a phone number")
    return value
