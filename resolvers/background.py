"""The settlement path's per-process resources: insurance client, claim-update listener, pending-claim retry."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from resolvers.claims_service import decide_pending_claims
from sources.claim_events import ClaimUpdates
from sources.database import Databases

if TYPE_CHECKING:
    from gateway import AppState

log = logging.getLogger(__name__)

#: AppState.extras key of the process's ClaimUpdates.
CLAIM_UPDATES = "claim_updates"
PENDING_BATCH = 100


async def retry_pending_claims(*, databases: Databases, insurance: Any, interval: float,
                               batch: int = PENDING_BATCH) -> None:
    """Forever: decide every PENDING_REVIEW claim the insurance system now answers for, then wait `interval`."""
    while True:
        try:
            while await decide_pending_claims(databases=databases, insurance=insurance, limit=batch) == batch:
                pass  # a full batch: there may be more
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the loop must outlive one bad round; the next one retries
            log.exception("deciding pending claims failed; retrying in %.1f s", interval)
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def settlement_resources(state: "AppState") -> AsyncIterator[None]:
    """Open in the app's lifespan, after the pools: what the mutations, subscriptions and retry need."""
    settings = state.runtime.settings
    own_client = None
    if state.insurance is None and settings.insurance_url:
        from sources.insurance import client_from_settings

        state.insurance = own_client = client_from_settings(settings)
    updates = await ClaimUpdates(state.runtime.urls["claims"]).start()
    state.extras[CLAIM_UPDATES] = updates
    retry = None
    if settings.pending_retry_seconds > 0:
        retry = asyncio.create_task(
            retry_pending_claims(databases=state.databases, insurance=state.insurance,
                                 interval=settings.pending_retry_seconds),
            name="pending-claims-retry")
    try:
        yield
    finally:
        if retry is not None:
            retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retry
        await updates.aclose()
        state.extras.pop(CLAIM_UPDATES, None)
        if own_client is not None:
            await own_client.aclose()
            state.insurance = None
