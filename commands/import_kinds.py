"""What each importable KIND is: its CSV columns, row rules, references and target table."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from commands import import_fields as f
from commands.import_fields import Column
from domain import national_id as nid

#: Mirrors schema.graphql's enums (and the tables' CHECK constraints).
ORGANIZATION_LEVELS = ("CITY", "DISTRICT", "GRASSROOTS")
CONTRACT_KINDS = ("COMPREHENSIVE", "WAGE", "LABOR_SAFETY", "FEMALE_PROTECTION",
                  "OCCUPATIONAL_HEALTH", "TECH_INNOVATION", "SKILL_LEVEL_WAGE")
CONTRACT_STATUSES = ("OFFERED", "NEGOTIATING", "SIGNED", "FILED", "EXPIRED")
EVENT_FORMATS = ("ONSITE", "LIVESTREAM")

#: (column, reason) pairs for one row. The row holds only the cells that parsed
#: (an empty optional cell is None), so a rule never repeats a cell's own problem.
RowCheck = Callable[[dict[str, Any]], list[tuple[str, str]]]


@dataclass(frozen=True)
class Reference:
    """`column` holds the id of a row of `table`, which lives in `source`'s database."""

    column: str
    source: str
    table: str
    noun: str


@dataclass(frozen=True)
class Kind:
    """One importable KIND: where its rows go and what makes a row good."""

    name: str
    source: str
    table: str
    columns: tuple[Column, ...]
    references: tuple[Reference, ...] = ()
    check_row: RowCheck | None = None
    #: Columns whose values must be unique within the file and the table (besides id).
    unique: tuple[str, ...] = ()
    #: Statements run after the upsert, in the same transaction; they may read the staging table.
    after_write: tuple[str, ...] = field(default=())

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _organization_row(row: dict[str, Any]) -> list[tuple[str, str]]:
    level, parent = row.get("level"), row.get("parent_id")
    if level == "CITY" and parent is not None:
        return [("parent_id", "must be empty for the CITY")]
    if level in ("DISTRICT", "GRASSROOTS") and parent is None and "parent_id" in row:
        return [("parent_id", f"required for a {level}")]
    if parent is not None and parent == row.get("id"):
        return [("parent_id", "an organization cannot be its own parent")]
    return []


def _member_row(row: dict[str, Any]) -> list[tuple[str, str]]:
    born, national_id, joined = row.get("birth_date"), row.get("national_id"), row.get("joined_on")
    problems = []
    if born is not None and national_id is not None and nid.birth_date(national_id) != born:
        problems.append(("birth_date", f"{born} differs from the birth date in national_id"))
    if born is not None and joined is not None and joined < born:
        problems.append(("joined_on", "is before birth_date"))
    return problems


def _contract_row(row: dict[str, Any]) -> list[tuple[str, str]]:
    start, end = row.get("effective_from"), row.get("effective_to")
    if start is not None and end is not None and end < start:
        return [("effective_to", f"{end} is before effective_from {start}")]
    return []


def _posting_row(row: dict[str, Any]) -> list[tuple[str, str]]:
    low, high = row.get("salary_min"), row.get("salary_max")
    if low is not None and high is not None and high < low:
        return [("salary_max", f"{high} is less than salary_min {low}")]
    return []


KINDS: dict[str, Kind] = {
    "organizations": Kind(
        name="organizations",
        source="members",
        table="members.organizations",
        columns=(
            Column("id", f.org_id),
            Column("name", f.text),
            Column("level", f.enum(*ORGANIZATION_LEVELS)),
            Column("parent_id", f.org_id, required=False),
        ),
        check_row=_organization_row,
        # The tree's own checks (parents, levels, cycles) are in import_tree.
        after_write=("SELECT members.refresh_organization_paths()",),
    ),
    "employers": Kind(
        name="employers",
        source="members",
        table="members.employers",
        columns=(
            Column("id", f.text),
            Column("name", f.text),
            Column("credit_code", f.credit_code),
            Column("industry", f.text, required=False),
            Column("organization_id", f.text, required=False),
        ),
        references=(Reference("organization_id", "members", "members.organizations", "organization"),),
    ),
    "members": Kind(
        name="members",
        source="members",
        table="members.members",
        columns=(
            Column("id", f.text),
            Column("name", f.text),
            Column("gender", f.enum("FEMALE", "MALE")),
            Column("birth_date", f.past_date, "date"),
            Column("national_id", f.national_id),
            Column("phone", f.phone, required=False),
            Column("employment_type", f.enum("REGULAR", "DISPATCHED")),
            Column("employer_id", f.text),
            Column("organization_id", f.text),
            Column("joined_on", f.iso_date, "date"),
        ),
        references=(
            Reference("employer_id", "members", "members.employers", "employer"),
            Reference("organization_id", "members", "members.organizations", "organization"),
        ),
        check_row=_member_row,
        unique=("national_id",),
    ),
    "contracts": Kind(
        name="contracts",
        source="contracts",
        table="contracts.contracts",
        columns=(
            Column("id", f.text),
            Column("title", f.text),
            Column("kind", f.enum(*CONTRACT_KINDS)),
            Column("status", f.enum(*CONTRACT_STATUSES)),
            Column("employer_id", f.text),
            Column("organization_id", f.text),
            Column("campaign", f.text, required=False),
            Column("effective_from", f.iso_date, "date", required=False),
            Column("effective_to", f.iso_date, "date", required=False),
            Column("covered_workers", f.count, "integer"),
            Column("wage_increase_percent", f.percent, "numeric(5,2)", required=False),
            Column("signed_on", f.iso_date, "date", required=False),
        ),
        references=(
            Reference("employer_id", "members", "members.employers", "employer"),
            Reference("organization_id", "members", "members.organizations", "organization"),
        ),
        check_row=_contract_row,
    ),
    "events": Kind(
        name="events",
        source="recruitment",
        table="recruitment.events",
        columns=(
            Column("id", f.text),
            Column("title", f.text),
            Column("format", f.enum(*EVENT_FORMATS)),
            Column("organizer_id", f.text),
            Column("starts_at", f.iso_datetime, "timestamptz"),
        ),
        references=(Reference("organizer_id", "members", "members.organizations", "organization"),),
    ),
    "postings": Kind(
        name="postings",
        source="recruitment",
        table="recruitment.postings",
        columns=(
            Column("id", f.text),
            Column("event_id", f.text, required=False),
            Column("employer_id", f.text),
            Column("title", f.text),
            Column("sector", f.text),
            Column("headcount", f.count, "integer"),
            Column("salary_min", f.money, "numeric(12,2)", required=False),
            Column("salary_max", f.money, "numeric(12,2)", required=False),
        ),
        references=(
            Reference("event_id", "recruitment", "recruitment.events", "event"),
            Reference("employer_id", "members", "members.employers", "employer"),
        ),
        check_row=_posting_row,
        # A posting's employer takes part in its event (RecruitmentEvent.employers).
        after_write=(
            "INSERT INTO recruitment.event_employers (event_id, employer_id)"
            " SELECT DISTINCT event_id, employer_id FROM import_stage WHERE event_id IS NOT NULL"
            " ON CONFLICT DO NOTHING",
        ),
    ),
}
