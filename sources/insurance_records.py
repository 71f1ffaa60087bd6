"""What the medical-insurance system returns (medical-insurance.yaml), as Python values."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any


class InsuranceUnavailable(Exception):
    """The insurance system could not answer: timeouts, 5xx, refusals, breaker open, retries exhausted."""

    def __init__(self, message: str, *, path: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.status = status


@dataclass(frozen=True)
class Settlement:
    """One settled hospital stay."""

    settlement_id: str
    national_id: str
    hospital_code: str
    hospital_name: str
    admission_date: date
    discharge_date: date
    diagnosis_code: str
    diagnosis_name: str | None
    total_cost: Decimal
    fund_paid: Decimal
    self_pay_in_policy: Decimal
    self_pay_out_of_policy: Decimal
    settled_at: datetime  # aware

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Settlement":
        """Parse one record; raises ValueError on anything the contract does not allow."""
        try:
            settled_at = datetime.fromisoformat(_str(data, "settled_at"))
            if settled_at.tzinfo is None:
                raise ValueError("settled_at has no UTC offset")
            name = data.get("diagnosis_name")
            if name is not None and not isinstance(name, str):
                raise ValueError("diagnosis_name is not a string")
            return cls(
                settlement_id=_str(data, "settlement_id"),
                national_id=_str(data, "national_id"),
                hospital_code=_str(data, "hospital_code"),
                hospital_name=_str(data, "hospital_name"),
                admission_date=date.fromisoformat(_str(data, "admission_date")),
                discharge_date=date.fromisoformat(_str(data, "discharge_date")),
                diagnosis_code=_str(data, "diagnosis_code"),
                diagnosis_name=name,
                total_cost=_money(data, "total_cost"),
                fund_paid=_money(data, "fund_paid"),
                self_pay_in_policy=_money(data, "self_pay_in_policy"),
                self_pay_out_of_policy=_money(data, "self_pay_out_of_policy"),
                settled_at=settled_at,
            )
        except (KeyError, TypeError, ArithmeticError) as exc:
            raise ValueError(f"malformed settlement: {exc!r}") from exc


@dataclass(frozen=True)
class Coverage:
    """Whether a person is insured on the asked date."""

    national_id: str
    insured: bool
    scheme: str | None
    since: date | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Coverage":
        """Parse one coverage entry; raises ValueError when malformed."""
        insured = data.get("insured")
        if not isinstance(insured, bool):
            raise ValueError("insured is not a boolean")
        scheme = data.get("scheme")
        if scheme is not None and not isinstance(scheme, str):
            raise ValueError("scheme is not a string")
        since = data.get("since")
        return cls(
            national_id=_str(data, "national_id"),
            insured=insured,
            scheme=scheme,
            since=date.fromisoformat(since) if since is not None else None,
        )


def _str(data: dict[str, Any], name: str) -> str:
    value = data[name]
    if not isinstance(value, str):
        raise ValueError(f"{name} is not a string")
    return value


def _money(data: dict[str, Any], name: str) -> Decimal:
    # Decimal strings per the contract; a float would already have lost cents.
    value = Decimal(_str(data, name))
    if not value.is_finite():
        raise ValueError(f"{name} is not a finite amount")
    return value
