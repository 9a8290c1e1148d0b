"""The native WebSocket API (@app.websocket): messages, the handshake's options,
refusals, close codes both ways, pub/sub from any thread, backpressure both
ways, aborts at every phase, thousands of sockets, and no leak (native handles
and Python objects counted back to zero)."""
from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from typing import Any, Callable, Iterator

import pytest

import quicklane
from quicklane import HTTPError, Response, WebSocket, WebSocketDisconnect, _native
from conftest import fetch
from wsclient import BINARY, CLOSE, PING, PONG, TEXT, Refused, Ws


def wait_for(cond: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def no_leak(srv: quicklane.Server, timeout: float = 8.0) -> None:
    """Every socket, message and handler task of the server is released."""
    hub = srv._engine.hub
    assert hub is not None
    wait_for(lambda: hub.live() == 0 and _native.ws_live() == {"messages": 0, "sockets": 0}
             and srv.stats()["requests_in_flight"] == 0, timeout,
             f"WebSocket handles to be released (hub {hub.live()}, native {_native.ws_live()}, "
             f"stats {srv.stats()})")


seen: dict[str, Any] = {}
topic_calls: list[int] = []


def make_app() -> quicklane.App:
    app = quicklane.App()

    @app.websocket("/echo")
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
            if "text" in msg:
                await ws.send_text(msg["text"])
            else:
                await ws.send_bytes(msg["bytes"])

    @app.websocket("/json/{n}")
    async def js(ws: WebSocket, n: int) -> None:
        await ws.accept()
        data = await ws.receive_json()
        await ws.send_json({"got": data, "n": n, "q": ws.query_params.get("q"), "h": ws.headers.get("x-h"),
                            "client": ws.client.host})
        await ws.close()

    @app.websocket("/sub")
    async def sub(ws: WebSocket) -> None:
        await ws.accept(subprotocol="b", headers={"X-Extra": "1"})
        await ws.send_text(",".join(ws.subprotocols))

    @app.websocket("/badsub")
    async def badsub(ws: WebSocket) -> None:
        try:
            await ws.accept(subprotocol="never-offered")
        except ValueError as e:
            seen["badsub"] = str(e)
            raise HTTPError(400, "bad subprotocol") from None

    @app.websocket("/refuse")
    async def refuse(ws: WebSocket) -> None:
        await ws.close()

    @app.websocket("/auth")
    async def auth(ws: WebSocket) -> None:
        if ws.headers.get("authorization") != "yes":
            raise HTTPError(401, "token needed", headers={"WWW-Authenticate": "Bearer"})
        await ws.accept()
        await ws.send_text("welcome")

    @app.websocket("/deny")
    async def deny(ws: WebSocket) -> None:
        await ws.send_denial_response(Response("teapot", 418, {"X-Why": "tea"}))

    @app.websocket("/close/{code}")
    async def close_with(ws: WebSocket, code: int) -> None:
        await ws.accept()
        await ws.close(code, "server says bye")
        try:
            await ws.send_text("after close")
        except RuntimeError as e:
            seen["send_after_close"] = type(e).__name__
        try:
            await ws.receive_text()
        except RuntimeError as e:
            seen["receive_after_close"] = type(e).__name__

    @app.websocket("/wait-close")
    async def wait_close(ws: WebSocket) -> None:
        await ws.accept()
        try:
            while True:
                await ws.receive_text()
        except WebSocketDisconnect as e:
            seen["client_close"] = (e.code, e.reason)
        try:
            await ws.send_text("too late")
        except WebSocketDisconnect as e:
            seen["send_after_client_close"] = e.code
        try:
            await ws.receive_text()
        except RuntimeError as e:
            seen["receive_after_disconnect"] = type(e).__name__

    @app.websocket("/ping")
    async def ping(ws: WebSocket) -> None:
        try:
            await ws.send_ping(b"early")
        except RuntimeError as e:
            seen["ping_before_accept"] = type(e).__name__
        await ws.accept()
        await ws.send_text("before")
        await ws.send_ping(b"p1")
        await ws.send_pong("p2")
        await ws.send_ping()
        await ws.send_ping(bytearray(b"x" * 125))
        await ws.send_pong(memoryview(b"m"))
        for bad in (b"x" * 126, "é" * 63):
            try:
                await ws.send_ping(bad)
            except ValueError as e:
                seen.setdefault("ping_too_long", []).append(str(e))
        try:
            await ws.send_pong(7)  # type: ignore[arg-type]
        except TypeError as e:
            seen["pong_type"] = str(e)
        await ws.send_bytes(b"after")
        await ws.close(4005, "pp")
        try:
            await ws.send_ping(b"late")
        except RuntimeError as e:
            seen["ping_after_close"] = type(e).__name__

    @app.websocket("/return")
    async def returns(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("bye")

    @app.websocket("/raise")
    async def raises(ws: WebSocket) -> None:
        await ws.accept()
        raise RuntimeError("handler failed on purpose")

    @app.websocket("/raise-before")
    async def raises_before(ws: WebSocket) -> None:
        raise RuntimeError("failed before accept on purpose")

    @app.websocket("/no-accept")
    async def no_accept(ws: WebSocket) -> None:
        return None

    @app.websocket("/room/{name}")
    async def room(ws: WebSocket, name: str) -> None:
        await ws.accept()
        ws.subscribe(f"room:{name}")
        await ws.send_text("joined")  # after the subscription, on the socket's loop
        async for text in ws.iter_text():
            if text == "leave":
                ws.unsubscribe(f"room:{name}")
                await ws.send_text("left")
            else:
                app.publish(f"room:{name}", {"room": name, "text": text})

    @app.post("/announce/{room}")
    def announce(req: quicklane.Request, room: str) -> dict[str, int]:  # sync code on a pool thread
        return {"sent": app.publish(f"room:{room}", req.body.decode())}

    @app.websocket("/slow-accept")
    async def slow_accept(ws: WebSocket) -> None:
        await asyncio.sleep(0.3)
        try:
            await ws.accept()
            seen["slow_accept"] = "accepted"
        except WebSocketDisconnect as e:
            seen["slow_accept"] = e.code

    @app.websocket("/flood", max_backpressure=256 * 1024)
    async def flood(ws: WebSocket) -> None:
        await ws.accept()
        chunk = bytes(64 * 1024)
        seen["flood_max_buffered"] = 0
        seen["flood_sent"] = 0
        try:
            while seen["flood_sent"] < 400:  # 25 MiB at most
                await ws.send_bytes(chunk)
                seen["flood_sent"] += 1
                seen["flood_max_buffered"] = max(seen["flood_max_buffered"], ws.buffered_amount)
        except WebSocketDisconnect as e:
            seen["flood_end"] = e.code

    @app.websocket("/sink", max_backpressure=64 * 1024)
    async def sink(ws: WebSocket) -> None:
        await ws.accept()
        seen["sink_ready"] = True
        while not seen.get("sink_go"):
            await asyncio.sleep(0.01)
        total = 0
        try:
            async for data in ws.iter_bytes():
                total += len(data)
        finally:
            seen["sink_total"] = total

    return app


@pytest.fixture(scope="module")
def server() -> Iterator[quicklane.Server]:
    app = make_app()
    srv = app.start(port=0, workers=2)
    try:
        yield srv
    finally:
        srv.stop()
    assert _native.ws_live() == {"messages": 0, "sockets": 0}


@pytest.fixture(autouse=True)
def _clean() -> None:
    seen.clear()


def test_echo_text_and_binary(server: quicklane.Server) -> None:
    w = Ws(server.port, "/echo")
    for payload in ("hello", "grüße ✓", ""):
        w.send(payload, TEXT)
        assert w.recv() == (TEXT, payload.encode())
    for blob in (b"\x00\xff", bytes(range(256)) * 400, b""):
        w.send(blob, BINARY)
        assert w.recv() == (BINARY, blob)
    w.close(1000, "done")
    assert w.transcript() == [("close", 1000, "")]
    w.shut()
    no_leak(server)


def test_json_params_query_headers(server: quicklane.Server) -> None:
    w = Ws(server.port, "/json/7?q=a%20b", extra=[("X-H", "hv")])
    w.send(json.dumps({"k": [1, 2]}), TEXT)
    op, data = w.recv()
    assert op == TEXT
    assert json.loads(data) == {"got": {"k": [1, 2]}, "n": 7, "q": "a b", "h": "hv", "client": "127.0.0.1"}
    assert w.transcript() == [("close", 1000, "")]
    w.shut()


def test_path_param_conversion_refused_with_422(server: quicklane.Server) -> None:
    with pytest.raises(Refused) as r:
        Ws(server.port, "/json/seven")
    assert r.value.status == 422
    assert "must be int" in r.value.body.decode()


def test_subprotocol_and_accept_headers(server: quicklane.Server) -> None:
    w = Ws(server.port, "/sub", protocols=["a", "b"])
    assert w.headers["sec-websocket-protocol"] == "b"
    assert w.headers["x-extra"] == "1"
    assert w.recv() == (TEXT, b"a,b")
    assert w.transcript() == [("close", 1000, "")]
    w.shut()


def test_subprotocol_not_offered_is_a_clear_error(server: quicklane.Server) -> None:
    with pytest.raises(Refused) as r:
        Ws(server.port, "/badsub", protocols=["x"])
    assert r.value.status == 400
    assert "not offered" in seen["badsub"]


def test_refusals(server: quicklane.Server) -> None:
    with pytest.raises(Refused) as r:
        Ws(server.port, "/refuse")
    assert r.value.status == 403
    with pytest.raises(Refused) as r:
        Ws(server.port, "/auth")
    assert r.value.status == 401 and r.value.headers["www-authenticate"] == "Bearer"
    assert json.loads(r.value.body) == {"detail": "token needed"}
    w = Ws(server.port, "/auth", extra=[("Authorization", "yes")])
    assert w.recv() == (TEXT, b"welcome")
    w.shut()
    with pytest.raises(Refused) as r:
        Ws(server.port, "/deny")
    assert (r.value.status, r.value.body, r.value.headers["x-why"]) == (418, b"teapot", "tea")
    no_leak(server)


def test_server_close_code_and_reason(server: quicklane.Server) -> None:
    w = Ws(server.port, "/close/4003")
    assert w.transcript() == [("close", 4003, "server says bye")]
    w.shut()
    wait_for(lambda: "receive_after_close" in seen)
    assert seen["send_after_close"] == "WebSocketDisconnected"
    assert seen["receive_after_close"] == "WebSocketDisconnected"


def test_ping_and_pong_frames_in_order(server: quicklane.Server) -> None:
    w = Ws(server.port, "/ping")
    assert w.transcript() == [(TEXT, b"before"), (PING, b"p1"), (PONG, b"p2"), (PING, b""), (PING, b"x" * 125),
                              (PONG, b"m"), (BINARY, b"after"), ("close", 4005, "pp")]
    w.shut()
    wait_for(lambda: "ping_after_close" in seen)
    assert seen["ping_before_accept"] == "WebSocketDisconnected"
    assert seen["ping_after_close"] == "WebSocketDisconnected"
    assert [m.split(":")[0] for m in seen["ping_too_long"]] == ["send_ping", "send_ping"]
    assert all("at most 125 bytes" in m for m in seen["ping_too_long"])
    assert "bytes or a str" in seen["pong_type"]
    no_leak(server)


def test_invalid_close_code_is_refused(server: quicklane.Server) -> None:
    w = Ws(server.port, "/close/1005")  # may not be sent: ValueError in the handler → 1011
    assert w.transcript() == [("close", 1011, "")]
    w.shut()


def test_client_close_code_and_reason(server: quicklane.Server) -> None:
    w = Ws(server.port, "/wait-close")
    w.send("x", TEXT)
    w.close(4100, "client leaves")
    assert w.transcript() == [("close", 4100, "")]
    w.shut()
    wait_for(lambda: "receive_after_disconnect" in seen)
    assert seen["client_close"] == (4100, "client leaves")
    assert seen["send_after_client_close"] == 1006
    assert seen["receive_after_disconnect"] == "WebSocketDisconnected"


def test_connection_dropped_is_1006(server: quicklane.Server) -> None:
    w = Ws(server.port, "/wait-close")
    w.shut()
    wait_for(lambda: "client_close" in seen)
    assert seen["client_close"][0] == 1006


def test_return_closes_1000_raise_closes_1011(server: quicklane.Server, caplog: pytest.LogCaptureFixture) -> None:
    w = Ws(server.port, "/return")
    assert w.transcript() == [(TEXT, b"bye"), ("close", 1000, "")]
    w.shut()
    with caplog.at_level(logging.ERROR, logger="quicklane"):
        w = Ws(server.port, "/raise")
        assert w.transcript() == [("close", 1011, "")]
        w.shut()
        wait_for(lambda: "handler failed on purpose" in caplog.text)
        with pytest.raises(Refused) as r:
            Ws(server.port, "/raise-before")
        assert r.value.status == 500
        with pytest.raises(Refused) as r:
            Ws(server.port, "/no-accept")
        assert r.value.status == 500
        wait_for(lambda: "returned without accepting" in caplog.text)
    no_leak(server)


def test_publish_from_another_thread_and_unsubscribe(server: quicklane.Server) -> None:
    app = server._engine.app
    a, b, other = Ws(server.port, "/room/r1"), Ws(server.port, "/room/r1"), Ws(server.port, "/room/r2")
    for w in (a, b, other):
        assert w.recv() == (TEXT, b"joined")
    assert app.publish("room:r1", "ping") == 2
    for w in (a, b):
        assert w.recv() == (TEXT, b"ping")
    counts: list[int] = []
    t = threading.Thread(target=lambda: counts.append(app.publish("room:r1", b"\x01\x02")))
    t.start()
    t.join(5)
    assert counts == [2]
    for w in (a, b):
        assert w.recv() == (BINARY, b"\x01\x02")
    a.send("hi", TEXT)  # the handler publishes a dict: JSON text
    for w in (a, b):
        assert json.loads(w.recv_text()) == {"room": "r1", "text": "hi"}
    b.send("leave", TEXT)
    assert b.recv() == (TEXT, b"left")
    assert app.publish("room:r1", "only a") == 1
    assert a.recv() == (TEXT, b"only a")
    other.s.settimeout(0.2)
    with pytest.raises(OSError):
        other.recv()
    r = fetch(server.port, "POST", "/announce/r1", b"from a def handler")
    assert r.status == 200 and r.json() == {"sent": 1}
    assert a.recv() == (TEXT, b"from a def handler")
    for w in (a, b, other):
        w.shut()
    wait_for(lambda: app.publish("room:r1", "nobody") == 0, what="subscribers to leave")
    with pytest.raises(TypeError):
        app.publish(1, "x")  # type: ignore[arg-type]
    no_leak(server)


def test_publish_while_clients_leave(server: quicklane.Server) -> None:
    app = server._engine.app
    socks = [Ws(server.port, "/room/busy") for _ in range(40)]
    for w in socks:
        assert w.recv() == (TEXT, b"joined")
    assert app.publish("room:busy", "x") == 40
    stop = threading.Event()
    sent: list[int] = []

    def publisher() -> None:
        n = 0
        while not stop.is_set() and n < 20000:
            app.publish("room:busy", "tick %d" % n)
            n += 1
        sent.append(n)

    threads = [threading.Thread(target=publisher) for _ in range(2)]
    for t in threads:
        t.start()
    for w in socks[:20]:
        w.shut()  # leave mid-publish, without a close frame
    for w in socks[20:30]:
        w.close(1000)
    time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join(10)
    assert len(sent) == 2
    for w in socks[30:]:
        assert w.recv()[0] == TEXT  # the others still get messages
        w.shut()
    wait_for(lambda: app.publish("room:busy", "x") == 0, what="every subscriber to leave")
    no_leak(server)


def test_abort_before_accept(server: quicklane.Server, monkeypatch: pytest.MonkeyPatch) -> None:
    # The core does not read a connection whose request waits for its answer; it asks the
    # kernel once a tick (TCP_INFO) whether the client left: a reset aborts the upgrade, and
    # accept() raises WebSocketDisconnect(1006).
    monkeypatch.setattr(quicklane._ws, "_OPEN_TIMEOUT", 1.0)
    w = Ws(server.port, "/slow-accept", handshake=False)
    time.sleep(0.05)
    w.reset()
    wait_for(lambda: "slow_accept" in seen)
    assert seen["slow_accept"] == 1006
    # A half-close (FIN) is a disconnect too, as for HTTP requests, once the tick sees it;
    # before that, the accept may win (then the socket closes at once).
    seen.pop("slow_accept")
    w = Ws(server.port, "/slow-accept", handshake=False)
    w.s.shutdown(socket.SHUT_WR)
    wait_for(lambda: seen.get("slow_accept") in ("accepted", 1006))
    no_leak(server)


def test_upgrade_timed_out_by_the_core_before_accept() -> None:
    """The core's handler timeout answers 503 and aborts the upgrade request: a late accept()
    raises WebSocketDisconnect(1006) and the request is freed."""
    app = quicklane.App()

    @app.websocket("/late")
    async def late(ws: WebSocket) -> None:
        await asyncio.sleep(1.5)
        try:
            await ws.accept()
        except WebSocketDisconnect as e:
            seen["late"] = e.code

    with app.start(port=0, workers=1, handler_timeout_ms=1000) as srv:
        with pytest.raises(Refused) as r:
            Ws(srv.port, "/late")
        assert r.value.status == 503
        wait_for(lambda: "late" in seen)
        assert seen["late"] == 1006
        no_leak(srv)


def test_backpressure_send_waits_and_memory_stays_bounded(server: quicklane.Server) -> None:
    w = Ws(server.port, "/flood")
    w.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    # The client reads nothing: the handler must end up waiting in send (no progress for 0.3 s).
    stalled = -1
    for _ in range(30):
        time.sleep(0.3)
        if seen.get("flood_sent") == stalled:
            break
        stalled = seen.get("flood_sent", -1)
    else:
        raise AssertionError("send did not wait for a client that does not read")
    assert stalled < 100, stalled  # kernel buffers + 256 KiB, not the whole 25 MiB
    assert seen["flood_max_buffered"] <= 256 * 1024 + 64 * 1024 + 64
    # Reading resumes the sender; then leaving mid-send ends it with WebSocketDisconnect.
    got = 0
    while got < 40 * 64 * 1024:
        op, data = w.recv()
        assert op == BINARY
        got += len(data)
    wait_for(lambda: seen["flood_sent"] > stalled, what="the sender to resume")
    w.shut()
    wait_for(lambda: "flood_end" in seen, what="the send to fail after the client left")
    assert seen["flood_end"] == 1006
    no_leak(server)


def test_inbound_backpressure_handler_that_does_not_read(server: quicklane.Server) -> None:
    w = Ws(server.port, "/sink")
    wait_for(lambda: seen.get("sink_ready", False))
    sent = 0
    w.s.settimeout(0.5)
    msg = bytes(16 * 1024)
    try:
        while sent < 2000:  # at most 32 MiB
            w.send(msg, BINARY)
            sent += 1
    except OSError:  # the core stopped reading: the client's send buffer is full
        pass
    held = _native.ws_live()["messages"]
    assert held * len(msg) <= 64 * 1024 + 2 * len(msg), held  # the core held the rest in the socket
    assert sent < 2000, "the core read everything although nobody took the messages"
    seen["sink_go"] = True
    w.s.settimeout(5)
    w.close(1000)
    assert w.transcript()[-1][:2] == ("close", 1000)
    w.shut()
    wait_for(lambda: "sink_total" in seen)
    assert seen["sink_total"] >= (sent - 1) * len(msg)
    no_leak(server)


def test_two_thousand_sockets(server: quicklane.Server) -> None:
    n = 2000
    socks = []
    try:
        for i in range(n):
            socks.append(Ws(server.port, "/echo"))
        for i, w in enumerate(socks):
            w.send(f"n{i}", TEXT)
        for i, w in enumerate(socks):
            assert w.recv() == (TEXT, f"n{i}".encode())
        for w in socks[: n // 2]:
            w.close(1000)
        for w in socks[: n // 2]:
            assert w.recv()[0] == CLOSE
    finally:
        for w in socks:
            w.shut()
    no_leak(server, timeout=20)


def test_protocol_errors_reach_the_handler(server: quicklane.Server) -> None:
    w = Ws(server.port, "/wait-close")
    w.send(b"\xff\xfe", TEXT)  # not UTF-8: the core closes with 1007
    tr = w.transcript()
    assert tr[-1][:2] == ("close", 1007), tr
    w.shut()
    wait_for(lambda: "client_close" in seen)
    assert seen["client_close"][0] == 1007


def test_registration_errors() -> None:
    app = quicklane.App()
    with pytest.raises(TypeError, match="async def"):
        @app.websocket("/x")
        def sync_handler(ws: WebSocket) -> None:
            pass
    with pytest.raises(TypeError, match="path parameter 'room'"):
        @app.websocket("/x/{room}")
        async def missing(ws: WebSocket) -> None:
            pass
    with pytest.raises(ValueError, match="max_message_size"):
        app.websocket("/y", max_message_size=0)
    with pytest.raises(ValueError, match="idle_timeout"):
        app.websocket("/y", idle_timeout=0.5)
    with pytest.raises(ValueError, match="compression"):
        app.websocket("/y", compression="zstd")
    with pytest.raises(ValueError, match="compression_window_bits"):
        app.websocket("/y", compression="dedicated", compression_window_bits=20)
    with pytest.raises(TypeError, match="max_backpressure"):
        app.websocket("/y", max_backpressure="big")  # type: ignore[arg-type]
    assert app.publish("t", "not serving") == 0


def test_options_reach_the_core() -> None:
    app = quicklane.App()

    @app.websocket("/small", max_message_size=10, idle_timeout=1.0, compression=True)
    async def small(ws: WebSocket) -> None:
        await ws.accept()
        try:
            async for _ in ws.iter_text():
                pass
        except WebSocketDisconnect as e:
            seen["small"] = e.code

    with app.start(port=0, workers=1) as srv:
        w = Ws(srv.port, "/small")
        w.send("0123456789abc", TEXT)  # over max_message_size: 1009
        assert w.transcript()[-1][:2] == ("close", 1009)
        w.shut()
        w = Ws(srv.port, "/small")
        t0 = time.monotonic()
        assert w.transcript()[-1][:2] == ("close", 1001)  # idle for a second
        assert time.monotonic() - t0 < 4
        w.shut()
        w = Ws(srv.port, "/small", extra=[("Sec-WebSocket-Extensions", "permessage-deflate")])
        assert "permessage-deflate" in w.headers.get("sec-websocket-extensions", "")
        w.shut()
        no_leak(srv)


def test_stop_with_open_sockets_closes_them_1001() -> None:
    app = make_app()
    srv = app.start(port=0, workers=1)
    socks = [Ws(srv.port, "/echo") for _ in range(20)]
    t0 = time.monotonic()
    srv.stop(timeout=2.0)
    assert time.monotonic() - t0 < 5
    for w in socks:
        tr = w.transcript()
        assert tr[-1] == "eof" or tr[-1][:2] == ("close", 1001), tr
        w.shut()
    assert srv._engine.hub is not None and srv._engine.hub.live() == 0
    wait_for(lambda: _native.ws_live() == {"messages": 0, "sockets": 0})
    assert app.publish("room:any", "after stop") == 0  # not serving any more: nobody to send to
