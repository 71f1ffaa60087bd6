"""API keys on requests: read the key from the headers (or a WebSocket's connection_init), find its Viewer.

The key itself is never logged: failures are logged by reason only.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sources.api_keys import KeyAuthenticator
from sources.viewer import Viewer, load_viewer

if TYPE_CHECKING:
    from gateway import AppState

log = logging.getLogger("union_gateway.auth")

#: Where AppState keeps the process's Authenticator.
STATE_KEY = "authenticator"


def key_from_authorization(value: str | None) -> str | None:
    """The key in an `Authorization: Bearer <key>` value, else None."""
    if not value:
        return None
    scheme, _, credentials = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


def key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The key of `Authorization: Bearer <key>` or `X-API-Key: <key>`."""
    return key_from_authorization(headers.get("authorization")) or (headers.get("x-api-key") or "").strip() or None


def key_from_connection_params(params: Mapping[str, Any] | None) -> str | None:
    """The key a browser puts in connection_init: {"Authorization": "Bearer <key>"} (or X-API-Key)."""
    if not isinstance(params, Mapping):
        return None
    lowered = {str(k).lower(): v for k, v in params.items() if isinstance(v, str)}
    return key_from_headers(lowered)


class Authenticator:
    """Key → Viewer, with the key's positive cache and a Viewer cache of the same lifetime."""

    def __init__(self, state: "AppState") -> None:
        settings = state.runtime.settings
        self._pool = state.databases.members
        self._ttl = settings.api_key_cache_seconds
        self._keys = KeyAuthenticator(self._pool, ttl=self._ttl)
        self._viewers: dict[str, tuple[float, Viewer]] = {}

    async def viewer(self, presented: str | None) -> Viewer | None:
        """The Viewer of a live key, or None (missing, malformed, unknown, revoked or expired)."""
        key = await self._keys.authenticate(presented)
        if key is None:
            log.info("request refused: %s API key", "no" if not presented else "invalid, revoked or expired")
            return None
        now = time.monotonic()
        cached = self._viewers.get(key.id)
        if cached is not None and now - cached[0] < self._ttl and cached[1].scopes == frozenset(key.scopes):
            return cached[1]
        viewer = await load_viewer(self._pool, key=key)
        if viewer is None:
            log.warning("request refused: key %s is bound to a missing organization", key.id)
            return None
        if len(self._viewers) > 10_000:
            self._viewers.clear()
        self._viewers[key.id] = (now, viewer)
        return viewer


def authenticator(state: "AppState") -> Authenticator:
    """The process's Authenticator (made in the lifespan; made here on first use otherwise)."""
    found = state.extras.get(STATE_KEY)
    if found is None:
        found = state.extras[STATE_KEY] = Authenticator(state)
    return found
