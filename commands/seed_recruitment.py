"""Recruitment: on-site fairs (the 春风行动 one with 65 employers and 2128 positions) and livestreams."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from commands.seed_data import CITY_ID, DISTRICTS, SHANGHAI, Job
from commands.seed_orgs import Employer

SPRING_FAIR_ID = "EV-2026-CFXD"
SPRING_FAIR_TITLE = "2026年无锡市“春风行动”大型招聘会"
SPRING_FAIR_EMPLOYERS = 65
SPRING_FAIR_POSITIONS = 2128

EVENT_COLUMNS = ("id", "title", "format", "organizer_id", "starts_at")
EVENT_EMPLOYER_COLUMNS = ("event_id", "employer_id")
POSTING_COLUMNS = ("id", "event_id", "employer_id", "title", "sector", "headcount", "salary_min", "salary_max")

_DISTRICT = {d.key: d.org_id for d in DISTRICTS}

# (title, format, organizer, starts_at, industry the event is about or None)
_EVENTS = (
    ("2025年无锡市秋季人才交流大会", "ONSITE", CITY_ID, datetime(2025, 9, 20, 9, 0), None),
    ("江阴市纺织服装企业专场招聘会", "ONSITE", _DISTRICT["JY"], datetime(2025, 3, 15, 9, 0), "textile"),
    ("梁溪区“民营企业招聘月”现场招聘会", "ONSITE", _DISTRICT["LX"], datetime(2025, 5, 24, 9, 0), None),
    ("“直播带岗”——新吴区物联网企业专场", "LIVESTREAM", _DISTRICT["XW"], datetime(2025, 11, 20, 19, 30), "semiconductor"),
    ("宜兴市“就业援助月”专场招聘会", "ONSITE", _DISTRICT["YX"], datetime(2026, 1, 17, 9, 0), None),
    ("“云聘无锡”工会直播招聘会", "LIVESTREAM", CITY_ID, datetime(2026, 3, 12, 19, 0), None),
    ("新吴区集成电路产业专场招聘会", "ONSITE", _DISTRICT["XW"], datetime(2026, 4, 18, 9, 30), "semiconductor"),
    ("梁溪区“直播带岗”零售服务业专场", "LIVESTREAM", _DISTRICT["LX"], datetime(2026, 5, 21, 19, 30), "retail"),
    ("惠山区高校毕业生就业服务季招聘会", "ONSITE", _DISTRICT["HS"], datetime(2026, 6, 13, 9, 0), None),
    ("滨湖区文旅餐饮企业直播招聘", "LIVESTREAM", _DISTRICT["BH"], datetime(2026, 7, 9, 19, 0), "catering"),
    ("锡山区“家门口就业”招聘会", "ONSITE", _DISTRICT["XS"], datetime(2026, 9, 12, 9, 0), None),
    ("江阴市“工会直播带岗”制造业专场", "LIVESTREAM", _DISTRICT["JY"], datetime(2026, 10, 15, 19, 30), "manufacturing"),
)


@dataclass
class Recruitment:
    events: list[tuple] = field(default_factory=list)
    event_employers: list[tuple] = field(default_factory=list)
    postings: list[tuple] = field(default_factory=list)


def _salary(rng: random.Random, job: Job) -> tuple[Decimal, Decimal]:
    low = round(rng.uniform(job.salary_min, (job.salary_min + job.salary_max) / 2), -2)
    high = max(low + 500, round(rng.uniform((job.salary_min + job.salary_max) / 2, job.salary_max), -2))
    return Decimal(int(low)).quantize(Decimal("0.01")), Decimal(int(high)).quantize(Decimal("0.01"))


class _Builder:
    def __init__(self, rng: random.Random, employers: list[Employer]) -> None:
        self.rng = rng
        self.employers = employers
        self.out = Recruitment()

    def posting(self, event_id: str | None, employer: Employer, headcount: int) -> None:
        job = self.rng.choice(employer.industry.jobs)
        low, high = _salary(self.rng, job)
        number = len(self.out.postings) + 1
        self.out.postings.append((f"JP-{number:07d}", event_id, employer.id, job.title, employer.industry.label,
                                  headcount, low, high))

    def participants(self, count: int, industry: str | None) -> list[Employer]:
        count = min(count, len(self.employers))
        themed = [e for e in self.employers if industry and e.industry.key == industry]
        chosen = self.rng.sample(themed, min(len(themed), count * 2 // 3)) if themed else []
        taken = {e.id for e in chosen}
        rest = [e for e in self.employers if e.id not in taken]
        chosen += self.rng.sample(rest, count - len(chosen))
        return sorted(chosen, key=lambda e: e.number)

    def event(self, event_id: str, title: str, fmt: str, organizer: str, starts: datetime, industry: str | None) -> None:
        rng = self.rng
        self.out.events.append((event_id, title, fmt, organizer, starts.replace(tzinfo=SHANGHAI)))
        count = rng.randint(20, 60) if fmt == "ONSITE" else rng.randint(5, 12)
        for employer in self.participants(count, industry):
            self.out.event_employers.append((event_id, employer.id))
            if rng.random() < 0.1:
                continue  # came to talk, posted nothing
            for _ in range(rng.randint(1, 3)):
                self.posting(event_id, employer, rng.randint(1, 40 if fmt == "ONSITE" else 15))

    def spring_fair(self) -> None:
        """Exactly 65 employers offering exactly 2128 positions, as the fair's report says."""
        rng = self.rng
        self.out.events.append((SPRING_FAIR_ID, SPRING_FAIR_TITLE, "ONSITE", CITY_ID,
                                datetime(2026, 2, 28, 9, 0, tzinfo=SHANGHAI)))
        employers = sorted(rng.sample(self.employers, SPRING_FAIR_EMPLOYERS), key=lambda e: e.number)
        slots = [(e, rng.randint(5, 60)) for e in employers for _ in range(rng.randint(1, 4))]
        weight = sum(w for _, w in slots)
        counts = [max(1, SPRING_FAIR_POSITIONS * w // weight) for _, w in slots]
        i = 0
        while (gap := SPRING_FAIR_POSITIONS - sum(counts)) != 0:
            if gap > 0 or counts[i % len(counts)] > 1:
                counts[i % len(counts)] += 1 if gap > 0 else -1
            i += 1
        for employer in employers:
            self.out.event_employers.append((SPRING_FAIR_ID, employer.id))
        for (employer, _), headcount in zip(slots, counts, strict=True):
            self.posting(SPRING_FAIR_ID, employer, headcount)


def build_recruitment(rng: random.Random, *, employers: list[Employer]) -> Recruitment:
    """Events, who took part, and postings (a few standing ones belong to no event)."""
    builder = _Builder(rng, employers)
    builder.spring_fair()
    for number, (title, fmt, organizer, starts, industry) in enumerate(_EVENTS, start=1):
        builder.event(f"EV-{number:05d}", title, fmt, organizer, starts, industry)
    # Bigger federations hold more district fairs: one more per 500 employers.
    for extra in range(len(employers) // 500):
        district = rng.choice(DISTRICTS)
        month = rng.randint(1, 22)
        starts = datetime(2025 + (month - 1) // 12, (month - 1) % 12 + 1, rng.randint(1, 28), 9, 30)
        fmt = "ONSITE" if extra % 3 else "LIVESTREAM"
        title = f"{district.name}{starts.month}月“工会送岗位”{'专场招聘会' if fmt == 'ONSITE' else '直播带岗'}"
        builder.event(f"EV-{len(_EVENTS) + extra + 1:05d}", title, fmt, district.org_id, starts, None)
    for _ in range(len(employers) // 10 + 5):
        employer = rng.choice(employers)
        builder.posting(None, employer, rng.randint(1, 10))
    return builder.out
