"""A client of the simulator's /sim/ endpoints, and sample records, for tests, seed and demos."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

import httpx

from domain.national_id import check_digit


def sample_national_id(n: int) -> str:
    """A valid GB 11643 id (born 1980 onwards in Wuxi's Liangxi district), distinct for each n >= 0."""
    first17 = f"320213{(date(1980, 1, 1) + timedelta(days=n // 1000)):%Y%m%d}{n % 1000:03d}"
    return first17 + check_digit(first17)


def settlement_json(settlement_id: str, national_id: str, **fields: Any) -> dict[str, Any]:
    """A plausible settled stay as POST /sim/settlements takes it; `fields` override any value."""
    admission = fields.pop("admission_date", date(2024, 3, 4))
    if isinstance(admission, str):
        admission = date.fromisoformat(admission)
    discharge = fields.pop("discharge_date", admission + timedelta(days=6))
    record = {
        "settlement_id": settlement_id,
        "national_id": national_id,
        "hospital_code": "H32020100001",
        "hospital_name": "无锡市人民医院",
        "admission_date": admission.isoformat(),
        "discharge_date": discharge.isoformat() if isinstance(discharge, date) else discharge,
        "diagnosis_code": "K35.800",
        "diagnosis_name": "急性阑尾炎",
        "total_cost": "12345.60",
        "fund_paid": "8641.92",
        "self_pay_in_policy": "2469.12",
        "self_pay_out_of_policy": "1234.56",
        "settled_at": datetime(2024, 3, 11, 9, 30, tzinfo=timezone(timedelta(hours=8))).isoformat(),
    }
    for name, value in fields.items():
        record[name] = value.isoformat() if isinstance(value, (date, datetime)) else value
    return record


class SimulatorAdmin:
    """Talks to /sim/ over HTTP, as a test or an operator would."""

    def __init__(self, base_url: str, *, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=5.0)

    async def __aenter__(self) -> "SimulatorAdmin":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def add(self, *, settlements: list[dict[str, Any]] = (), coverage: list[dict[str, Any]] = ()) -> None:
        """Upsert settlements and coverage entries."""
        response = await self._http.post(
            "/sim/settlements", json={"settlements": list(settlements), "coverage": list(coverage)}
        )
        response.raise_for_status()

    async def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Replace the fault settings (see simulator.faults.Faults.from_json); none given: all off."""
        response = await self._http.post("/sim/faults", json=faults)
        response.raise_for_status()
        return response.json()

    async def stats(self) -> dict[str, Any]:
        """{"total", "calls": {path: n}, "batch_sizes": {path: [n, ...]}} since the last reset."""
        response = await self._http.get("/sim/stats")
        response.raise_for_status()
        return response.json()

    async def reset_stats(self) -> None:
        response = await self._http.post("/sim/stats/reset")
        response.raise_for_status()
