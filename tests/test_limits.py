"""Operation limits measured on real documents against the contract's schema."""
from __future__ import annotations

import time

import pytest
from graphql import parse

from sources.settings import Settings
from web.errors import QueryTooComplex
from web.limits import (
    OperationLimits, check_document, check_source, fragment_definitions, fragment_order, measure_document,
)

LIMITS = OperationLimits(max_depth=5, max_aliases=3, max_root_fields=4, max_tokens=200, max_document_bytes=2_000)


def refused(text: str, limits: OperationLimits = LIMITS, operation_name: str | None = None) -> dict:
    with pytest.raises(QueryTooComplex) as caught:
        check_source(text, limits)
        check_document(measure_document(parse(text), text=text, operation_name=operation_name), limits)
    return caught.value.extensions


def admitted(text: str, limits: OperationLimits = LIMITS, operation_name: str | None = None) -> None:
    check_source(text, limits)
    check_document(measure_document(parse(text), text=text, operation_name=operation_name), limits)


def test_depth_counts_fields_through_fragments():
    admitted("{ member(id: 1) { organization { parent { parent { name } } } } }")  # 5 deep
    extensions = refused("""
        query { member(id: 1) { ...M } }
        fragment M on Member { organization { ...O } }
        fragment O on Organization { parent { parent { parent { name } } } }""")
    assert extensions == {"code": "QUERY_TOO_COMPLEX", "limit": "maxDepth", "maximum": 5, "measured": 6}


def test_inline_fragments_do_not_add_depth():
    admitted("{ member(id: 1) { ... on Member { organization { ... { parent { parent { name } } } } } } }")


def test_deep_nesting_is_refused_by_the_lexer_before_parsing():
    text = "{" + "a{" * 10_000 + "b" + "}" * 10_000 + "}"
    started = time.perf_counter()
    extensions = refused(text, OperationLimits(max_document_bytes=10**6, max_tokens=10**6))
    assert extensions["limit"] == "maxDepth"
    assert extensions["measured"] == 10_001
    assert time.perf_counter() - started < 2


def test_aliases_are_counted_across_the_document():
    admitted("{ a: viewer { keyId } b: viewer { keyId } c: viewer { keyId } }")
    extensions = refused("""{ a: viewer { keyId } ...F }
        fragment F on Query { b: viewer { k: keyId } c: plans { code } }""", operation_name=None)
    assert extensions["limit"] == "maxAliases"
    assert extensions["measured"] == 4


def test_root_fields_include_fragments_and_ignore_typename():
    admitted("{ __typename viewer { keyId } plans { code } a: plans { code } b: viewer { name } }")
    extensions = refused("{ viewer { keyId } plans { code } ...F }  fragment F on Query { a: viewer { name } "
                         "b: plans { code } c: viewer { name } }",
                         OperationLimits(max_aliases=10, max_root_fields=4))
    assert extensions == {"code": "QUERY_TOO_COMPLEX", "limit": "maxRootFields", "maximum": 4, "measured": 5}


def test_only_the_operation_run_is_measured():
    text = "query Small { viewer { keyId } } query Deep { member(id: 1) { organization { parent { parent { parent { name } } } } } }"
    admitted(text, operation_name="Small")
    assert refused(text, operation_name="Deep")["limit"] == "maxDepth"


def test_tokens_and_bytes():
    many = "{ " + " ".join(f"f{i}: viewer {{ keyId }}" for i in range(60)) + " }"
    extensions = refused(many, OperationLimits(max_aliases=100, max_tokens=200))
    assert extensions["limit"] == "maxTokens" and extensions["measured"] > 200
    big = "{ viewer { keyId } }" + " " * 3_000
    extensions = refused(big)
    assert extensions == {"code": "QUERY_TOO_COMPLEX", "limit": "maxDocumentBytes", "maximum": 2_000,
                          "measured": len(big)}
    # Bytes, not characters: Chinese text counts three bytes a character.
    chinese = '{ members(filter: {nameContains: "' + "张" * 700 + '"}) { totalCount } }'
    assert refused(chinese)["measured"] == len(chinese.encode())


def test_fragment_cycles_and_long_chains_terminate():
    cycle = "{ ...A } fragment A on Query { ...B viewer { keyId } } fragment B on Query { ...A plans { code } }"
    admitted(cycle, OperationLimits(max_tokens=1000))
    chain = "{ ...F0 } " + " ".join(f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(3000)) \
        + " fragment F3000 on Query { viewer { keyId } }"
    document = parse(chain)
    order = fragment_order(fragment_definitions(document))
    assert order[0] == "F3000" and order[-1] == "F0"
    measure = measure_document(document, text=None, operation_name=None)
    assert (measure.depth, measure.root_fields) == (2, 1)


def test_doubling_fragments_are_measured_in_linear_time():
    text = "{ ...F0 } " + " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(60)) \
        + " fragment F60 on Query { viewer { keyId } }"
    started = time.perf_counter()
    measure = measure_document(parse(text), text=None, operation_name=None)
    assert time.perf_counter() - started < 1
    assert measure.root_fields == 2**60


def test_key_overrides_replace_only_what_they_set():
    defaults = OperationLimits.from_settings(Settings(_env_file=None))
    assert defaults.max_depth == 15 and defaults.max_cost == 10_000
    limits = defaults.with_overrides({"max_depth": 3, "max_cost": None, "rate_window_seconds": 10,
                                      "trusted_documents_only": True})
    assert (limits.max_depth, limits.max_cost, limits.rate_window_seconds, limits.trusted_documents_only) \
        == (3, 10_000, 10.0, True)
    assert OperationLimits(max_cost=50_000, rate_points=20_000).max_operation_cost == 20_000
