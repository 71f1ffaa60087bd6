"""The one federated schema: the domains' types composed with the Query (and, when present, Mutation/Subscription)."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import strawberry.federation
from strawberry.extensions import ParserCache, SchemaExtension, ValidationCache
from strawberry.tools import merge_types


class GatewaySchema(strawberry.federation.Schema):
    """Errors are logged once, by web.errors.ErrorCodes, with the request id and without secrets."""

    def process_errors(self, errors: list, execution_context: Any = None) -> None:
        return None


def _optional_root(module: str, name: str) -> type | None:
    try:
        imported = __import__(module, fromlist=[name])
    except ImportError as exc:
        if exc.name != module:  # the module exists but is broken: say so
            raise
        return None
    return getattr(imported, name, None)


def build_schema(*, extensions: Iterable[type[SchemaExtension] | Callable[[], SchemaExtension]] = ()) -> GatewaySchema:
    """The served schema; `extensions` run before the built-in ones (e.g. operation limits)."""
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
        extensions=[
            # Hooks exit in reverse order: these two first, so they see ErrorCodes' final codes and
            # the operation span encloses everything else.
            OperationTracing,
            OperationMetrics,
            ErrorCodes,
            *extensions,
            IntrospectionScope,
            lambda: ParserCache(maxsize=256),
            lambda: ValidationCache(maxsize=256),
        ],
    )


def export_sdl() -> str:
    """The schema as SDL (what `_service { sdl }` serves)."""
    from strawberry.printer import print_schema

    return print_schema(build_schema())
