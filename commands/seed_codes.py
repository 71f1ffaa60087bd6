"""Valid-looking identifiers for synthetic data: national ids, 统一社会信用代码, mobile numbers."""
from __future__ import annotations

import random
from datetime import date

from commands.seed_data import PHONE_PREFIXES
from domain.national_id import check_digit

# GB 32100-2015: the code's alphabet (no I, O, S, V, Z) and position weights 3^i mod 31.
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {c: i for i, c in enumerate(_USCC_ALPHABET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# GB 11714-1997: the organization code inside it has its own check character.
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_BODY_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _org_value(char: str) -> int:
    return int(char) if char.isdigit() else ord(char) - 55


def organization_code_check(body8: str) -> str:
    """GB 11714 check character of an 8-character organization code body."""
    rest = 11 - sum(_org_value(c) * w for c, w in zip(body8, _ORG_WEIGHTS, strict=True)) % 11
    return {10: "X", 11: "0"}.get(rest, str(rest))


def credit_code_check(first17: str) -> str:
    """GB 32100 check character of the first 17 characters of a 统一社会信用代码."""
    rest = 31 - sum(_USCC_VALUE[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True)) % 31
    return _USCC_ALPHABET[0 if rest == 31 else rest]


def credit_code_problem(value: str) -> str | None:
    """Why `value` is not a well-formed 统一社会信用代码, or None."""
    if len(value) != 18 or any(c not in _USCC_VALUE for c in value):
        return "must be 18 characters of 0-9 and A-Y without I, O, S, V, Z"
    if organization_code_check(value[8:16]) != value[16]:
        return "organization code check character is wrong"
    if credit_code_check(value[:17]) != value[17]:
        return "check character is wrong"
    return None


def credit_code(rng: random.Random, *, kind: str, region: str) -> str:
    """A 统一社会信用代码: kind ('91', '12', '52'), region, organization code, check."""
    if kind == "91" and rng.random() < 0.6:
        # Codes issued since 2015 to new companies mostly start their body with MA.
        body = "MA" + "".join(rng.choice(_ORG_BODY_ALPHABET) for _ in range(6))
    else:
        body = "".join(rng.choice("0123456789") for _ in range(8))
    first17 = kind + region + body + organization_code_check(body)
    return first17 + credit_code_check(first17)


def national_id(rng: random.Random, *, region: str, birth: date, female: bool) -> str:
    """An 18-character id: region, birth date, sequence (odd for men), GB 11643 check digit."""
    sequence = rng.randrange(100) * 10 + rng.randrange(5) * 2 + (0 if female else 1)
    first17 = f"{region}{birth:%Y%m%d}{sequence:03d}"
    return first17 + check_digit(first17)


def mobile_phone(rng: random.Random) -> str:
    """An 11-digit mainland mobile number."""
    return rng.choice(PHONE_PREFIXES) + f"{rng.randrange(100_000_000):08d}"
