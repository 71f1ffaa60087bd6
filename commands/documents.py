"""The `documents` commands' bodies: load a trusted-documents manifest, list what is registered."""
from __future__ import annotations

from pathlib import Path

import asyncpg
from rich.console import Console
from rich.table import Table

from sources.trusted_documents import LoadSummary, list_documents, load_manifest, read_manifest


async def load(url: str, *, path: Path) -> LoadSummary:
    """Register every `{hash: document}` of the manifest at `path`, all or nothing (InvalidDocument)."""
    manifest = read_manifest(path)
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            return await load_manifest(conn, manifest)
    finally:
        await conn.close()


async def show_list(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        documents = await list_documents(conn)
    finally:
        await conn.close()
    table = Table("documentId", "operations", "origin", "registered")
    for d in documents:
        table.add_row(f"sha256:{d.hash}", d.name or "(anonymous)", d.origin,
                      f"{d.created_at:%Y-%m-%d %H:%M}" if d.created_at else "")
    Console(width=200).print(table)
