"""The operation guard: trusted documents, limits, cost, rate limit and audit around every operation.

One schema extension, in the order a request meets them:
  on_operation  the document: from documentId / APQ, refused text for a
                trusted-documents-only key, size, tokens and nesting (lexer only);
  on_parse      (after parsing) depth, aliases and root fields;
  on_execute    (after validation) static cost against the key's maximum, then
                the cost in points from the key's bucket (429 + Retry-After when empty);
  afterwards    validation's "Did you mean" hints removed for keys without the
                introspection scope, the request's audit rows handed to the writer,
                and `extensions.cost` on the response.
Process-wide resources live in a Safeguards object in AppState.extras.
"""
from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    StringValueNode,
    ValueNode,
    VariableNode,
)
from strawberry.extensions import SchemaExtension

from sources import audit
from sources.rate_limit import RateLimiter, open_rate_limiter
from sources.trusted_documents import (
    MANIFEST, InvalidDocument, TrustedDocuments, parse_document_id, parse_hash,
)
from web.cost import CostModel, cost_extension
from web.errors import BadUserInput, Forbidden, NotFound, RateLimited, GatewayError
from web.hygiene import PAYLOAD_STATE_KEY
from web.limits import (
    KEY_LIMIT_COLUMNS, OperationLimits, check_document, check_source, measure_document, select_operation,
    too_complex,
)

SAFEGUARDS_KEY = "safeguards"
INTROSPECTION_SCOPE = "introspection"

_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


class KeyLimits:
    """Per-key limit overrides from gateway.api_keys, cached like the keys themselves."""

    def __init__(self, pool: asyncpg.Pool, defaults: OperationLimits, ttl: float) -> None:
        self._pool = pool
        self._defaults = defaults
        self._ttl = ttl
        self._cache: dict[str, tuple[float, OperationLimits]] = {}

    async def for_key(self, key_id: str) -> OperationLimits:
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        row = await self._pool.fetchrow(
            f"SELECT {', '.join(KEY_LIMIT_COLUMNS)} FROM gateway.api_keys WHERE id = $1", key_id)
        limits = self._defaults.with_overrides(dict(row) if row is not None else None)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key_id] = (now, limits)
        return limits


@dataclass
class Safeguards:
    """What the guard needs from the process: defaults, limiter, documents, audit writer."""

    defaults: OperationLimits
    limiter: RateLimiter
    documents: TrustedDocuments
    audit: audit.AuditWriter
    key_limits: KeyLimits
    _cost_models: dict[int, CostModel] = field(default_factory=dict)

    @classmethod
    def open(cls, *, settings: Any, pool: asyncpg.Pool) -> "Safeguards":
        """Start the audit writer and connect the limiter (Redis when settings.redis_url is set)."""
        defaults = OperationLimits.from_settings(settings)
        return cls(
            defaults=defaults,
            limiter=open_rate_limiter(getattr(settings, "redis_url", None),
                                      shared_path=getattr(settings, "rate_limit_file", None)),
            documents=TrustedDocuments(pool),
            audit=audit.AuditWriter(pool).start(),
            key_limits=KeyLimits(pool, defaults, ttl=getattr(settings, "api_key_cache_seconds", 2.0)),
        )

    async def aclose(self) -> None:
        await self.audit.aclose()
        await self.limiter.aclose()

    def cost_model(self, schema: GraphQLSchema) -> CostModel:
        model = self._cost_models.get(id(schema))
        if model is None:
            model = self._cost_models[id(schema)] = CostModel(schema)
        return model


def safeguards_of(context: Any) -> Safeguards | None:
    state = getattr(context, "state", None)
    extras = getattr(state, "extras", None) or {}
    return extras.get(SAFEGUARDS_KEY)


def _payload_of(context: Any) -> Mapping[str, Any]:
    request = getattr(context, "request", None)
    scope_state = getattr(request, "scope", {}).get("state", {}) if request is not None else {}
    return scope_state.get(PAYLOAD_STATE_KEY) or {}


def without_suggestions(error: GraphQLError) -> GraphQLError:
    """The error without graphql-core's "Did you mean ...?" hints, which reveal the schema."""
    message = _SUGGESTION.sub("", error.message)
    if message == error.message:
        return error
    return GraphQLError(message, nodes=error.nodes, source=error.source, positions=error.positions,
                        path=error.path, original_error=error.original_error, extensions=error.extensions)


class OperationGuard(SchemaExtension):
    """Trusted documents, operation limits, cost, rate limit and audit for one operation."""

    def __init__(self, *, execution_context: Any = None) -> None:
        if execution_context is not None:
            self.execution_context = execution_context
        self.safeguards: Safeguards | None = None
        self.viewer: Any = None
        self.limits: OperationLimits | None = None
        self.requested: int | None = None
        self.available: int | None = None

    # ------------------------------------------------------------------ hooks

    async def on_operation(self) -> AsyncIterator[None]:
        ctx = self.execution_context
        self.viewer = getattr(ctx.context, "viewer", None)
        self.safeguards = safeguards_of(ctx.context)
        if self.viewer is None or self.safeguards is None:
            yield  # no key (the view answers 401) or no guard configured
            return
        self.limits = await self.safeguards.key_limits.for_key(self.viewer.key_id)
        await self._resolve_document()
        if ctx.query is not None:
            check_source(ctx.query, self.limits)
        log = audit.AuditLog(key_id=self.viewer.key_id, organization_id=self.viewer.organization_id,
                             organization_path=self.viewer.organization_path)
        token = audit.current_log.set(log)
        try:
            yield
        finally:
            audit.current_log.reset(token)
            log.operation_name = ctx.operation_name
            self.safeguards.audit.submit(log.events())
            self._hide_suggestions()

    def on_parse(self) -> Any:
        yield
        ctx = self.execution_context
        if self.limits is None or ctx.graphql_document is None:
            return
        measure = measure_document(ctx.graphql_document, text=ctx.query, operation_name=ctx.operation_name)
        check_document(measure, self.limits)

    async def on_execute(self) -> AsyncIterator[None]:
        ctx = self.execution_context
        if self.limits is None or self.safeguards is None or ctx.graphql_document is None:
            yield
            return
        limits = self.limits
        model = self.safeguards.cost_model(ctx.schema._schema)
        self.requested = model.operation_cost(ctx.graphql_document, variables=ctx.variables,
                                              operation_name=ctx.operation_name)
        if self.requested > limits.max_operation_cost:
            raise too_complex(limit="maxCost", maximum=limits.max_operation_cost, measured=self.requested,
                              message=f"The operation costs {self.requested} points; one operation may cost "
                                      f"at most {limits.max_operation_cost}. Ask for fewer items (`first`).")
        decision = await self.safeguards.limiter.acquire(
            bucket=self.viewer.key_id, cost=max(self.requested, 1),
            points=limits.rate_points, window=limits.rate_window_seconds)
        self.available = decision.available
        if not decision.allowed:
            retry_after = decision.retry_after_header
            response = getattr(ctx.context, "response", None)
            if response is not None and hasattr(response, "status_code") and hasattr(response, "headers"):
                response.status_code = 429
                response.headers["Retry-After"] = retry_after
            raise RateLimited(
                f"Rate limit: this operation costs {max(self.requested, 1)} points and {decision.available} are "
                f"available (the bucket refills at {limits.restore_rate:g} points a second). "
                f"Retry after {retry_after} s.",
                retryAfter=int(retry_after))
        operation = select_operation(ctx.graphql_document, ctx.operation_name)
        mutation = operation is not None and operation.operation.value == "mutation"
        if mutation:
            _note_mutations(operation, ctx.variables or {})
        yield
        if mutation:
            _note_mutation_results(operation, getattr(ctx.result, "data", None))

    async def get_results(self) -> dict[str, Any]:
        if self.limits is None or self.safeguards is None:
            return {}
        if self.available is None:
            decision = await self.safeguards.limiter.acquire(
                bucket=self.viewer.key_id, cost=0, points=self.limits.rate_points,
                window=self.limits.rate_window_seconds)
            self.available = decision.available
        return {"cost": cost_extension(requested=self.requested, limits=self.limits,
                                       currently_available=self.available)}

    # ------------------------------------------------------------------ parts

    async def _resolve_document(self) -> None:
        """Fill in the query from a documentId or an APQ hash; refuse text from a trusted-only key."""
        ctx = self.execution_context
        assert self.safeguards is not None and self.limits is not None
        payload = _payload_of(ctx.context)
        document_id = payload.get("documentId")
        persisted = (ctx.operation_extensions or {}).get("persistedQuery")
        trusted_only = self.limits.trusted_documents_only
        if trusted_only and ctx.query is not None:
            raise Forbidden("This API key may only run trusted documents: send "
                            '{"documentId": "sha256:<hash>"} of a registered operation, not the query text.')
        if document_id is not None:
            if ctx.query is not None:
                raise BadUserInput("Send either `query` or `documentId`, not both.")
            try:
                hash_ = parse_document_id(document_id)
            except ValueError as exc:
                raise BadUserInput(str(exc)) from None
            ctx.query = await self._trusted_text(hash_, trusted_only=trusted_only)
            return
        if isinstance(persisted, Mapping):
            try:
                hash_ = parse_hash(persisted.get("sha256Hash"))
            except ValueError as exc:
                raise BadUserInput(str(exc)) from None
            if ctx.query is not None:
                # APQ's second step: register the text under its hash (first-party keys only,
                # trusted-only keys were refused above).
                try:
                    await self.safeguards.documents.register_apq(hash_=hash_, document=ctx.query)
                except InvalidDocument as exc:
                    raise BadUserInput(str(exc)) from None
                return
            if trusted_only:
                ctx.query = await self._trusted_text(hash_, trusted_only=True)
                return
            found = await self.safeguards.documents.get(hash_)
            if found is None:
                # The message is APQ's protocol: clients resend with the text on seeing it.
                raise NotFound("PersistedQueryNotFound")
            ctx.query = found.document

    async def _trusted_text(self, hash_: str, *, trusted_only: bool) -> str:
        assert self.safeguards is not None
        found = await self.safeguards.documents.get(hash_)
        if found is None or (trusted_only and found.origin != MANIFEST):
            raise BadUserInput(f"No trusted document sha256:{hash_} is registered; "
                               "an operator registers them with `union-gateway documents load`.")
        return found.document

    def _hide_suggestions(self) -> None:
        if self.viewer is None or self.viewer.has(INTROSPECTION_SCOPE):
            return
        result = self.execution_context.result
        if result is not None and result.errors:
            # New error objects: the originals may sit in ValidationCache, shared with other keys.
            result.errors = [without_suggestions(e) for e in result.errors]


# --------------------------------------------------------------------------- mutations in the audit trail

def _ids(value: ValueNode | Any, variables: Mapping[str, Any], into: list[str], key: str = "") -> None:
    """Ids in an argument: strings under a name ending in 'id' or 'Id', literal or from variables."""
    if isinstance(value, VariableNode):
        value = variables.get(value.name.value)
    if isinstance(value, ObjectValueNode):
        for item in value.fields:
            _ids(item.value, variables, into, item.name.value)
    elif isinstance(value, ListValueNode):
        for item in value.values:
            _ids(item, variables, into, key)
    elif isinstance(value, StringValueNode):
        if key.lower().endswith("id"):
            into.append(value.value)
    elif isinstance(value, Mapping):
        for name, item in value.items():
            _ids(item, variables, into, str(name))
    elif isinstance(value, list):
        for item in value:
            _ids(item, variables, into, key)
    elif isinstance(value, (str, int)) and not isinstance(value, bool) and key.lower().endswith("id"):
        into.append(str(value))


def _note_mutations(operation: OperationDefinitionNode, variables: Mapping[str, Any]) -> None:
    for selection in operation.selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.name.value.startswith("__"):
            continue
        ids: list[str] = []
        for argument in selection.arguments or ():
            _ids(argument.value, variables, ids, argument.name.value)
        name = selection.name.value
        if not ids:
            audit.note(kind=audit.MUTATION, entity_type=name, entity_id=None, field_name=name)
        for entity_id in ids:
            audit.note(kind=audit.MUTATION, entity_type=name, entity_id=entity_id, field_name=name)


def _note_mutation_results(operation: OperationDefinitionNode, data: Mapping[str, Any] | None) -> None:
    """The ids of what mutations returned (a new claim's id), when the operation selected them."""
    if not data:
        return
    for selection in operation.selection_set.selections:
        if not isinstance(selection, FieldNode):
            continue
        returned = data.get((selection.alias or selection.name).value)
        if isinstance(returned, Mapping) and isinstance(returned.get("id"), str):
            name = selection.name.value
            audit.note(kind=audit.MUTATION, entity_type=name, entity_id=returned["id"], field_name=name)


__all__ = ["OperationGuard", "Safeguards", "SAFEGUARDS_KEY", "GatewayError", "without_suggestions"]
