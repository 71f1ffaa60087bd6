"""Faults the simulator injects, and what it counts: both set and read over /sim/."""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

DownMode = Literal["503", "reset"]


@dataclass
class Faults:
    """How badly the simulated system behaves; deterministic for a given seed.

    Applied in this order to each interface request: down, hang, burst,
    error rate, latency.
    """

    latency_ms: int = 0
    #: Fraction of requests answered 503, drawn from an RNG seeded with `seed`.
    error_rate: float = 0.0
    seed: int = 0
    #: The next `burst_count` requests get `burst_status` (503 or 429).
    burst_count: int = 0
    burst_status: int = 503
    #: Retry-After seconds sent with burst answers (None: no header).
    retry_after: float | None = None
    #: Never answer (until turned off or the client gives up).
    hang: bool = False
    #: "503": every request gets 503; "reset": the connection drops mid-answer.
    down: DownMode | None = None
    _rng: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @classmethod
    def from_json(cls, body: Any) -> "Faults":
        """Parse POST /sim/faults; raises ValueError with the offending field."""
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        known = {"latency_ms", "error_rate", "seed", "burst", "hang", "down"}
        unknown = set(body) - known
        if unknown:
            raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
        latency = _number(body, "latency_ms", 0, integer=True)
        error_rate = _number(body, "error_rate", 0.0)
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError("error_rate: must be between 0 and 1")
        burst = body.get("burst") or {}
        if not isinstance(burst, dict):
            raise ValueError("burst: must be an object {count, status, retry_after}")
        status = _number(burst, "status", 503, integer=True)
        if status not in (429, 503):
            raise ValueError("burst.status: must be 429 or 503")
        retry_after = burst.get("retry_after")
        if retry_after is not None:
            retry_after = _number(burst, "retry_after", 0.0)
        hang = body.get("hang", False)
        if not isinstance(hang, bool):
            raise ValueError("hang: must be true or false")
        down = body.get("down")
        if down is False:
            down = None
        if down not in (None, "503", "reset"):
            raise ValueError('down: must be null, "503" or "reset"')
        return cls(
            latency_ms=int(latency), error_rate=float(error_rate), seed=int(_number(body, "seed", 0, integer=True)),
            burst_count=int(_number(burst, "count", 0, integer=True)), burst_status=int(status),
            retry_after=retry_after, hang=hang, down=down,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms, "error_rate": self.error_rate, "seed": self.seed,
            "burst": {"count": self.burst_count, "status": self.burst_status, "retry_after": self.retry_after},
            "hang": self.hang, "down": self.down,
        }

    def replace_with(self, other: "Faults") -> None:
        """Take every setting of `other` in place (the app holds this object)."""
        for name in ("latency_ms", "error_rate", "seed", "burst_count", "burst_status", "retry_after", "hang", "down"):
            setattr(self, name, getattr(other, name))
        self._rng = random.Random(self.seed)

    def next_error(self) -> tuple[int, float | None] | None:
        """(status, Retry-After) this request should fail with, consuming the burst and the RNG."""
        if self.burst_count > 0:
            self.burst_count -= 1
            return self.burst_status, self.retry_after
        if self.error_rate and self._rng.random() < self.error_rate:
            return 503, None
        return None


@dataclass
class Stats:
    """Interface requests received since the last reset, per path, with their batch sizes."""

    calls: Counter[str] = field(default_factory=Counter)
    batch_sizes: dict[str, list[int]] = field(default_factory=dict)

    def record(self, path: str, size: int | None) -> None:
        self.calls[path] += 1
        if size is not None:
            self.batch_sizes.setdefault(path, []).append(size)

    def reset(self) -> None:
        self.calls.clear()
        self.batch_sizes.clear()

    def to_json(self) -> dict[str, Any]:
        return {"total": sum(self.calls.values()), "calls": dict(self.calls), "batch_sizes": self.batch_sizes}


def _number(body: dict[str, Any], name: str, default: float, *, integer: bool = False) -> float:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{name}: must be a non-negative number")
    if integer and int(value) != value:
        raise ValueError(f"{name}: must be a whole number")
    return value
