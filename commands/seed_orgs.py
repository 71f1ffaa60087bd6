"""The organization tree (city, districts, grassroots unions) and the employers under it."""
from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import accumulate

from commands.seed_codes import credit_code
from commands.seed_data import BRAND_CHARS, CITY_ID, CITY_NAME, DISTRICTS, INDUSTRIES, District, Industry

MIN_EMPLOYERS = 80  # the 春风行动 fair alone needs 65 distinct employers
MAX_EMPLOYERS = 25_000
MEMBERS_PER_EMPLOYER = 40


@dataclass
class Employer:
    number: int
    id: str
    name: str
    credit_code: str
    industry: Industry
    district: District
    organization_id: str
    has_union: bool
    size: float  # relative share of members
    members: int = 0  # counted while members are generated

    def row(self) -> tuple[str, str, str, str, str]:
        return (self.id, self.name, self.credit_code, self.industry.label, self.organization_id)


@dataclass
class Tree:
    organizations: list[tuple[str, str, str, str | None]]
    employers: list[Employer]
    cumulative_sizes: list[float]  # for weighted employer choice by bisect

    def employer_rows(self) -> list[tuple[str, str, str, str, str]]:
        return [e.row() for e in self.employers]


def employer_count(members: int) -> int:
    """Roughly 40 members per employer, within bounds that keep the tree in the thousands."""
    return max(MIN_EMPLOYERS, min(members // MEMBERS_PER_EMPLOYER, MAX_EMPLOYERS))


def _pick(rng: random.Random, items: list, weights: list[float]):
    return rng.choices(items, weights=weights, k=1)[0]


def _district_for(rng: random.Random, industry: Industry) -> District:
    weights = [d.weight * industry.districts.get(d.key, 1.0) for d in DISTRICTS]
    return _pick(rng, list(DISTRICTS), weights)


def _name(rng: random.Random, industry: Industry, district: District, taken: set[str]) -> str:
    while True:
        brand = "".join(rng.sample(BRAND_CHARS, 2))
        name = rng.choice(industry.names).format(p=district.prefix, c=district.place, b=brand)
        if name not in taken:
            taken.add(name)
            return name


def build_tree(rng: random.Random, *, members: int) -> Tree:
    """City → districts → one grassroots union per unionized employer; employers with their orgs."""
    organizations: list[tuple[str, str, str, str | None]] = [(CITY_ID, CITY_NAME, "CITY", None)]
    organizations += [(d.org_id, d.union_name, "DISTRICT", CITY_ID) for d in DISTRICTS]
    industry_weights = [i.weight for i in INDUSTRIES]
    names: set[str] = set()
    codes: set[str] = set()
    employers: list[Employer] = []
    for number in range(1, employer_count(members) + 1):
        # The first employers take every industry once so even a tiny data set
        # has all of them; the very first is the demo's kindergarten in 梁溪区.
        if number <= len(INDUSTRIES):
            industry = INDUSTRIES[number - 1]
        else:
            industry = _pick(rng, list(INDUSTRIES), industry_weights)
        district = DISTRICTS[0] if number == 1 else _district_for(rng, industry)
        name = _name(rng, industry, district, names)
        kind = "12" if rng.random() < industry.public_share else industry.credit_prefix
        code = credit_code(rng, kind=kind, region=district.region)
        while code in codes:
            code = credit_code(rng, kind=kind, region=district.region)
        codes.add(code)
        has_union = rng.random() < industry.union_share
        if number == 1:
            has_union = True
        elif number == 8:
            # Guarantees members directly under a district union in any data set.
            has_union = False
        employer_id = f"EMP-{number:06d}"
        if has_union:
            org_id = f"ORG-G-{number:06d}"
            organizations.append((org_id, f"{name}工会", "GRASSROOTS", district.org_id))
        else:
            org_id = district.org_id
        size = min(rng.paretovariate(1.3), 60.0) * industry.size
        employers.append(Employer(number, employer_id, name, code, industry, district, org_id, has_union, size))
    return Tree(organizations, employers, list(accumulate(e.size for e in employers)))
