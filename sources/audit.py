"""The audit trail (gateway.audit_events): who read unmasked PII or medical data, and every mutation.

Resolvers note what they revealed with `note(...)` into the current request's
AuditLog (a context variable, so nothing is threaded through signatures); at
the end of the request the log becomes a few rows (one per kind and entity
type) handed to the AuditWriter, which writes whatever is pending in one
INSERT from a background task. Reads never wait for the audit. Rows carry ids
and field names only, never the values read.
"""
from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

import asyncpg

log = logging.getLogger("union_gateway.audit")

PII_READ = "PII_READ"
MEDICAL_READ = "MEDICAL_READ"
MUTATION = "MUTATION"
KINDS = (PII_READ, MEDICAL_READ, MUTATION)


@dataclass(frozen=True)
class AuditEvent:
    at: datetime
    key_id: str
    organization_id: str
    organization_path: str
    operation_name: str | None
    kind: str
    entity_type: str
    entity_ids: tuple[str, ...]
    fields: tuple[str, ...]
    id: int | None = None


@dataclass
class AuditLog:
    """What one request revealed or changed, collected while it runs."""

    key_id: str
    organization_id: str
    organization_path: str
    at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    operation_name: str | None = None
    # (kind, entity_type) -> entity ids in first-seen order, and the fields involved
    _ids: dict[tuple[str, str], dict[str, None]] = field(default_factory=dict)
    _fields: dict[tuple[str, str], dict[str, None]] = field(default_factory=dict)

    def note(self, *, kind: str, entity_type: str, entity_id: str | None, field_name: str) -> None:
        group = (kind, entity_type)
        if entity_id is not None:
            self._ids.setdefault(group, {})[str(entity_id)] = None
        self._fields.setdefault(group, {})[field_name] = None

    def events(self) -> list[AuditEvent]:
        return [
            AuditEvent(at=self.at, key_id=self.key_id, organization_id=self.organization_id,
                       organization_path=self.organization_path,
                       operation_name=self.operation_name, kind=kind, entity_type=entity_type,
                       entity_ids=tuple(self._ids.get((kind, entity_type), {})), fields=tuple(names))
            for (kind, entity_type), names in self._fields.items()
        ]


current_log: contextvars.ContextVar[AuditLog | None] = contextvars.ContextVar("audit_log", default=None)


def note(*, kind: str, entity_type: str, entity_id: str | None, field_name: str) -> None:
    """Record that this request revealed `field_name` of an entity (a no-op outside a request)."""
    audit_log = current_log.get()
    if audit_log is not None:
        audit_log.note(kind=kind, entity_type=entity_type, entity_id=entity_id, field_name=field_name)


class AuditWriter:
    """Writes submitted events in the background, everything pending in one INSERT."""

    def __init__(self, pool: asyncpg.Pool, *, delay: float = 0.05, max_pending: int = 100_000) -> None:
        self._pool = pool
        self._delay = delay
        self._max_pending = max_pending
        self._pending: list[AuditEvent] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def start(self) -> "AuditWriter":
        self._task = asyncio.create_task(self._run(), name="audit-writer")
        return self

    def submit(self, events: Sequence[AuditEvent]) -> None:
        """Queue events; returns at once."""
        if not events:
            return
        if len(self._pending) >= self._max_pending:
            log.error("audit queue full (%d events); the database is not taking them", len(self._pending))
        self._pending.extend(events)
        self._wake.set()

    async def flush(self) -> None:
        """Write everything submitted so far."""
        async with self._lock:
            batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                await insert_events(self._pool, batch)
            except (asyncpg.PostgresError, OSError, asyncio.TimeoutError):
                log.exception("could not write %d audit events; keeping them for the next attempt", len(batch))
                self._pending[:0] = batch
                raise

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(self._delay)  # gather the requests finishing together into one INSERT
            try:
                await self.flush()
            except (asyncpg.PostgresError, OSError, asyncio.TimeoutError):
                await asyncio.sleep(1.0)
                self._wake.set()

    async def aclose(self) -> None:
        """Stop the background task, writing what is pending first."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:
            await self.flush()
        except (asyncpg.PostgresError, OSError, asyncio.TimeoutError):
            pass  # already logged with the count lost


async def insert_events(conn: asyncpg.Connection | asyncpg.Pool, events: Sequence[AuditEvent]) -> None:
    """One INSERT for any number of events."""
    await conn.execute(
        """INSERT INTO gateway.audit_events
               (at, key_id, organization_id, organization_path, operation_name, kind, entity_type, entity_ids, fields)
           SELECT e.at, e.key_id, e.organization_id, e.organization_path, e.operation_name, e.kind, e.entity_type,
                  ARRAY(SELECT json_array_elements_text(e.entity_ids)), ARRAY(SELECT json_array_elements_text(e.fields))
           FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                       $8::json[], $9::json[])
                AS e(at, key_id, organization_id, organization_path, operation_name, kind, entity_type,
                     entity_ids, fields)""",
        [e.at for e in events], [e.key_id for e in events], [e.organization_id for e in events],
        [e.organization_path for e in events],
        [e.operation_name for e in events], [e.kind for e in events], [e.entity_type for e in events],
        [_json_list(e.entity_ids) for e in events], [_json_list(e.fields) for e in events],
    )


def _json_list(values: Sequence[str]) -> str:
    return json.dumps(list(values), ensure_ascii=False)


# --------------------------------------------------------------------------- reading the trail

@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    has_next_page: bool
    total_count: int


async def read_events(conn: asyncpg.Connection | asyncpg.Pool, *, path_pattern: str | None,
                      first: int, after_id: int | None = None, key_id: str | None = None,
                      kind: str | None = None, since: datetime | None = None,
                      until: datetime | None = None) -> AuditPage:
    """Newest first; `path_pattern` (LIKE, of organization paths) None means every organization."""
    where = """($1::text IS NULL OR organization_path LIKE $1) AND ($2::text IS NULL OR key_id = $2)
               AND ($3::text IS NULL OR kind = $3) AND ($4::timestamptz IS NULL OR at >= $4)
               AND ($5::timestamptz IS NULL OR at < $5)"""
    args = [path_pattern, key_id, kind, since, until]
    rows = await conn.fetch(
        f"""SELECT * FROM gateway.audit_events WHERE {where} AND ($6::bigint IS NULL OR id < $6)
            ORDER BY id DESC LIMIT $7""",
        *args, after_id, first + 1,
    )
    total = await conn.fetchval(f"SELECT count(*) FROM gateway.audit_events WHERE {where}", *args)
    events = [
        AuditEvent(id=r["id"], at=r["at"], key_id=r["key_id"], organization_id=r["organization_id"],
                   organization_path=r["organization_path"],
                   operation_name=r["operation_name"], kind=r["kind"], entity_type=r["entity_type"],
                   entity_ids=tuple(r["entity_ids"]), fields=tuple(r["fields"]))
        for r in rows[:first]
    ]
    return AuditPage(events=events, has_next_page=len(rows) > first, total_count=total)
