"""The one federated schema: the domains' types composed with the Query (and, when present, Mutation/Subscription)."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import strawberry.federation
from graphql import GraphQLError
from strawberry.extensions import ParserCache, SchemaExtension, ValidationCache
from strawberry.tools import merge_types


class GatewaySchema(strawberry.federation.Schema):
    """A federation schema whose every error gets a code (web.errors), on every path strawberry takes."""

    def process_errors(self, errors: list, execution_context: Any = None) -> None:
        # Strawberry calls this with the list it will answer with (parse, validation, execution and
        # extension failures alike): coding it in place covers paths no extension hook sees.
        # Unexpected errors are logged there, once, with the request id.
        from web.errors import with_codes

        errors[:] = with_codes(errors, getattr(execution_context, "context", None))


class KeepSyntaxErrorsParserCache(ParserCache):
    """strawberry's ParserCache, except that a syntax error is left to strawberry's own parse.

    Raised from this hook it would skip strawberry's error handling (and our codes); swallowed
    here, strawberry parses again inside it and answers BAD_USER_INPUT like any invalid query.
    """

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        try:
            ctx.graphql_document = self.cached_parse_document(ctx.query, **ctx.parse_options)
        except GraphQLError:
            pass
        yield


def _optional_root(module: str, name: str) -> type | None:
    try:
        imported = __import__(module, fromlist=[name])
    except ImportError as exc:
        if exc.name != module:  # the module exists but is broken: say so
            raise
        return None
    return getattr(imported, name, None)


def build_schema(*, extensions: Iterable[type[SchemaExtension] | Callable[[], SchemaExtension]] = (),
                 fast_completion: bool = True) -> GatewaySchema:
    """The served schema; `extensions` run before the built-in ones (e.g. operation limits).

    fast_completion=False leaves every object to graphql-core's own completion
    (the tests compare the two).
    """
    from schema import claims, contracts, members, recruitment
    from schema.introspection import IntrospectionScope
    from schema.audit import AuditQuery
    from schema.query import Query
    from schema.scalars import SCALAR_OVERRIDES
    from web.errors import ErrorCodes
    from web.metrics import OperationMetrics
    from web.tracing import OperationTracing

    mutation = _optional_root("schema.mutations", "Mutation")
    subscription = _optional_root("schema.subscriptions", "Subscription")
    from schema.fast_completion import FastCompletionExecutionContext

    return GatewaySchema(
        # auditTrail lives beside the audit trail's types (schema/audit.py).
        query=merge_types("Query", (Query, AuditQuery)),
        mutation=mutation,
        subscription=subscription,
        # Entities reachable only through _entities must still be in the schema.
        types=[members.Organization, members.Employer, members.Member, claims.Plan, claims.Enrollment, claims.Claim,
               contracts.BargainingContract, recruitment.RecruitmentEvent, recruitment.JobPosting,
               # The mutations' inputs are part of the contract even before schema.mutations exists.
               claims.EnrollMemberInput, claims.HospitalizationClaimInput, claims.AccidentClaimInput,
               claims.ReviewClaimInput, claims.MarkClaimPaidInput],
        scalar_overrides=SCALAR_OVERRIDES,
        execution_context_class=FastCompletionExecutionContext if fast_completion else None,
        extensions=[
            # Hooks exit in reverse order: these two first, so they see ErrorCodes' final codes and
            # the operation span encloses everything else.
            OperationTracing,
            OperationMetrics,
            ErrorCodes,
            *extensions,
            IntrospectionScope,
            lambda: KeepSyntaxErrorsParserCache(maxsize=256),
            lambda: ValidationCache(maxsize=256),
        ],
    )


def export_sdl() -> str:
    """The schema as SDL (what `_service { sdl }` serves)."""
    from strawberry.printer import print_schema

    return print_schema(build_schema())
