"""What every resolver gets as info.context: the request, the Viewer, the app's resources, fresh loaders."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.websockets import WebSocket

from sources.loaders import Loaders
from sources.viewer import Viewer

if TYPE_CHECKING:
    from gateway import AppState


@dataclass
class Context:
    """Per request (HTTP) or per connection (WebSocket; see renew_loaders)."""

    request: Request | WebSocket
    viewer: Viewer | None
    state: "AppState"
    loaders: Loaders | None
    request_id: str
    #: Starlette sub-response of an HTTP request (headers to add), or the WebSocket.
    response: Any = None
    #: The connection_init payload of a WebSocket (strawberry sets it).
    connection_params: dict[str, Any] | None = field(default=None)

    @property
    def settings(self) -> Any:
        return self.state.runtime.settings

    def new_loaders(self) -> Loaders:
        """Fresh loaders for this viewer (a subscription makes one set per event it resolves)."""
        assert self.viewer is not None, "no viewer: the connection was not authenticated"
        return Loaders(databases=self.state.databases, viewer=self.viewer, insurance=self.state.insurance,
                       batching=getattr(self.settings, "dataloader_batching", True))

    def release(self) -> None:
        """The request is answered: let go of what its loaders hold (see Loaders.release)."""
        loaders, self.loaders = self.loaders, None
        if loaders is not None:
            loaders.release()

    def renew_loaders(self) -> Loaders:
        """Replace the loaders with fresh ones and return them."""
        self.loaders = self.new_loaders()
        return self.loaders
