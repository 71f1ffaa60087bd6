"""Static cost of operations against the contract's schema (IBM cost spec style)."""
from __future__ import annotations

from pathlib import Path

import pytest
from graphql import build_ast_schema, parse

from web.cost import CostModel, cost_extension
from web.limits import OperationLimits

CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "contract" / "schema.graphql"


@pytest.fixture(scope="module")
def model() -> CostModel:
    text = CONTRACT.read_text(encoding="utf-8")
    # The contract's federation directives are declared by the subgraph library, not in the file.
    text = "directive @key(fields: String!) repeatable on OBJECT | INTERFACE\n" + text
    return CostModel(build_ast_schema(parse(text)))


def cost(model: CostModel, text: str, variables: dict | None = None, operation_name: str | None = None) -> int:
    return model.operation_cost(parse(text), variables=variables, operation_name=operation_name)


def test_scalars_cost_nothing_and_objects_one(model):
    assert cost(model, "{ __typename }") == 0
    assert cost(model, "{ viewer { keyId name scopes } }") == 1
    assert cost(model, "{ member(id: 1) { id name gender organization { name } employer { name } } }") == 3


def test_a_connection_multiplies_its_nodes_by_first(model):
    assert cost(model, "{ members(first: 10) { totalCount edges { cursor node { id name } } pageInfo { hasNextPage } } }") \
        == 1 + 10 * 1
    # The schema's defaults: members 50, Member.claims 20.
    assert cost(model, "{ members { edges { node { id } } } }") == 1 + 50
    assert cost(model, "{ member(id: 1) { claims { edges { node { id } } } } }") == 1 + (1 + 20 * 1)
    # A variable's value, else the variable's default, else the field's.
    text = "query Q($n: Int = 7) { members(first: $n) { edges { node { id } } } }"
    assert cost(model, text, {"n": 3}) == 4
    assert cost(model, text) == 8
    assert cost(model, "query Q($n: Int) { members(first: $n) { edges { node { id } } } }", {"n": None}) == 51


def test_lists_without_a_slice_get_their_assumed_size(model):
    assert cost(model, "{ member(id: 1) { enrollments { id plan { code } } } }") == 1 + 10 * (1 + 1)
    assert cost(model, "{ claim(id: 1) { lines { amount } } }") == 1 + 10 * 1
    assert cost(model, "{ organization(id: 1) { children { children { id } } } }") == 1 + 10 * (1 + 10)


def test_fragments_named_and_inline_are_priced_like_inline_selections(model):
    inline = "{ members(first: 5) { edges { node { id organization { name } } } } }"
    named = """{ members(first: 5) { ...Page } }
        fragment Page on MemberConnection { edges { node { ...M } } }
        fragment M on Member { id ... on Member { organization { name } } }"""
    assert cost(model, inline) == cost(model, named) == 1 + 5 * 2


def test_first_100_nested_five_levels_is_priced_far_over_any_budget(model):
    text = "{ " + "members(first: 100) { edges { node { claims(first: 100) { edges { node { member { " \
        + "claims(first: 100) { edges { node { member { " * 3 + "claims(first: 100) { edges { node { id"
    text += " }" * (text.count("{") - text.count("}"))
    assert cost(model, text) > 100**5


def test_mutations_cost_ten_plus_what_they_return(model):
    text = 'mutation { reviewClaim(input: {claimId: "c1", approve: true}) { id lines { amount } } }'
    assert cost(model, text) == 10 + 1 + 10


def test_cycles_and_unknown_fields_do_not_break_pricing(model):
    assert cost(model, "{ ...A } fragment A on Query { ...B viewer { keyId } } fragment B on Query { ...A }") == 1
    assert cost(model, "{ nope { deeper } viewer { keyId } }") == 1
    assert cost(model, "query A { viewer { keyId } } query B { plans { code } }", operation_name="B") == 10
    assert cost(model, "query A { viewer { keyId } } query B { plans { code } }") == 0  # no operation chosen


def test_introspection_is_flat(model):
    assert cost(model, "{ __schema { types { name fields { name args { name } } } } }") == 1


def test_cost_extension_has_shopifys_shape():
    limits = OperationLimits(max_cost=1_000, rate_points=2_000, rate_window_seconds=40)
    assert cost_extension(requested=12, limits=limits, currently_available=1_988) == {
        "requestedQueryCost": 12,
        "maximumAvailable": 1_000,
        "throttleStatus": {"maximumAvailable": 2_000, "currentlyAvailable": 1_988, "restoreRate": 50.0},
    }
