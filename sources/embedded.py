"""The embedded PostgreSQL (pgserver) used when no database URL is set."""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def start_embedded(home: Path) -> tuple[str, object]:
    """Start (or reuse) the PostgreSQL kept under `home`; returns (url, server).

    pgserver ships its own PostgreSQL binaries, so a fresh machine needs no
    server package; the data directory is kept between runs, and the server
    is stopped when the process exits (pgserver's cleanup_mode="stop").
    """
    import pgserver

    home.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(home / "pgdata", cleanup_mode="stop")
    url = server.get_uri()
    log.info("embedded PostgreSQL at %s", home / "pgdata")
    return url, server
