"""The caller, as its API key identifies it (objects are sources.viewer.Viewer)."""
from __future__ import annotations

import strawberry
from strawberry.types import Info

from schema.members import Organization


@strawberry.type(name="Viewer", description="The caller, as its API key identifies it.")
class ViewerType:
    @strawberry.field
    def key_id(self) -> strawberry.ID:
        return strawberry.ID(self.key_id)

    @strawberry.field
    def name(self) -> str:
        return self.name

    @strawberry.field
    def scopes(self) -> list[str]:
        return sorted(self.scopes)

    @strawberry.field(description="The organization the key is bound to; it sees everything under it.")
    async def organization(self, info: Info) -> Organization:
        return await info.context.loaders.organization_by_id.load(self.organization_id)
