"""auditTrail: who read unmasked PII or medical data, and every mutation (needs audit:read)."""
from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from strawberry.types import Info

from schema import scopes
from schema.pagination import PageInfo, decode_cursor, encode_cursor, page_size
from schema.permissions import requires
from sources import audit


@strawberry.enum(description="What an audited request did.")
class AuditKind(Enum):
    PII_READ = audit.PII_READ
    MEDICAL_READ = audit.MEDICAL_READ
    MUTATION = audit.MUTATION


@strawberry.type(description="One request's reads of one kind of entity, or one mutation. Ids only, never values.")
class AuditEvent:
    id: strawberry.ID
    at: datetime
    key_id: strawberry.ID
    organization_id: strawberry.ID
    operation_name: str | None
    kind: AuditKind
    entity_type: str = strawberry.field(
        description="Member or MedicalSettlement for reads; the mutation's name for mutations.")
    entity_ids: list[strawberry.ID]
    fields: list[str]


@strawberry.type
class AuditEventEdge:
    cursor: str
    node: AuditEvent


@strawberry.type
class AuditEventConnection:
    edges: list[AuditEventEdge]
    page_info: PageInfo
    total_count: int


def _event(row: audit.AuditEvent) -> AuditEvent:
    return AuditEvent(id=strawberry.ID(str(row.id)), at=row.at, key_id=strawberry.ID(row.key_id),
                      organization_id=strawberry.ID(row.organization_id), operation_name=row.operation_name,
                      kind=AuditKind(row.kind), entity_type=row.entity_type,
                      entity_ids=[strawberry.ID(i) for i in row.entity_ids], fields=list(row.fields))


@strawberry.type
class AuditQuery:
    @strawberry.field(extensions=requires(scopes.AUDIT_READ),
                      description="The audit trail of keys under the caller's organization, newest first.")
    async def audit_trail(self, info: Info, first: int | None = 50, after: str | None = None,
                          key_id: strawberry.ID | None = None, kind: AuditKind | None = None,
                          since: datetime | None = None, until: datetime | None = None) -> AuditEventConnection:
        limit = page_size(first)
        after_key = decode_cursor("audit", after, int)
        viewer = info.context.viewer
        page = await audit.read_events(
            info.context.state.databases.members, path_pattern=None if viewer.sees_all else viewer.path_pattern,
            first=limit, after_id=after_key[0] if after_key else None, key_id=key_id,
            kind=kind.value if kind else None, since=since, until=until)
        edges = [AuditEventEdge(cursor=encode_cursor("audit", e.id), node=_event(e)) for e in page.events]
        page_info = PageInfo(has_next_page=page.has_next_page, last=edges[-1] if edges else None,
                             cursor_of=lambda edge: edge.cursor)
        return AuditEventConnection(edges=edges, page_info=page_info, total_count=page.total_count)
