"""Introspection (__schema, __type) and federation's _service need the `introspection` scope.

Checked on the parsed document before execution, not as a validation rule:
validation results are cached per query text, and the answer here depends
on the key.
"""
from __future__ import annotations

from collections.abc import Iterator

from graphql import (
    DocumentNode, ExecutionResult, FieldNode, FragmentDefinitionNode, FragmentSpreadNode, GraphQLError,
    InlineFragmentNode, OperationDefinitionNode, SelectionSetNode,
)
from strawberry.extensions import SchemaExtension

from schema.scopes import INTROSPECTION
from web.errors import FORBIDDEN

GUARDED = frozenset({"__schema", "__type", "_service"})


def _root_fields(selection_set: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode],
                 seen: set[str]) -> Iterator[FieldNode]:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _root_fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            seen.add(selection.name.value)
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                yield from _root_fields(fragment.selection_set, fragments, seen)


def guarded_fields(document: DocumentNode) -> list[FieldNode]:
    """Root-level selections of __schema, __type or _service in any operation of the document."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    found = []
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            found += [f for f in _root_fields(definition.selection_set, fragments, set()) if f.name.value in GUARDED]
    return found


class IntrospectionScope(SchemaExtension):
    """FORBIDDEN for introspection or _service without the `introspection` scope."""

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        viewer = getattr(ctx.context, "viewer", None)
        document = ctx.graphql_document
        if document is not None and (viewer is None or not viewer.has(INTROSPECTION)):
            fields = guarded_fields(document)
            if fields:
                # A result set before execution makes strawberry skip executing.
                ctx.result = ExecutionResult(data=None, errors=[GraphQLError(
                    f"Introspection and _service need the '{INTROSPECTION}' scope.", nodes=fields,
                    extensions={"code": FORBIDDEN})])
        yield
