"""Operation limits: document size, tokens, depth, aliases and root fields, per API key.

Strawberry's QueryDepthLimiter, MaxAliasesLimiter and MaxTokensLimiter hold one
limit for the whole schema, fixed when it is built, and the first two add
validation rules, which defeats ValidationCache unless built once. Our limits
differ per key (a row of gateway.api_keys may raise or lower any of them), so
instead a document is measured once per distinct text (cached), before
validation, and the measures are compared with the caller's limits: one pass
over the parsed document per request at most, and none for a repeated one.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Generic, TypeVar

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLSyntaxError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Source,
)
from graphql.language import Lexer, TokenKind

from sources.settings import Settings
from web.errors import QueryTooComplex

#: Columns of gateway.api_keys (migration 004) that override a default; NULL keeps the default.
KEY_LIMIT_COLUMNS = (
    "max_depth", "max_aliases", "max_root_fields", "max_tokens", "max_cost",
    "rate_points", "rate_window_seconds", "trusted_documents_only",
)

#: Input values ({...} and [...]) and argument lists nest too, so the bracket
#: nesting a document may reach before parsing is the depth limit plus this.
VALUE_NESTING_ALLOWANCE = 8


def _default(name: str) -> Any:
    """The settings' default, so the numbers live in one place (sources/settings.py)."""
    return Settings.model_fields[name].default


@dataclass(frozen=True)
class OperationLimits:
    """What one key may ask of one operation, and its rate of cost points."""

    max_depth: int = _default("max_depth")
    max_aliases: int = _default("max_aliases")
    max_root_fields: int = _default("max_root_fields")
    max_tokens: int = _default("max_tokens")
    max_document_bytes: int = _default("max_document_bytes")
    max_cost: int = _default("max_cost")
    rate_points: int = _default("rate_points")
    rate_window_seconds: float = _default("rate_window_seconds")
    trusted_documents_only: bool = False

    @classmethod
    def from_settings(cls, settings: Any) -> "OperationLimits":
        """The defaults every key gets (settings fields of the same names)."""
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls) if hasattr(settings, f.name)})

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> "OperationLimits":
        """These limits with a key's non-null columns in place of the defaults."""
        if not overrides:
            return self
        known = {f.name for f in fields(self)}
        changes = {name: value for name, value in overrides.items() if name in known and value is not None}
        if "rate_window_seconds" in changes:
            changes["rate_window_seconds"] = float(changes["rate_window_seconds"])
        return replace(self, **changes) if changes else self

    @property
    def max_operation_cost(self) -> int:
        """The most one operation may cost: never more than the whole bucket holds."""
        return min(self.max_cost, self.rate_points)

    @property
    def restore_rate(self) -> float:
        """Cost points restored per second."""
        return self.rate_points / self.rate_window_seconds


def too_complex(*, limit: str, maximum: int, measured: int, message: str) -> QueryTooComplex:
    """A QUERY_TOO_COMPLEX error naming the limit, its value and what was measured."""
    return QueryTooComplex(message, limit=limit, maximum=maximum, measured=measured)


# --------------------------------------------------------------------------- caching

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """A small thread-safe LRU map; keys are query texts, so the size is bounded."""

    def __init__(self, maxsize: int = 512) -> None:
        self._data: OrderedDict[K, V] = OrderedDict()
        self._maxsize = maxsize
        self._lock = threading.Lock()

    def get_or_compute(self, key: K, compute: Callable[[], V]) -> V:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        value = compute()
        with self._lock:
            self._data[key] = value
            if len(self._data) > self._maxsize:
                self._data.popitem(last=False)
        return value


# --------------------------------------------------------------------------- the text, before parsing

@dataclass(frozen=True)
class SourceMeasure:
    """What the lexer sees: tokens (comments excluded) and the deepest bracket nesting."""

    tokens: int
    nesting: int


_OPENERS = frozenset({TokenKind.BRACE_L, TokenKind.BRACKET_L, TokenKind.PAREN_L})
_CLOSERS = frozenset({TokenKind.BRACE_R, TokenKind.BRACKET_R, TokenKind.PAREN_R})
_source_measures: LruCache[str, SourceMeasure] = LruCache()


def _lex(text: str) -> SourceMeasure:
    lexer = Lexer(Source(text))
    tokens = nesting = deepest = 0
    try:
        token = lexer.advance()
        while token.kind != TokenKind.EOF:
            tokens += 1
            if token.kind in _OPENERS:
                nesting += 1
                deepest = max(deepest, nesting)
            elif token.kind in _CLOSERS:
                nesting -= 1
            token = lexer.advance()
    except GraphQLSyntaxError:
        # The parser reports the syntax error itself, with its position.
        pass
    return SourceMeasure(tokens=tokens, nesting=deepest)


def measure_source(text: str) -> SourceMeasure:
    """Tokens and bracket nesting of `text` (cached by text)."""
    return _source_measures.get_or_compute(text, lambda: _lex(text))


def check_source(text: str, limits: OperationLimits) -> None:
    """Refuse a document too big, too long or nested too deep, before the parser sees it."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_document_bytes:
        raise too_complex(limit="maxDocumentBytes", maximum=limits.max_document_bytes, measured=size,
                          message=f"The document is {size} bytes; the limit is {limits.max_document_bytes}.")
    measure = measure_source(text)
    # The parser recurses once per bracket; refusing deep nesting here keeps it shallow,
    # and a field can be no deeper than the braces around it.
    nesting_limit = limits.max_depth + VALUE_NESTING_ALLOWANCE
    if measure.nesting > nesting_limit:
        raise too_complex(limit="maxDepth", maximum=limits.max_depth, measured=measure.nesting,
                          message=f"The document nests {measure.nesting} levels deep; "
                                  f"the depth limit is {limits.max_depth}.")
    if measure.tokens > limits.max_tokens:
        raise too_complex(limit="maxTokens", maximum=limits.max_tokens, measured=measure.tokens,
                          message=f"The document has {measure.tokens} tokens; the limit is {limits.max_tokens}.")


# --------------------------------------------------------------------------- the parsed document

def fragment_definitions(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    """The document's fragments by name (the first of a duplicated name; validation rejects those)."""
    found: dict[str, FragmentDefinitionNode] = {}
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            found.setdefault(definition.name.value, definition)
    return found


def _spreads(selection_set: SelectionSetNode | None, into: list[str]) -> list[str]:
    if selection_set is None:
        return into
    for selection in selection_set.selections:
        if isinstance(selection, FragmentSpreadNode):
            into.append(selection.name.value)
        else:
            _spreads(selection.selection_set, into)
    return into


def fragment_order(fragments: Mapping[str, FragmentDefinitionNode]) -> list[str]:
    """Fragment names so that each comes after every fragment it spreads.

    Iterative, so that a chain of thousands of spreads cannot exhaust the
    stack; a spread that closes a cycle (validation rejects those, but limits
    run before validation) is ignored, so a cycle's fragments still get an order.
    """
    spreads = {name: [s for s in _spreads(f.selection_set, []) if s in fragments] for name, f in fragments.items()}
    order: list[str] = []
    state: dict[str, int] = {}  # 1: on the path, 2: done
    for root in fragments:
        if root in state:
            continue
        stack: list[tuple[str, Iterable[str]]] = [(root, iter(spreads[root]))]
        state[root] = 1
        while stack:
            name, children = stack[-1]
            child = next(children, None)  # type: ignore[call-overload]
            if child is None:
                stack.pop()
                state[name] = 2
                order.append(name)
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(spreads[child])))
    return order


def select_operation(document: DocumentNode, operation_name: str | None) -> OperationDefinitionNode | None:
    """The operation a request runs: the named one, or the only one."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name is not None and o.name.value == operation_name), None)


@dataclass(frozen=True)
class DocumentMeasure:
    """Depth and root fields of the operation run; aliases of the whole document."""

    depth: int
    root_fields: int
    aliases: int


def _depth(selection_set: SelectionSetNode | None, fragment_depth: Mapping[str, int]) -> int:
    if selection_set is None:
        return 0
    deepest = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            depth = 1 + _depth(selection.selection_set, fragment_depth)
        elif isinstance(selection, InlineFragmentNode):
            depth = _depth(selection.selection_set, fragment_depth)
        else:
            depth = fragment_depth.get(selection.name.value, 0)
        deepest = max(deepest, depth)
    return deepest


def _root_fields(selection_set: SelectionSetNode, fragment_fields: Mapping[str, int]) -> int:
    count = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            count += selection.name.value != "__typename"
        elif isinstance(selection, InlineFragmentNode):
            count += _root_fields(selection.selection_set, fragment_fields)
        else:
            count += fragment_fields.get(selection.name.value, 0)
    return count


def _aliases(selection_set: SelectionSetNode | None) -> int:
    if selection_set is None:
        return 0
    aliases = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            aliases += (selection.alias is not None) + _aliases(selection.selection_set)
        elif isinstance(selection, InlineFragmentNode):
            aliases += _aliases(selection.selection_set)
    return aliases


def _measure(document: DocumentNode, operation_name: str | None) -> DocumentMeasure:
    fragments = fragment_definitions(document)
    fragment_depth: dict[str, int] = {}
    fragment_fields: dict[str, int] = {}
    # Memoised per fragment in dependency order: a fragment spread many times
    # is measured once, so `...A ...A` chains cannot make this exponential.
    for name in fragment_order(fragments):
        fragment_depth[name] = _depth(fragments[name].selection_set, fragment_depth)
        fragment_fields[name] = _root_fields(fragments[name].selection_set, fragment_fields)
    # Every alias written counts, as strawberry's MaxAliasesLimiter counts them.
    aliases = sum(_aliases(getattr(d, "selection_set", None)) for d in document.definitions)
    operation = select_operation(document, operation_name)
    if operation is None:
        return DocumentMeasure(depth=0, root_fields=0, aliases=aliases)
    return DocumentMeasure(
        depth=_depth(operation.selection_set, fragment_depth),
        root_fields=_root_fields(operation.selection_set, fragment_fields),
        aliases=aliases,
    )


_document_measures: LruCache[tuple[str, str | None], DocumentMeasure] = LruCache()


def measure_document(document: DocumentNode, *, text: str | None, operation_name: str | None) -> DocumentMeasure:
    """The document's measures, cached by its text when there is one."""
    if text is None:
        return _measure(document, operation_name)
    return _document_measures.get_or_compute((text, operation_name), lambda: _measure(document, operation_name))


def check_document(measure: DocumentMeasure, limits: OperationLimits) -> None:
    """Refuse an operation over the key's depth, alias or root-field limit."""
    if measure.depth > limits.max_depth:
        raise too_complex(limit="maxDepth", maximum=limits.max_depth, measured=measure.depth,
                          message=f"The operation is {measure.depth} fields deep; the limit is {limits.max_depth}.")
    if measure.aliases > limits.max_aliases:
        raise too_complex(limit="maxAliases", maximum=limits.max_aliases, measured=measure.aliases,
                          message=f"The document uses {measure.aliases} aliases; the limit is {limits.max_aliases}.")
    if measure.root_fields > limits.max_root_fields:
        raise too_complex(limit="maxRootFields", maximum=limits.max_root_fields, measured=measure.root_fields,
                          message=f"The operation asks for {measure.root_fields} root fields; "
                                  f"the limit is {limits.max_root_fields}.")
