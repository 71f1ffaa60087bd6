"""Recruitment events (job fairs, livestreams) and job postings (objects are sources.recruitment rows)."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from schema import scopes
from schema.members import Employer, Organization, require
from schema.prefetch import ready
from schema.pagination import PageInfo, build_edges, decode_cursor, encode_cursor, total_of
from sources.recruitment import EventQuery, EventRow, PostingRow

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MICROSECOND = timedelta(microseconds=1)


@strawberry.enum
class EventFormat(Enum):
    ONSITE = "ONSITE"
    LIVESTREAM = "LIVESTREAM"


@strawberry.federation.type(keys=["id"])
class RecruitmentEvent:
    id: strawberry.ID
    title: str
    format: EventFormat
    starts_at: datetime
    positions_offered: int = strawberry.field(description="Sum of the postings' headcounts.")

    @strawberry.field
    def organizer(self, info: Info) -> Organization:
        return ready(info.context.loaders.organization_by_id, self.organizer_id)

    @strawberry.field
    def employers(self, info: Info) -> list[Employer]:
        return ready(info.context.loaders.employers_by_event_id, self.id)

    @strawberry.field
    def postings(self, info: Info) -> list[JobPosting]:
        return ready(info.context.loaders.postings_by_event_id, self.id)

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> EventRow | None:
        require(info, scopes.RECRUITMENT_READ)
        return await info.context.loaders.event_by_id.load(id)

    @classmethod
    def is_type_of(cls, obj: Any, info: Info) -> bool:
        return isinstance(obj, EventRow)


@strawberry.federation.type(keys=["id"])
class JobPosting:
    id: strawberry.ID
    title: str
    sector: str
    headcount: int
    salary_min: Decimal | None
    salary_max: Decimal | None

    @strawberry.field
    def event(self, info: Info) -> RecruitmentEvent | None:
        if self.event_id is None:
            return None
        return ready(info.context.loaders.event_by_id, self.event_id)

    @strawberry.field
    def employer(self, info: Info) -> Employer:
        return ready(info.context.loaders.employer_by_id, self.employer_id)

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> PostingRow | None:
        require(info, scopes.RECRUITMENT_READ)
        return await info.context.loaders.posting_by_id.load(id)

    @classmethod
    def is_type_of(cls, obj: Any, info: Info) -> bool:
        return isinstance(obj, PostingRow)


@strawberry.type
class RecruitmentEventEdge:
    node: RecruitmentEvent
    cursor_of: strawberry.Private[Callable[[Any], str]]

    @strawberry.field
    def cursor(self) -> str:
        return self.cursor_of(self.node)


@strawberry.type
class RecruitmentEventConnection:
    edges: list[RecruitmentEventEdge]
    page_info: PageInfo
    total: strawberry.Private[int | Callable[[], Awaitable[int]]]

    @strawberry.field
    def total_count(self) -> int:
        return total_of(self.total)


def event_cursor(row: EventRow) -> str:
    # Microseconds since the epoch keep the cursor exact and zone-free.
    return encode_cursor("event", (row.starts_at - EPOCH) // MICROSECOND, row.id)


def event_after(cursor: str | None) -> tuple[datetime, str] | None:
    """The (startsAt, id) an event cursor holds."""
    key = decode_cursor("event", cursor, int, str)
    return (EPOCH + key[0] * MICROSECOND, key[1]) if key else None


def event_connection(rows: list[EventRow], first: int,
                     total: int | Callable[[], Awaitable[int]]) -> RecruitmentEventConnection:
    """A RecruitmentEventConnection over rows fetched first + 1, by (startsAt, id)."""
    edges, page_info = build_edges(RecruitmentEventEdge, rows, first, event_cursor)
    return RecruitmentEventConnection(edges=edges, page_info=page_info, total=total)


@strawberry.input
class RecruitmentEventFilter:
    organizer_id: strawberry.ID | None = None
    format: EventFormat | None = None
    starts_from: datetime | None = strawberry.field(default=None, description="Inclusive.")
    starts_to: datetime | None = strawberry.field(default=None, description="Inclusive.")


def event_query(f: RecruitmentEventFilter | None) -> EventQuery:
    """The source's form of a RecruitmentEventFilter."""
    if f is None:
        return EventQuery()
    return EventQuery(organizer_id=f.organizer_id, format=f.format.value if f.format else None,
                      starts_from=f.starts_from, starts_to=f.starts_to)
