"""Errors with a code (OPERATOR.md's list), and the one place that gives every GraphQL error one.

Code anywhere raises a GatewayError subclass; graphql-core copies its
`extensions` onto the GraphQL error. The ErrorCodes extension then makes sure
every error in a response carries a code, and turns anything unexpected into
INTERNAL with a generic message and the request id: no SQL, stack or secret
reaches the client, while the log keeps the full story under that id.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.error import GraphQLError
from starlette.responses import JSONResponse
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionResult as StrawberryExecutionResult

log = logging.getLogger("union_gateway.errors")

UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
BAD_USER_INPUT = "BAD_USER_INPUT"
NOT_FOUND = "NOT_FOUND"
QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
RATE_LIMITED = "RATE_LIMITED"
UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
INTERNAL = "INTERNAL"

CODES = frozenset({
    UNAUTHENTICATED, FORBIDDEN, BAD_USER_INPUT, NOT_FOUND, QUERY_TOO_COMPLEX, RATE_LIMITED,
    UPSTREAM_UNAVAILABLE, INTERNAL,
})


class GatewayError(Exception):
    """An error meant for the client: its message is shown, `extensions` carries the code."""

    code: str = INTERNAL

    def __init__(self, message: str, *, code: str | None = None, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if self.code not in CODES:
            raise ValueError(f"unknown error code {self.code}")
        # graphql-core copies an original error's `extensions` dict onto the GraphQLError.
        self.extensions: dict[str, Any] = {"code": self.code, **extensions}


class Unauthenticated(GatewayError):
    code = UNAUTHENTICATED


class Forbidden(GatewayError):
    code = FORBIDDEN


class BadUserInput(GatewayError):
    code = BAD_USER_INPUT


class NotFound(GatewayError):
    code = NOT_FOUND


class QueryTooComplex(GatewayError):
    code = QUERY_TOO_COMPLEX


class RateLimited(GatewayError):
    code = RATE_LIMITED


class UpstreamUnavailable(GatewayError):
    code = UPSTREAM_UNAVAILABLE


def error_body(message: str, code: str) -> dict[str, Any]:
    """A GraphQL-shaped body for errors answered before GraphQL runs (401, 429)."""
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


def unauthenticated_response(message: str = "A valid API key is required.") -> JSONResponse:
    """HTTP 401 with a GraphQL-shaped body and the challenge header."""
    return JSONResponse(error_body(message, UNAUTHENTICATED), status_code=401,
                        headers={"WWW-Authenticate": "Bearer"})


def _code_of(error: GraphQLError) -> str | None:
    code = (error.extensions or {}).get("code")
    if code in CODES:
        return code
    original = error.original_error
    if isinstance(original, GatewayError):
        return original.code
    code = (getattr(original, "extensions", None) or {}).get("code") if original is not None else None
    return code if code in CODES else None


def _request_id(context: Any) -> str | None:
    return getattr(context, "request_id", None)


def with_codes(errors: list[GraphQLError], context: Any) -> list[GraphQLError]:
    """The errors, each with a code; unexpected ones masked as INTERNAL and logged with the request id."""
    return [_coded(error, context) for error in errors]


class ErrorCodes(SchemaExtension):
    """Codes errors that extensions add after execution (the schema's process_errors codes the rest)."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if isinstance(result, (GraphQLExecutionResult, StrawberryExecutionResult)) and result.errors:
            result.errors = with_codes(result.errors, self.execution_context.context)


def _coded(error: GraphQLError, context: Any) -> GraphQLError:
    code = _code_of(error)
    if code is not None:
        if error.extensions.get("code") == code:
            return error
        return GraphQLError(error.message, nodes=error.nodes, source=error.source, positions=error.positions,
                            path=error.path, original_error=error.original_error,
                            extensions={**(error.extensions or {}), "code": code})
    if error.path is None and not _is_unexpected(error.original_error):
        # Syntax, validation and variable-coercion errors: the request was wrong.
        return GraphQLError(error.message, nodes=error.nodes, source=error.source, positions=error.positions,
                            extensions={"code": BAD_USER_INPUT})
    request_id = _request_id(context)
    original = error.original_error or error
    log.error("internal error in request %s at %s", request_id, error.path,
              exc_info=(type(original), original, original.__traceback__))
    message = "Internal error." + (f" Request id: {request_id}." if request_id else "")
    extensions: dict[str, Any] = {"code": INTERNAL}
    if request_id:
        extensions["requestId"] = request_id
    return GraphQLError(message, nodes=error.nodes, source=error.source, positions=error.positions,
                        path=error.path, extensions=extensions)


def _is_unexpected(original: BaseException | None) -> bool:
    """True for a Python failure (not a GraphQL input problem) behind a path-less error."""
    if original is None or isinstance(original, GraphQLError):
        return False
    # Scalars and enums reject bad input with ValueError/TypeError while variables are coerced.
    return not isinstance(original, (ValueError, TypeError))
