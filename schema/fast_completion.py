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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from keyword import iskeyword
from datetime import date, datetime
from decimal import Decimal
from operator import attrgetter
from types import CoroutineType, GeneratorType
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
from graphql.type.scalars import serialize_boolean, serialize_id, serialize_int, serialize_string
from graphql.pyutils import Path, is_awaitable  # faster than inspect's, on the hot path
from strawberry.permission import PermissionExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import Info

from schema.permissions import RequireScope
from schema.scalars import serialize_date
from strawberry.schema.schema_converter import GraphQLCoreConverter

Complete = Callable[[Any], Any]


class Fallback(Exception):
    """This object needs graphql-core's ordinary completion."""


_NO_PLAN = object()

#: Objects a compiled plan handed back to graphql-core, by type: errors and FORBIDDEN
#: fields do; a hot shape that does is slow. Tests assert the staff list keeps it at 0.
fallbacks: Counter[str] = Counter()


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
                fallbacks[return_type.name] += 1  # completed below, the ordinary way
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
        fields: list[_Field] = []
        for response_key, sub_details in grouped.items():
            node = sub_details[0].node
            name = node.name.value
            if name == "__typename":
                fields.append(_Field(response_key, constant=return_type.name))
                continue
            field_def = return_type.fields.get(name)
            if field_def is None or any(d.defer_usage is not None for d in sub_details):
                return None
            complete = self._completer(field_def.type, sub_details)
            if complete is None:
                return None
            get = self._getter(return_type, field_def, sub_details, response_key)
            attribute = get if isinstance(get, str) else None
            fields.append(_Field(response_key, attribute=attribute, get=None if attribute else get, complete=complete,
                                 fast=_fast_serialization(field_def.type)))
        return _generated(fields, return_type.is_type_of)

    def _getter(self, parent: GraphQLObjectType, field_def: Any, sub_details: Any,
                response_key: str) -> Callable | str:
        """How a row gives this field's value: an attribute's name (read inline), or a function of the row."""
        definition = (field_def.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
        if definition is not None and definition.base_resolver is None and not definition.extensions:
            name = definition.python_name  # a plain attribute: what strawberry would read
            return name if name.isidentifier() and not iskeyword(name) else attrgetter(name)
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
                    if element.__class__ not in _NEVER_AWAITABLE:
                        if is_awaitable(element):
                            _abandon(element)
                        _learn_never_awaitable(element.__class__)
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


@dataclass(frozen=True)
class _Field:
    """One response key of a compiled object: how to get its value and how to complete it."""

    response_key: str
    constant: str | None = None  # __typename
    attribute: str | None = None  # read inline as row.<attribute>
    get: Callable[[Any], Any] | None = None  # else: a function of the row
    complete: Complete | None = None
    fast: tuple[tuple[str, str], ...] = ()  # (condition on `v`, the completed value then), tried in order


def _generated(fields: list[_Field], is_type_of: Callable[..., Any] | None) -> Complete:
    """One object's completion as a generated Python function.

    A loop over (getter, completer) pairs paid, for each field, a tuple
    unpacking, a call to read the attribute, a call to complete it and one
    to serialize it: most of the time the staff list (W2) spent completing.
    Generated code reads each attribute inline, and a string, id, boolean or
    int that serializes to itself, and an int id, are written inline (graphql-core's own rules).
    The code depends only on the selection's shape: it is generated and
    compiled once per shape (_factory), and each request only binds it to
    its own getters and completers.
    """
    shape = (is_type_of is not None,
             tuple((f.response_key, f.constant, f.attribute, f.get is not None, f.fast) for f in fields))
    bound = [is_type_of] if is_type_of is not None else []
    for field in fields:
        if field.constant is None:
            bound += [field.get, field.complete] if field.get is not None else [field.complete]
    return _factory(shape)(*bound)


@lru_cache(maxsize=1024)  # bounded: arbitrary queries make arbitrarily many shapes
def _factory(shape: tuple) -> Callable[..., Complete]:
    checks_type, fields = shape
    parameters = ["is_type_of"] if checks_type else []
    body = ["  def complete_object(row):", "   try:"]
    if checks_type:
        # Our types' is_type_of only looks at the row's class; graphql-core's path reports a mismatch.
        body.append("    if is_type_of(row, None) is not True: raise Fallback")
    out = []
    for i, (response_key, constant, attribute, has_get, fast) in enumerate(fields):
        if constant is not None:
            out.append(f"{response_key!r}: {constant!r}")
            continue
        if has_get:
            parameters.append(f"get_{i}")
            body.append(f"    v = get_{i}(row)")
        else:
            body.append(f"    v = row.{attribute}")
        parameters.append(f"complete_{i}")
        branch = "if"
        for condition, value in fast:
            body.append(f"    {branch} {condition}: s_{i} = {value}")
            branch = "elif"
        body.append(f"    {branch} v.__class__ in NA: s_{i} = complete_{i}(v)")
        body.append(f"    else: s_{i} = checked(v, complete_{i})")
        out.append(f"{response_key!r}: s_{i}")
    body.append("    return {" + ", ".join(out) + "}")
    # A row without an attribute its type declares: graphql-core reports it at the field.
    body.append("   except AttributeError: raise Fallback from None")
    body.append("  return complete_object")
    source = f"def factory({', '.join(parameters)}):\n" + "\n".join(body)
    namespace: dict[str, Any] = {"Fallback": Fallback, "NA": _NEVER_AWAITABLE, "checked": _checked, "date": date}
    # Our own source, from names the schema defines (response keys and attribute names are identifiers).
    exec(compile(source, "<fast completion>", "exec"), namespace)  # noqa: S102
    return namespace["factory"]


def _checked(value: Any, complete: Complete) -> Any:
    """complete(value), unless value is an awaitable: then graphql-core completes the object."""
    if is_awaitable(value):
        _abandon(value)
    _learn_never_awaitable(value.__class__)
    return complete(value)


def _learn_never_awaitable(cls: type) -> None:
    """Remember a class (a row's, a connection's) whose instances are never awaitable.

    Python awaits through the type (its __await__), and coroutines and
    generators are the only others graphql-core's is_awaitable accepts, so the
    answer holds for every instance; the set grows to the classes rows and
    resolvers return, and each object's value then costs one set look-up
    instead of is_awaitable's several checks.
    """
    if not issubclass(cls, (CoroutineType, GeneratorType)) and not hasattr(cls, "__await__"):
        _NEVER_AWAITABLE.add(cls)


#: What graphql-core's serializers return for the classes rows hold, written inline (ints only within 32 bits).
_FAST_SERIALIZATION: dict[Callable[[Any], Any], tuple[tuple[str, str], ...]] = {
    serialize_string: (("v.__class__ is str", "v"),),
    serialize_id: (("v.__class__ is str", "v"), ("v.__class__ is int", "str(v)")),
    serialize_boolean: (("v.__class__ is bool", "v"),),
    serialize_int: (("(v.__class__ is int and -2147483648 <= v <= 2147483647)", "v"),),
    serialize_date: (("v.__class__ is date", "v.isoformat()"),),  # as serialize_date, without its call
}


def _fast_serialization(type_: GraphQLOutputType) -> tuple[tuple[str, str], ...]:
    named = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    if isinstance(named, GraphQLScalarType) and not isinstance(named, GraphQLEnumType):
        return _FAST_SERIALIZATION.get(named.serialize, ())
    return ()


#: Classes whose instances is_awaitable need not inspect (it costs several isinstance checks): the values
#: rows hold, and the classes of rows and resolvers' results as they are met (_learn_never_awaitable).
_NEVER_AWAITABLE: set[type] = {str, int, bool, float, type(None), Decimal, date, datetime, list, tuple, dict}


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
