"""Static query cost, in the style of IBM's GraphQL cost directives (@cost, @listSize).

Computed from the document and the variables before anything runs, so a
caller learns the price of an operation without paying for its execution:

- a field returning an object costs 1 (plus what is selected under it);
  scalars, enums and __typename cost 0; connection plumbing (edges, PageInfo) is free;
- a field with a slicing argument (`first`, its value or the schema's default)
  is a connection: 1 + first × the cost of its selections;
- a list without one is assumed to hold ASSUMED_LIST_SIZES[Type.field]
  (@listSize(assumedSize)) or DEFAULT_LIST_SIZE items, each costing 1 plus its selections;
- each mutation field costs MUTATION_COST before its selections;
- introspection (__schema, __type) costs 1 flat: it is gated by scope, and its
  lists would otherwise price the standard introspection query out of reach.
Fragments, named and inline, are priced once each in dependency order.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    NullValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
)
from graphql.type.definition import GraphQLNamedType, GraphQLOutputType

from web.limits import fragment_definitions, fragment_order, select_operation

#: Arguments that bound how many items a field returns (@listSize(slicingArguments:)).
SLICING_ARGUMENTS = ("first",)
#: @listSize(assumedSize:) for lists without a slicing argument.
ASSUMED_LIST_SIZES: Mapping[str, int] = {
    "Query.plans": 10,
    "Query.claimStats": 100,
    "Organization.children": 10,
    "Member.enrollments": 10,
    "Plan.benefits": 10,
    "Claim.lines": 10,
    "RecruitmentEvent.employers": 10,
    "RecruitmentEvent.postings": 10,
}
DEFAULT_LIST_SIZE = 10
MUTATION_COST = 10
#: Size a slicing argument is taken to be when it has neither a value nor a default.
DEFAULT_SLICE = 50


def _is_plumbing(type_: GraphQLNamedType) -> bool:
    """Connection edges and page info carry no entity of their own."""
    return type_.name.endswith("Edge") or type_.name == "PageInfo"


def _is_list(type_: GraphQLOutputType) -> bool:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


def _default_int(argument: Any) -> int:
    """An Int argument's schema default; graphql-core 3.3 keeps an SDL default as a literal."""
    if isinstance(argument.default_value, int):
        return argument.default_value
    default = getattr(argument, "default", None)
    if default is not None:
        if isinstance(getattr(default, "value", None), int):
            return default.value
        if isinstance(getattr(default, "literal", None), IntValueNode):
            return int(default.literal.value)
    return DEFAULT_SLICE


class CostModel:
    """Prices operations against one schema."""

    def __init__(self, schema: GraphQLSchema, *, assumed_list_sizes: Mapping[str, int] = ASSUMED_LIST_SIZES,
                 default_list_size: int = DEFAULT_LIST_SIZE, mutation_cost: int = MUTATION_COST) -> None:
        self.schema = schema
        self.assumed_list_sizes = assumed_list_sizes
        self.default_list_size = default_list_size
        self.mutation_cost = mutation_cost

    def operation_cost(self, document: DocumentNode, *, variables: Mapping[str, Any] | None = None,
                       operation_name: str | None = None) -> int:
        """The cost of the operation a request runs (0 when there is none to run)."""
        operation = select_operation(document, operation_name)
        if operation is None:
            return 0
        root = self.schema.get_root_type(operation.operation)
        if root is None:
            return 0
        pricing = _Pricing(self, variables or {}, operation)
        fragments = fragment_definitions(document)
        for name in fragment_order(fragments):
            fragment = fragments[name]
            type_ = self.schema.get_type(fragment.type_condition.name.value)
            pricing.fragment_costs[name] = pricing.selection_cost(fragment.selection_set, type_)
        return pricing.selection_cost(operation.selection_set, root, mutation=operation.operation.value == "mutation")


class _Pricing:
    """One operation's pricing: the variables it runs with and its fragments' prices."""

    def __init__(self, model: CostModel, variables: Mapping[str, Any], operation: OperationDefinitionNode) -> None:
        self.model = model
        self.variables = variables
        self.variable_defaults = {
            d.variable.name.value: d.default_value for d in operation.variable_definitions or ()
        }
        self.fragment_costs: dict[str, int] = {}

    def selection_cost(self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType | None,
                       *, mutation: bool = False) -> int:
        if selection_set is None or parent is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field_cost(selection, parent, mutation=mutation)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                type_ = self.model.schema.get_type(condition.name.value) if condition else parent
                total += self.selection_cost(selection.selection_set, type_, mutation=mutation)
            else:
                total += self.fragment_costs.get(selection.name.value, 0)
        return total

    def field_cost(self, node: FieldNode, parent: GraphQLNamedType, *, mutation: bool) -> int:
        name = node.name.value
        if name.startswith("__"):
            return 0 if name == "__typename" else 1
        if not isinstance(parent, (GraphQLObjectType, GraphQLInterfaceType)):
            return 0
        field = parent.fields.get(name)
        if field is None:
            return 0  # validation reports it
        named = get_named_type(field.type)
        own = self.model.mutation_cost if mutation else 0
        if not isinstance(named, (GraphQLObjectType, GraphQLInterfaceType, GraphQLUnionType)):
            return own
        children = self.selection_cost(node.selection_set, named)
        item = 0 if _is_plumbing(named) else 1
        slice_size = self.slice_size(node, field)
        if slice_size is not None:
            return own + 1 + slice_size * children
        if _is_list(field.type):
            if parent.name.endswith("Connection"):
                return own + item + children  # edges: already multiplied by the connection's `first`
            return own + self.list_size(node, parent.name) * (item + children)
        return own + item + children

    def slice_size(self, node: FieldNode, field: Any) -> int | None:
        for argument_name in SLICING_ARGUMENTS:
            argument = field.args.get(argument_name)
            if argument is None:
                continue
            value = self.argument_value(node, argument_name)
            if not isinstance(value, int) or isinstance(value, bool):
                value = _default_int(argument)
            return max(value, 0)
        return None

    def list_size(self, node: FieldNode, parent_name: str) -> int:
        name = node.name.value
        if name == "_entities":
            # Federation's entity look-up returns one item per representation sent.
            representations = self.argument_value(node, "representations")
            if isinstance(representations, list):
                return len(representations)
        return self.model.assumed_list_sizes.get(f"{parent_name}.{name}", self.model.default_list_size)

    def argument_value(self, node: FieldNode, argument_name: str) -> Any:
        """An argument's literal or variable value; None when absent or not known statically."""
        for argument in node.arguments or ():
            if argument.name.value != argument_name:
                continue
            value = argument.value
            if isinstance(value, VariableNode):
                variable = value.name.value
                if variable in self.variables:
                    return self.variables[variable]
                value = self.variable_defaults.get(variable)
            if isinstance(value, IntValueNode):
                return int(value.value)
            if isinstance(value, ListValueNode):
                return list(value.values)
            if value is None or isinstance(value, NullValueNode):
                return None
            return None
        return None


def cost_extension(*, requested: int | None, limits: Any, currently_available: int | None) -> dict[str, Any]:
    """The `extensions.cost` object every response carries (Shopify's shape)."""
    return {
        "requestedQueryCost": requested,
        "maximumAvailable": limits.max_operation_cost,
        "throttleStatus": {
            "maximumAvailable": limits.rate_points,
            "currentlyAvailable": currently_available,
            "restoreRate": round(limits.restore_rate, 2),
        },
    }

