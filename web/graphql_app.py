"""/graphql: API key → Viewer → Context with fresh loaders → strawberry; the IDE page for browsers."""
from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

import orjson
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.schema import BaseSchema

from schema.context import Context
from web.auth import authenticator, key_from_connection_params, key_from_headers
from web.errors import unauthenticated_response

if TYPE_CHECKING:
    from gateway import AppState

try:  # web/ide.py is optional: without it GET /graphql is plain GraphQL over GET.
    from web import ide
except ImportError:  # pragma: no cover
    ide = None  # type: ignore[assignment]

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def request_id_of(headers: Any) -> str:
    """The caller's X-Request-ID when it is sane, else a new one."""
    given = headers.get("x-request-id")
    return given if given and _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


class GatewayGraphQL(GraphQL):
    """strawberry's ASGI view with our authentication, context and JSON encoding."""

    def __init__(self, schema: BaseSchema, state: "AppState", **options: Any) -> None:
        # graphql_ide=None: strawberry's own IDE loads from a CDN; ours (web/ide.py) is offline.
        super().__init__(schema, graphql_ide=None, **options)
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        response: Response
        if ide is not None and request.method == "GET" and ide.wants_ide(request):
            response = await ide.ide_page(request)
        else:
            viewer = await authenticator(self.state).viewer(key_from_headers(request.headers))
            if viewer is None:
                response = unauthenticated_response()
            else:
                request.state.viewer = viewer
                streamed = False
                try:
                    response = await self.run(request)
                    streamed = isinstance(response, StreamingResponse)  # a subscription over HTTP: resolves on
                except HTTPException as exc:
                    response = PlainTextResponse(exc.reason, status_code=exc.status_code)
                finally:
                    context = getattr(request.state, "graphql_context", None)
                    if context is not None and not streamed:
                        context.release()
        await response(scope, receive, send)

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        state = self.state
        request_id = request_id_of(request.headers)
        viewer = getattr(request.state, "viewer", None) if isinstance(request, Request) else None
        context = Context(request=request, viewer=viewer, state=state, loaders=None, request_id=request_id,
                          response=response)
        if viewer is not None:
            context.renew_loaders()
        if isinstance(response, Response):
            response.headers["X-Request-ID"] = request_id
        if isinstance(request, Request):
            request.state.graphql_context = context  # released once the response is made
        return context

    async def on_ws_connect(self, context: Context) -> Any:
        """Authenticate a WebSocket from its handshake header or its connection_init payload; 4403 otherwise."""
        presented = key_from_headers(context.request.headers) or key_from_connection_params(context.connection_params)
        viewer = await authenticator(self.state).viewer(presented)
        if viewer is None:
            raise ConnectionRejectionError()
        context.viewer = viewer
        context.renew_loaders()
        return await super().on_ws_connect(context)

    def encode_json(self, data: object) -> str:
        # Text, not bytes: WebSocket clients of graphql-transport-ws expect text frames.
        return orjson.dumps(data).decode()

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        # strawberry's own, with orjson's bytes as the body: encode_json's text would be decoded from
        # UTF-8 only for Starlette to encode it again (a staff list is ~23 kB, much of it Chinese).
        response = Response(orjson.dumps(response_data), status_code=sub_response.status_code or 200,
                            media_type="application/json", background=sub_response.background)
        response.headers.raw.extend(sub_response.headers.raw)
        return response


def graphql_routes(state: "AppState", schema: BaseSchema | None = None) -> list[BaseRoute]:
    """/graphql over HTTP and WebSocket, plus the IDE's assets when web/ide.py exists."""
    if schema is None:
        from schema import build_schema
        from web.guard import OperationGuard

        schema = build_schema(extensions=[OperationGuard])
    app = GatewayGraphQL(schema, state)
    routes: list[BaseRoute] = [
        Route("/graphql", app, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", app),
    ]
    if ide is not None and hasattr(ide, "ide_routes"):
        routes += ide.ide_routes()
    return routes
