"""A cheaper completion of object values whose fields are all at hand.

graphql-core completes every field through a general machinery (a resolve
info, a path, awaitable checks, error handling at each step): about 3-8 µs
per field, most of a list page's cost once its links are prefetched
(schema/prefetch.py). For an object type and selection this execution
context compiles, once per request, a plan of plain getters and serializers,
and completes each object with it. Anything out of the ordinary (an
awaitable, an exception, a null in a non-null field, an abstract type,
@defer) abandons the plan for that object, and graphql-core completes it the
ordinary way, with its errors and paths: the plan only ever produces what
graphql-core would have produced for an object whose fields all succeed.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import partial
from datetime import date, datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    get_named_type,
)
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, is_awaitable  # faster than inspect's, on the hot path
from strawberry.permission import PermissionExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import Info

from schema.permissions import RequireScope
from strawberry.schema.schema_converter import GraphQLCoreConverter

Complete = Callable[[Any], Any]


class Fallback(Exception):
    """This object needs graphql-core's ordinary completion."""


_NO_PLAN = object()


def _abandon(value: Any) -> None:
    if inspect.iscoroutine(value):
        value.close()  # never awaited: say so to no one
    raise Fallback


class FastCompletionExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """strawberry's execution context, completing objects by compiled plans where it can."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plans: dict[tuple[GraphQLObjectType, int], Any] = {}

    def complete_object_value(self, return_type, field_details_list, info, path, result,  # type: ignore[override]
                              position_context):
        plan = self._plan(return_type, field_details_list)
        if plan is not None:
            try:
                return plan(result)
            except Fallback:
                pass  # completed below, the ordinary way
        return super().complete_object_value(return_type, field_details_list, info, path, result, position_context)

    def build_response(self, *args: Any, **kwargs: Any) -> Any:
        # The plans' closures hold resolve infos, which hold this context: a reference
        # cycle only the cyclic collector would free, with the request's context in it.
        self._plans.clear()
        return super().build_response(*args, **kwargs)

    # ------------------------------------------------------------------ compiling

    def _plan(self, return_type: GraphQLObjectType, field_details_list: Any) -> Complete | None:
        key = (return_type, id(field_details_list))
        found = self._plans.get(key, _NO_PLAN)
        if found is _NO_PLAN:
            self._plans[key] = None  # a recursive selection compiles to the ordinary path
            try:
                found = self._compile(return_type, field_details_list)
            except Exception:  # noqa: BLE001 - anything unusual: the ordinary path decides
                found = None
            self._plans[key] = found
        return found

    def _compile(self, return_type: GraphQLObjectType, field_details_list: Any) -> Complete | None:
        grouped, new_defer_usages, *_ = self.collect_subfields(return_type, field_details_list)
        if new_defer_usages:
            return None
        steps: list[tuple[str, Callable[[Any], Any], Complete]] = []
        for response_key, sub_details in grouped.items():
            node = sub_details[0].node
            name = node.name.value
            if name == "__typename":
                typename = return_type.name
                steps.append((response_key, lambda row, t=typename: t, _identity))
                continue
            field_def = return_type.fields.get(name)
            if field_def is None or any(d.defer_usage is not None for d in sub_details):
                return None
            complete = self._completer(field_def.type, sub_details)
            if complete is None:
                return None
            steps.append((response_key, self._getter(return_type, field_def, sub_details, response_key), complete))

        is_type_of = return_type.is_type_of

        def complete_object(row: Any) -> dict[str, Any]:
            # Our types' is_type_of only looks at the row's class; graphql-core's path reports a mismatch.
            if is_type_of is not None and is_type_of(row, None) is not True:
                raise Fallback
            out = {}
            for response_key, get, complete in steps:
                value = get(row)
                if value.__class__ not in _NEVER_AWAITABLE and is_awaitable(value):
                    _abandon(value)
                out[response_key] = complete(value)
            return out

        return complete_object

    def _getter(self, parent: GraphQLObjectType, field_def: Any, sub_details: Any, response_key: str) -> Callable:
        definition = (field_def.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
        if definition is not None and definition.base_resolver is None and not definition.extensions:
            return attrgetter(definition.python_name)  # a plain attribute: what strawberry would read
        node = sub_details[0].node
        args = (get_argument_values(field_def, node, self.variable_values, sub_details[0].fragment_variable_values,
                                    self.hide_suggestions)
                if field_def.args or node.arguments else {})
        info = self.build_resolve_info(field_def, [d.node for d in sub_details], parent,
                                       Path(None, response_key, parent.name))
        direct = self._direct_call(definition, info, field_def, args)
        if direct is not None:
            def get_direct(row: Any) -> Any:
                try:
                    return direct(row)
                except Exception:  # noqa: BLE001 - the ordinary path reports it, with its path
                    raise Fallback from None

            return get_direct
        resolve = field_def.resolve or self.field_resolver

        def get(row: Any) -> Any:
            try:
                return resolve(row, info, **args)
            except Exception:  # noqa: BLE001 - the ordinary path reports it, with its path
                raise Fallback from None

        return get

    def _direct_call(self, definition: Any, info: Any, field_def: Any, args: dict[str, Any]) -> Callable | None:
        """Our own resolver as a function of the row, called as strawberry would minus its per-call
        wrapping (arguments and info bound once); None if unsure.

        strawberry converts arguments and runs field extensions on every call
        (about 5 µs). For a plain sync resolver taking (self, info, scalars...)
        whose only extension is a scope check, the scope is checked here once
        (the viewer does not change within a request) and arguments are
        already the coerced scalars strawberry would pass.
        """
        resolver = definition.base_resolver if definition is not None else None
        if resolver is None or resolver.is_async or resolver.self_parameter is None:
            return None
        if resolver.root_parameter is not None or resolver.parent_parameter is not None:
            return None
        python_names = {argument.python_name for argument in resolver.arguments}
        if any(name not in python_names or not isinstance(get_named_type(field_def.args[name].type), GraphQLScalarType)
               for name in args):
            return None  # renamed or structured arguments: strawberry converts them
        for extension in definition.extensions:
            if not isinstance(extension, PermissionExtension) or not all(
                    isinstance(p, RequireScope) for p in extension.permissions):
                return None
            if not all(p.has_permission(None, info) for p in extension.permissions):
                return None  # FORBIDDEN comes from the ordinary path, with its error
        bound = dict(args)  # the same for every row of this plan: bound once
        if resolver.info_parameter is not None:
            bound[resolver.info_parameter.name] = Info(_raw_info=info, _field=definition)
        return partial(resolver.wrapped_func, **bound)

    def _completer(self, type_: GraphQLOutputType, sub_details: Any) -> Complete | None:
        leaf = _leaf_completer(type_)
        if leaf is not None:
            return leaf
        if isinstance(type_, GraphQLNonNull):
            inner = self._completer(type_.of_type, sub_details)
            if inner is None:
                return None

            def non_null(value: Any) -> Any:
                if value is None:
                    raise Fallback
                return inner(value)

            return non_null
        inner = self._nullable_completer(type_, sub_details)
        if inner is None:
            return None
        return lambda value: None if value is None else inner(value)

    def _nullable_completer(self, type_: GraphQLOutputType, sub_details: Any) -> Complete | None:
        if isinstance(type_, GraphQLList):
            item = self._completer(type_.of_type, sub_details)
            if item is None:
                return None

            def complete_list(value: Any) -> list[Any]:
                if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                    raise Fallback
                out = []
                for element in value:
                    if is_awaitable(element):
                        _abandon(element)
                    out.append(item(element))
                return out

            return complete_list
        if isinstance(type_, (GraphQLScalarType, GraphQLEnumType)):
            serialize = type_.serialize

            def leaf(value: Any) -> Any:
                serialized = serialize(value)
                if serialized is None:
                    raise Fallback
                return serialized

            return leaf
        if isinstance(type_, GraphQLObjectType):
            plan = self._plan(type_, sub_details)
            if plan is None:
                return None
            return lambda value: plan(value)  # noqa: PLW0108 - bound late: recursive plans
        return None  # interfaces and unions: the ordinary path resolves the type


def _identity(value: Any) -> Any:
    return value


#: Classes of the values rows hold, which is_awaitable need not inspect (it costs several isinstance checks).
_NEVER_AWAITABLE = frozenset({str, int, bool, float, type(None), Decimal, date, datetime, list, tuple, dict})


def _leaf_completer(type_: GraphQLOutputType) -> Complete | None:
    """A scalar or enum field, nullable or not, as one function: most of a page's fields are leaves.

    The same checks as the composed completers (a null where none may be, or
    a value its type cannot serialize, falls back), in one call instead of
    three or four. An enum's serialized name is remembered per member (enum
    members are singletons); other scalars are serialized every time
    (Decimal('1.0') equals Decimal('1.00') but is written differently).
    """
    non_null = isinstance(type_, GraphQLNonNull)
    named = type_.of_type if non_null else type_
    if not isinstance(named, (GraphQLScalarType, GraphQLEnumType)):
        return None
    serialize = named.serialize
    if isinstance(named, GraphQLEnumType):
        names: dict[Any, Any] = {}

        def serialize_enum(value: Any, _uncached: Callable[[Any], Any] = serialize) -> Any:
            try:
                return names[value]
            except KeyError:
                pass
            except TypeError:  # unhashable: not an enum member anyway
                return _uncached(value)
            serialized = names[value] = _uncached(value)
            return serialized

        serialize = serialize_enum

    if non_null:
        def non_null_leaf(value: Any) -> Any:
            if value is None:
                raise Fallback
            serialized = serialize(value)
            if serialized is None:
                raise Fallback
            return serialized

        return non_null_leaf

    def nullable_leaf(value: Any) -> Any:
        if value is None:
            return None
        serialized = serialize(value)
        if serialized is None:
            raise Fallback
        return serialized

    return nullable_leaf
