"""quicklane: an embeddable HTTP API server. A C++ core (libuv + llhttp) parses,
routes and answers native routes without the GIL; your handlers stay in Python.

    import quicklane
    app = quicklane.App()
    app.static("GET", "/ping", {"message": "pong"})      # answered natively
    @app.get("/hello/{name}")
    def hello(req: quicklane.Request, name: str) -> dict[str, str]:
        return {"hello": name}
    app.run(host="127.0.0.1", port=8080, workers=2)
"""
from ._app import App, Server
from ._body import ClientDisconnect
from ._http import (Address, EventSourceResponse, Headers, HTTPError, QueryParams, Request, Response,
                    ServerSentEvent, StreamingResponse)
from ._native import NativeError
from ._ws import WebSocket, WebSocketDisconnect, WebSocketDisconnected, WebSocketState

__version__ = "0.1.0"


def native_version() -> str:
    """Version of the compiled-in quicklane core."""
    from . import _native

    return _native.version()


__all__ = ["App", "Server", "Request", "Response", "HTTPError", "ClientDisconnect",
           "StreamingResponse", "EventSourceResponse", "ServerSentEvent", "Headers", "QueryParams", "Address",
           "NativeError", "native_version", "__version__", "WebSocket", "WebSocketDisconnect",
           "WebSocketDisconnected", "WebSocketState"]
