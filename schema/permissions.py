"""Scopes enforced in one place: a permission on root fields and on links that cross into another domain."""
from __future__ import annotations

from typing import Any

from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.types import Info

from web.errors import FORBIDDEN


class RequireScope(BasePermission):
    """The API key must hold `scope`; otherwise the field is a FORBIDDEN error."""

    error_extensions = {"code": FORBIDDEN}

    def __init__(self, scope: str) -> None:
        self.scope = scope
        self.message = f"This API key lacks the '{scope}' scope."

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        viewer = info.context.viewer
        return viewer is not None and viewer.has(self.scope)


def requires(scope: str) -> list[FieldExtension]:
    """Field extensions for `strawberry.field(extensions=requires(...))`."""
    return [PermissionExtension(permissions=[RequireScope(scope)], use_directives=False)]
