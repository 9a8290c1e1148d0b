"""ASGI WebSockets (spec 2.4): one FastAPI app with websocket endpoints runs under
uvicorn and under quicklane (app.mount), and a raw client must see the same
thing from both, frame by frame; what the endpoints saw (exceptions, close
codes) must be the same too."""
from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any, Callable, Iterator

import pytest

fastapi = pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("websockets")

from fastapi import FastAPI, WebSocket, WebSocketDisconnect  # noqa: E402
from fastapi.responses import PlainTextResponse  # noqa: E402

import quicklane  # noqa: E402
from wsclient import BINARY, TEXT, Refused, Ws  # noqa: E402


def make_app(seen: dict[str, Any]) -> FastAPI:
    api = FastAPI()

    @api.websocket("/echo")
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                seen["echo"] = msg.get("code")
                return
            if msg.get("text") is not None:
                await ws.send_text(msg["text"])
            else:
                await ws.send_bytes(msg["bytes"])

    @api.websocket("/json")
    async def js(ws: WebSocket) -> None:
        await ws.accept()
        data = await ws.receive_json()
        await ws.send_json({"got": data, "n": len(data)})
        await ws.close()

    @api.websocket("/sub")
    async def sub(ws: WebSocket) -> None:
        await ws.accept(subprotocol="chat.v2", headers=[(b"x-extra", b"yes")])
        await ws.send_text(",".join(ws.scope["subprotocols"]))
        await ws.send_text(ws.query_params.get("q", "-") + " " + ws.url.path)
        await ws.close(1000)

    @api.websocket("/close")
    async def close(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("bye soon")
        await ws.close(4001, "custom reason")
        try:
            await ws.send_text("after close")
        except RuntimeError as e:
            seen["after_close"] = type(e).__name__

    @api.websocket("/refuse")
    async def refuse(ws: WebSocket) -> None:
        await ws.close()

    @api.websocket("/deny")
    async def deny(ws: WebSocket) -> None:
        await ws.send_denial_response(PlainTextResponse("not you", status_code=401, headers={"x-why": "token"}))

    @api.websocket("/raise")
    async def boom(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("about to fail")
        raise RuntimeError("boom inside")

    @api.websocket("/raise-before")
    async def boom_before(ws: WebSocket) -> None:
        raise RuntimeError("boom before accept")

    @api.websocket("/return")
    async def returns(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("and gone")

    @api.websocket("/client-close")
    async def client_close(ws: WebSocket) -> None:
        await ws.accept()
        try:
            while True:
                await ws.receive_text()
        except WebSocketDisconnect as e:
            seen["client_close"] = (e.code, e.reason)
        try:
            await ws.send_text("too late")
        except (WebSocketDisconnect, RuntimeError) as e:
            seen["send_after_client_close"] = type(e).__name__

    @api.get("/plain")
    async def plain() -> dict[str, str]:
        return {"plain": "http"}

    return api


class _Uvicorn:
    def __init__(self, app: Any) -> None:
        self.config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="critical", lifespan="off",
                                     ws="websockets-sansio")
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> int:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, tuple[int, dict[str, Any]]]]:
    seen_u: dict[str, Any] = {}
    seen_q: dict[str, Any] = {}
    app = quicklane.App()
    app.mount(make_app(seen_q), lifespan="off")
    srv = app.start(port=0, workers=2)
    with _Uvicorn(make_app(seen_u)) as uport:
        try:
            yield {"uvicorn": (uport, seen_u), "quicklane": (srv.port, seen_q)}
        finally:
            srv.stop()


def view(port: int, path: str, frames: list[tuple[Any, int]], *, protocols: list[str] | None = None,
         close: tuple[int, str] | None = None, echo: bool = False) -> dict[str, Any]:
    """What a raw client sees: the handshake answer, then every frame until a close or the end."""
    try:
        ws = Ws(port, path, protocols=protocols)
    except Refused as r:
        return {"status": r.status, "body": r.body, "type": r.headers.get("content-type"),
                "x-why": r.headers.get("x-why")}
    out: dict[str, Any] = {"status": ws.status, "protocol": ws.headers.get("sec-websocket-protocol"),
                           "x-extra": ws.headers.get("x-extra")}
    replies = []
    for payload, op in frames:
        ws.send(payload, op)
        if echo:
            replies.append(ws.recv())
    if replies:
        out["replies"] = replies
    if close is not None:
        ws.close(*close)
    out["frames"] = ws.transcript()
    if close is not None and out["frames"] and out["frames"][-1][0] == "close":
        # The echo of the client's close: the core sends the code back without the reason
        # (RFC 6455 5.5.1 lets an endpoint do either); the code must be the same.
        out["frames"][-1] = out["frames"][-1][:2]
    ws.shut()
    return out


CASES: dict[str, Callable[[int], dict[str, Any]]] = {
    "echo": lambda p: view(p, "/echo", [("héllo", TEXT), (b"\x00\x01\xff", BINARY), ("", TEXT),
                                         (bytes(70000), BINARY)], close=(1000, "done"), echo=True),
    "json": lambda p: view(p, "/json", [(json.dumps({"a": [1, 2]}), TEXT)]),
    "subprotocol": lambda p: view(p, "/sub?q=x%20y", [], protocols=["chat.v1", "chat.v2"]),
    "close_code_reason": lambda p: view(p, "/close", []),
    "refuse_before_accept": lambda p: view(p, "/refuse", []),
    "denial_response": lambda p: view(p, "/deny", []),
    "raise_after_accept": lambda p: view(p, "/raise", []),
    "raise_before_accept": lambda p: view(p, "/raise-before", []),
    "return_without_close": lambda p: view(p, "/return", []),
    "client_close": lambda p: view(p, "/client-close", [("one", TEXT)], close=(4321, "leaving")),
    "unknown_path": lambda p: view(p, "/nowhere", []),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_as_uvicorn(servers: dict[str, tuple[int, dict[str, Any]]], name: str) -> None:
    got = {k: CASES[name](port) for k, (port, _) in servers.items()}
    assert got["quicklane"] == got["uvicorn"], got


def test_endpoints_saw_the_same(servers: dict[str, tuple[int, dict[str, Any]]]) -> None:
    for name in ("close_code_reason", "client_close", "echo"):
        for port, _ in servers.values():
            CASES[name](port)
    deadline = time.monotonic() + 5
    want = {"after_close", "client_close", "send_after_client_close", "echo"}
    while time.monotonic() < deadline and not all(want <= set(s) for _, s in servers.values()):
        time.sleep(0.02)
    (_, seen_u), (_, seen_q) = servers["uvicorn"], servers["quicklane"]
    assert {k: seen_q.get(k) for k in want} == {k: seen_u.get(k) for k in want}
    assert seen_q["client_close"] == (4321, "leaving")
    assert seen_q["after_close"] == "WebSocketDisconnected"


def test_plain_get_beside_websockets(servers: dict[str, tuple[int, dict[str, Any]]]) -> None:
    from conftest import fetch

    port, _ = servers["quicklane"]
    r = fetch(port, "GET", "/plain")
    assert r.status == 200 and r.json() == {"plain": "http"}


def test_many_sockets_through_the_mount(servers: dict[str, tuple[int, dict[str, Any]]]) -> None:
    port, _ = servers["quicklane"]
    socks = [Ws(port, "/echo") for _ in range(200)]
    try:
        for i, w in enumerate(socks):
            w.send(f"m{i}", TEXT)
        for i, w in enumerate(socks):
            assert w.recv() == (TEXT, f"m{i}".encode())
    finally:
        for w in socks:
            w.shut()


def test_starlette_websocket_route() -> None:
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket as SWebSocket

    async def handler(ws: SWebSocket) -> None:
        await ws.accept()
        async for text in ws.iter_text():
            await ws.send_text(text[::-1])

    app = quicklane.App()
    app.mount(Starlette(routes=[WebSocketRoute("/rev", handler)]), lifespan="off")
    with app.start(port=0, workers=1) as srv:
        w = Ws(srv.port, "/rev")
        w.send("abc", TEXT)
        assert w.recv() == (TEXT, b"cba")
        w.close(1000)
        assert w.transcript() == [("close", 1000, "")]
        w.shut()


def test_raw_asgi_send_after_close_raises() -> None:
    errors: list[str] = []
    done = threading.Event()

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})
        try:
            await send({"type": "websocket.send", "text": "x"})
        except RuntimeError as e:
            errors.append(str(e))
        msg = await receive()
        errors.append(msg["type"])
        done.set()

    app = quicklane.App()
    app.mount(asgi, lifespan="off")
    with app.start(port=0, workers=1) as srv:
        w = Ws(srv.port, "/")
        assert w.transcript() == [("close", 1000, "")]
        w.shut()
        assert done.wait(5)
    assert "after sending 'websocket.close'" in errors[0]
    assert errors[1] == "websocket.disconnect"


def test_asgi_scope_of_a_websocket() -> None:
    scopes: list[dict[str, Any]] = []

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            scopes.append(scope)
            await send({"type": "websocket.close"})

    app = quicklane.App()
    app.mount(asgi, lifespan="off")
    with app.start(port=0, workers=1) as srv:
        with pytest.raises(Refused) as r:
            Ws(srv.port, "/a%20b/c?x=1", protocols=["p1", "p2"])
        assert r.value.status == 403
    s = scopes[0]
    assert s["type"] == "websocket" and s["scheme"] == "ws" and s["path"] == "/a b/c"
    assert s["raw_path"] == b"/a%20b/c" and s["query_string"] == b"x=1"
    assert s["subprotocols"] == ["p1", "p2"] and "websocket.http.response" in s["extensions"]
    assert s["asgi"]["spec_version"] == "2.4" and "method" not in s


def test_quiet_socket_ping() -> None:
    # a client that connects and waits: nothing arrives until it speaks
    app = quicklane.App()

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            while (await receive())["type"] != "websocket.disconnect":
                pass

    app.mount(asgi, lifespan="off")
    with app.start(port=0, workers=1) as srv:
        w = Ws(srv.port, "/")
        w.s.settimeout(0.2)
        with pytest.raises(socket.timeout):
            w.recv()
        w.shut()


def test_mount_websocket_options() -> None:
    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            while (await receive())["type"] != "websocket.disconnect":
                pass

    app = quicklane.App()
    app.mount(asgi, lifespan="off", ws_max_size=100)
    with app.start(port=0, workers=1) as srv:
        w = Ws(srv.port, "/", extra=[("Sec-WebSocket-Extensions", "permessage-deflate")])
        assert w.headers["sec-websocket-extensions"].startswith("permessage-deflate")  # uvicorn's default
        w.shut()
        w = Ws(srv.port, "/")
        w.send(bytes(101), BINARY)
        assert w.transcript()[-1][:2] == ("close", 1009)
        w.shut()
    app = quicklane.App()
    app.mount(asgi, lifespan="off", ws_per_message_deflate=False)
    with app.start(port=0, workers=1) as srv:
        w = Ws(srv.port, "/", extra=[("Sec-WebSocket-Extensions", "permessage-deflate")])
        assert "sec-websocket-extensions" not in w.headers
        w.shut()
    with pytest.raises(ValueError, match="ping_interval"):
        quicklane.App().mount(asgi, ws_ping_interval=0.5)
