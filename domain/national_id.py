"""Resident identity numbers (GB 11643-1999): check digit, birth date, masking."""
from __future__ import annotations

from datetime import date

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def check_digit(first17: str) -> str:
    """The 18th character for the given first 17 digits."""
    total = sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def problem(value: str) -> str | None:
    """Why `value` is not a valid 18-character national id, or None if it is."""
    if len(value) != 18:
        return f"must be 18 characters, got {len(value)}"
    if not value[:17].isdigit() or not (value[17].isdigit() or value[17] == "X"):
        return "must be 17 digits followed by a digit or X"
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return f"birth date {value[6:14]} is not a date"
    if check_digit(value[:17]) != value[17]:
        return f"check digit is {value[17]}, expected {check_digit(value[:17])}"
    return None


def birth_date(value: str) -> date:
    """The birth date encoded in a valid national id."""
    return date(int(value[6:10]), int(value[10:12]), int(value[12:14]))


def mask_national_id(value: str) -> str:
    """First 6 and last 4 characters with 8 '*' between (schema.graphql)."""
    return value[:6] + "*" * 8 + value[-4:]


def mask_phone(value: str) -> str:
    """First 3 and last 4 with '****' between (schema.graphql)."""
    return value[:3] + "****" + value[-4:]
