"""claimUpdated over graphql-transport-ws, fed by the process's LISTEN connection (sources/claim_events.py)."""
from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from schema import scopes
from schema.claims import Claim
from schema.permissions import requires
from sources.claims import ClaimRow
from resolvers.background import CLAIM_UPDATES
from web.errors import UpstreamUnavailable


@strawberry.type
class Subscription:
    @strawberry.subscription(
        extensions=requires(scopes.CLAIMS_READ),
        description="Every status change of a claim (of one member, or all visible to the caller), "
                    "across all gateway replicas.")
    async def claim_updated(self, info: Info, member_id: strawberry.ID | None = None) -> AsyncGenerator[Claim, None]:
        updates = info.context.state.extras.get(CLAIM_UPDATES)
        if updates is None:
            raise UpstreamUnavailable("Claim updates are not available on this replica.")
        async with updates.subscribe() as queue:
            while True:
                claim_id = await queue.get()
                # Fresh loaders per event: the claim must be read as it is now, and
                # through the caller's visibility (an out-of-scope claim loads as None).
                row: ClaimRow | None = await info.context.renew_loaders().claim_by_id.load(str(claim_id))
                if row is None or (member_id is not None and row.member_id != str(member_id)):
                    continue
                yield row  # type: ignore[misc]
