"""Collective bargaining contracts: comprehensive ones, yearly wage contracts from the spring 要约行动, special ones."""
from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

from commands.seed_data import AS_OF
from commands.seed_orgs import Employer

KIND_LABELS = {
    "COMPREHENSIVE": "集体合同",
    "WAGE": "工资专项集体合同",
    "LABOR_SAFETY": "劳动安全卫生专项集体合同",
    "FEMALE_PROTECTION": "女职工权益保护专项集体合同",
    "OCCUPATIONAL_HEALTH": "职业病防治专项集体合同",
    "TECH_INNOVATION": "技术创新专项集体合同",
    "SKILL_LEVEL_WAGE": "技能等级工资专项集体合同",
}
STATUSES = ("OFFERED", "NEGOTIATING", "SIGNED", "FILED", "EXPIRED")
DEMO_CAMPAIGN = "2021春季要约行动"

# Which industries sign which special contracts, and how often.
_SPECIALS = {
    "LABOR_SAFETY": ({"manufacturing", "semiconductor", "construction", "logistics", "ceramics"}, 0.3),
    "FEMALE_PROTECTION": ({"kindergarten", "textile", "healthcare", "retail", "catering", "semiconductor"}, 0.35),
    "OCCUPATIONAL_HEALTH": ({"manufacturing", "textile", "construction", "ceramics"}, 0.2),
    "TECH_INNOVATION": ({"semiconductor", "manufacturing"}, 0.25),
    "SKILL_LEVEL_WAGE": ({"manufacturing", "textile", "semiconductor"}, 0.2),
}

COLUMNS = ("id", "title", "kind", "status", "employer_id", "organization_id", "campaign", "effective_from",
           "effective_to", "covered_workers", "wage_increase_percent", "signed_on")


def campaign(year: int) -> str:
    return f"{year}春季要约行动"


class ContractFactory:
    """Contracts per employer, numbered in generation order."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.rows: list[tuple] = []

    def _add(self, employer: Employer, kind: str, year: int, *, in_campaign: bool, status: str | None = None) -> None:
        rng = self.rng
        term = 1 if kind == "WAGE" else 3
        last_month = 12 if year < AS_OF.year else AS_OF.month
        # Spring campaign offers go out in March; what they win takes effect on May 1st.
        month = 5 if in_campaign else rng.randint(1, last_month)
        start = date(year, month, 1)
        end = date(year + term, month, 1) - timedelta(days=1)
        signed: date | None = start - timedelta(days=rng.randint(5, 40))
        if status is None:
            if year == AS_OF.year and in_campaign and rng.random() < 0.3:
                status = rng.choice(("OFFERED", "NEGOTIATING"))
            elif end < AS_OF:
                status = "EXPIRED"
            elif signed >= AS_OF - timedelta(days=45) or rng.random() < 0.1:
                status = "SIGNED"  # not yet filed with the labour bureau
            else:
                status = "FILED"
        effective_from: date | None = start
        effective_to: date | None = end
        if status in ("OFFERED", "NEGOTIATING"):
            effective_from = effective_to = signed = None
        covered = employer.members + int(employer.members * rng.uniform(0.1, 0.6)) + rng.randint(3, 30)
        wage = Decimal(rng.randint(300, 800)).scaleb(-2) if kind == "WAGE" else None
        label = KIND_LABELS[kind]
        title = f"{employer.name}{year}年度{label}" if term == 1 else f"{employer.name}{label}（{year}—{year + term}年）"
        number = len(self.rows) + 1
        self.rows.append((f"CT-{number:07d}", title, kind, status, employer.id, employer.organization_id,
                          campaign(year) if in_campaign else None, effective_from, effective_to, covered, wage, signed))

    def employer(self, employer: Employer) -> None:
        """The contract history of one employer."""
        rng = self.rng
        if rng.random() < 0.65:
            year = rng.randint(2017, AS_OF.year)
            while year <= AS_OF.year:
                self._add(employer, "COMPREHENSIVE", year, in_campaign=rng.random() < 0.3)
                year += 3
        if rng.random() < 0.55:
            for year in range(2021, AS_OF.year + 1):
                if rng.random() < 0.6:
                    self._add(employer, "WAGE", year, in_campaign=rng.random() < 0.7)
        for kind, (industries, share) in _SPECIALS.items():
            if employer.industry.key in industries and rng.random() < share:
                self._add(employer, kind, rng.randint(2019, AS_OF.year), in_campaign=False)

    def complete(self, employers: list[Employer]) -> None:
        """Make sure every kind, every status and the 2021 campaign appear, however small the data set."""
        rng = self.rng
        kinds = {row[2] for row in self.rows}
        for kind in KIND_LABELS:
            if kind not in kinds:
                self._add(rng.choice(employers), kind, AS_OF.year - 1, in_campaign=False)
        statuses = {row[3] for row in self.rows}
        for status in STATUSES:
            if status not in statuses:
                year = 2021 if status == "EXPIRED" else AS_OF.year
                self._add(rng.choice(employers), "WAGE", year, in_campaign=True, status=status)
        if not any(row[6] == DEMO_CAMPAIGN for row in self.rows):
            self._add(rng.choice(employers), "WAGE", 2021, in_campaign=True)


def build_contracts(rng: random.Random, *, employers: list[Employer]) -> list[tuple]:
    """Rows of contracts.contracts in COLUMNS order."""
    factory = ContractFactory(rng)
    for employer in employers:
        factory.employer(employer)
    factory.complete(employers)
    return factory.rows
