"""Trusted documents (gateway.trusted_documents): operations known by the SHA-256 of their text.

A client sends `{"documentId": "sha256:<hex>"}` instead of the text, or
Apollo's `extensions.persistedQuery.sha256Hash`. Operators register documents
from a manifest (`union-gateway documents load`): those are the only ones a
trusted-documents-only key may run. First-party clients may also register
their own through Apollo's APQ handshake; those are a cache, not a vetting.
A hash names one text forever, so a found document is cached for good.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg
from graphql import GraphQLSyntaxError, OperationDefinitionNode, parse

MANIFEST = "manifest"
APQ = "apq"

_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class TrustedDocument:
    hash: str
    document: str
    origin: str
    name: str | None = None
    created_at: datetime | None = None


class InvalidDocument(ValueError):
    """A manifest entry or registration that cannot be accepted; the message says why."""


def document_hash(document: str) -> str:
    """The hex SHA-256 of a document's UTF-8 text: its id."""
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


def parse_document_id(value: object) -> str:
    """The hex hash in `sha256:<hex>`; ValueError with a clear message otherwise."""
    if not isinstance(value, str) or not value.startswith("sha256:") or not _HEX.fullmatch(value[7:]):
        raise ValueError('documentId must look like "sha256:" followed by 64 lowercase hex digits.')
    return value[7:]


def parse_hash(value: object) -> str:
    """A bare hex SHA-256 (APQ's sha256Hash); ValueError otherwise."""
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise ValueError("persistedQuery.sha256Hash must be 64 lowercase hex digits.")
    return value


def operation_names(document: str) -> str | None:
    """The document's operation names, comma-separated (None if anonymous)."""
    parsed = parse(document, no_location=True)
    names = [d.name.value for d in parsed.definitions if isinstance(d, OperationDefinitionNode) and d.name]
    return ", ".join(names) or None


def _row(row: asyncpg.Record) -> TrustedDocument:
    return TrustedDocument(hash=row["hash"], document=row["document"], origin=row["origin"], name=row["name"],
                           created_at=row["created_at"])


class TrustedDocuments:
    """Look-ups and registrations against one pool, with a process-wide cache of found documents."""

    def __init__(self, pool: asyncpg.Pool, *, cache_size: int = 4096) -> None:
        self._pool = pool
        self._cache: dict[str, TrustedDocument] = {}
        self._cache_size = cache_size

    async def get(self, hash_: str) -> TrustedDocument | None:
        """The document with this hash, or None."""
        cached = self._cache.get(hash_)
        # An APQ document may since have been loaded from a manifest: look again.
        if cached is not None and cached.origin == MANIFEST:
            return cached
        row = await self._pool.fetchrow("SELECT * FROM gateway.trusted_documents WHERE hash = $1", hash_)
        if row is None:
            return None
        found = _row(row)
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[hash_] = found
        return found

    async def register_apq(self, *, hash_: str, document: str) -> TrustedDocument:
        """Register a first-party client's document under the hash it claims, after checking it."""
        if document_hash(document) != hash_:
            raise InvalidDocument("provided sha does not match query")
        try:
            name = operation_names(document)
        except GraphQLSyntaxError:
            name = None  # the request reports the syntax error when it runs
        await self._pool.execute(
            """INSERT INTO gateway.trusted_documents (hash, document, origin, name) VALUES ($1, $2, 'apq', $3)
               ON CONFLICT (hash) DO NOTHING""",
            hash_, document, name,
        )
        return TrustedDocument(hash=hash_, document=document, origin=APQ, name=name)


@dataclass(frozen=True)
class LoadSummary:
    added: int
    unchanged: int


def read_manifest(path: Path) -> dict[str, str]:
    """`{hash: document}` from a manifest file; also Apollo's persisted-query manifest format."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidDocument(f"{path}: not a UTF-8 JSON file ({exc})") from exc
    if isinstance(data, dict) and data.get("format") == "apollo-persisted-query-manifest":
        operations = data.get("operations")
        if not isinstance(operations, list):
            raise InvalidDocument(f"{path}: 'operations' must be a list")
        return {str(op.get("id")): op.get("body") for op in operations if isinstance(op, dict)}
    if not isinstance(data, dict):
        raise InvalidDocument(f"{path}: expected a JSON object of {{hash: document}}")
    return data


def check_manifest(manifest: Mapping[str, object]) -> list[tuple[str, str, str | None]]:
    """(hash, document, names) for every entry; InvalidDocument listing every bad entry."""
    problems: list[str] = []
    entries: list[tuple[str, str, str | None]] = []
    for key, document in manifest.items():
        hash_ = key[7:] if key.startswith("sha256:") else key
        if not _HEX.fullmatch(hash_):
            problems.append(f"{key}: not a hex SHA-256")
            continue
        if not isinstance(document, str):
            problems.append(f"{key}: the document must be a string")
            continue
        if document_hash(document) != hash_:
            problems.append(f"{key}: the hash is not the SHA-256 of its document")
            continue
        try:
            names = operation_names(document)
        except GraphQLSyntaxError as exc:
            problems.append(f"{key}: {exc.message}")
            continue
        entries.append((hash_, document, names))
    if problems:
        raise InvalidDocument("\n".join(problems))
    return entries


async def load_manifest(conn: asyncpg.Connection | asyncpg.Pool, manifest: Mapping[str, object]) -> LoadSummary:
    """Register every entry as an operator's document, all or nothing."""
    entries = check_manifest(manifest)
    hashes = [e[0] for e in entries]
    # An entry already known through APQ is promoted: the operator has now vetted it.
    rows = await conn.fetch(
        """INSERT INTO gateway.trusted_documents (hash, document, origin, name)
           SELECT * FROM unnest($1::text[], $2::text[], array_fill('manifest'::text, ARRAY[cardinality($1::text[])]),
                                $3::text[])
           ON CONFLICT (hash) DO UPDATE SET origin = 'manifest', name = EXCLUDED.name
               WHERE gateway.trusted_documents.origin <> 'manifest'
           RETURNING hash""",
        hashes, [e[1] for e in entries], [e[2] for e in entries],
    )
    return LoadSummary(added=len(rows), unchanged=len(entries) - len(rows))


async def list_documents(conn: asyncpg.Connection | asyncpg.Pool) -> list[TrustedDocument]:
    """Every registered document, newest first."""
    return [_row(r) for r in await conn.fetch(
        "SELECT * FROM gateway.trusted_documents ORDER BY created_at DESC, hash")]
