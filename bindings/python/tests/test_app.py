"""quicklane's Python binding against a real server on 127.0.0.1 (port 0)."""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import pytest

import quicklane
from conftest import fetch, raw

ROOT = Path(__file__).resolve().parents[3]

state: dict[str, Any] = {"started": threading.Event(), "finished": 0, "cancelled": 0, "release": threading.Event()}


class InFlight:
    """Counts handlers running at once, and the peak: concurrency observed, not timed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def __enter__(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1


sleeping = {"sync": InFlight(), "async": InFlight()}


def make_app() -> quicklane.App:
    app = quicklane.App()
    app.static("GET", "/ping", {"message": "pong"})
    app.static("GET", "/static/text", "plain", headers={"X-Static": "1"})

    @app.get("/hello/{name}")
    def hello(req: quicklane.Request, name: str) -> dict[str, str]:
        return {"hello": name}

    @app.post("/echo")
    async def echo(req: quicklane.Request) -> Any:
        return await req.json()

    @app.post("/echo-sync")
    def echo_sync(req: quicklane.Request) -> Any:
        return req.json()

    @app.get("/inspect/{a}/{rest...}")
    def inspect_req(req: quicklane.Request, a: str, rest: str) -> dict[str, Any]:
        return {
            "method": req.method, "path": req.path, "params": req.params, "a": a, "rest": rest,
            "q": req.query.get("q"), "qs": req.query.getlist("q"), "ua": req.headers["X-Test-Header"],
            "ua_lower": req.headers.get("x-test-header"), "one": req.header("X-TEST-HEADER"),
            "client": [req.client.host, req.client.port > 0], "body": req.body.decode(),
        }

    @app.route("/both", methods=["GET", "POST"])
    async def both(request: quicklane.Request) -> str:
        await asyncio.sleep(0)
        return f"{request.method} ok"

    @app.get("/items/{item_id}")
    def item(item_id: int) -> dict[str, Any]:
        return {"id": item_id, "type": type(item_id).__name__}

    @app.get("/bytes")
    def get_bytes() -> bytes:
        return b"\x00\x01raw"

    @app.get("/text")
    def get_text() -> str:
        return "héllo"

    @app.get("/custom")
    def custom() -> quicklane.Response:
        return quicklane.Response({"made": True}, status=201, headers={"X-Custom": "yes"})

    @app.get("/custom-type")
    def custom_type() -> quicklane.Response:
        return quicklane.Response("<b>hi</b>", media_type="text/html")

    @app.get("/teapot")
    def teapot() -> None:
        raise quicklane.HTTPError(418, "short and stout", headers={"X-Tea": "earl grey"})

    @app.get("/missing")
    async def missing() -> None:
        raise quicklane.HTTPError(404)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("kaboom")

    @app.get("/aboom")
    async def aboom() -> None:
        await asyncio.sleep(0)
        raise ValueError("async kaboom")

    @app.get("/bad-header")
    def bad_header() -> quicklane.Response:
        return quicklane.Response("x", headers={"Content-Length": "5"})

    @app.get("/sleep")
    def sleep(req: quicklane.Request) -> dict[str, float]:
        t = float(req.query.get("t", "0.2"))
        with sleeping["sync"]:
            time.sleep(t)
        return {"slept": t}

    @app.get("/asleep")
    async def asleep(req: quicklane.Request) -> dict[str, float]:
        t = float(req.query.get("t", "0.2"))
        with sleeping["async"]:
            await asyncio.sleep(t)
        return {"slept": t}

    @app.get("/block")
    def block() -> str:
        state["release"].wait(10)
        return "released"

    @app.get("/hang")
    async def hang() -> str:
        state["started"].set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            state["cancelled"] += 1
            raise
        state["finished"] += 1
        return "late"

    @app.get("/keep")
    async def keep(req: quicklane.Request) -> dict[str, Any]:
        state["kept"] = req
        _ = req.method
        return {"ok": True}

    return app


@pytest.fixture(scope="module")
def server() -> Iterator[quicklane.Server]:
    srv = make_app().start("127.0.0.1", 0, workers=2, threads=16)
    try:
        yield srv
    finally:
        srv.stop(2.0)


# -- the example contract ------------------------------------------------------

def test_contract(server: quicklane.Server) -> None:
    p = server.port
    r = fetch(p, "GET", "/ping")
    assert r.status == 200 and r.json() == {"message": "pong"}
    assert r.headers["content-type"] == "application/json"
    r = fetch(p, "GET", "/hello/world")
    assert r.status == 200 and r.json() == {"hello": "world"}
    r = fetch(p, "POST", "/echo", b'{"a": [1, 2.5, "\\u00e9", {"b": null}]}', {"Content-Type": "application/json"})
    assert r.status == 200 and r.json() == {"a": [1, 2.5, "é", {"b": None}]}
    r = fetch(p, "POST", "/echo", b"{not json")
    assert r.status == 400 and "detail" in r.json()
    r = fetch(p, "GET", "/nope")
    assert r.status == 404 and "detail" in r.json()
    r = fetch(p, "DELETE", "/ping")
    assert r.status == 405 and "GET" in r.headers["allow"]
    r = fetch(p, "HEAD", "/hello/x")
    assert r.status == 200 and r.body == b""


def test_static_text_and_headers(server: quicklane.Server) -> None:
    r = fetch(server.port, "GET", "/static/text")
    assert r.status == 200 and r.body == b"plain"
    assert r.headers["x-static"] == "1" and r.headers["content-type"].startswith("text/plain")


# -- request access ----------------------------------------------------------------

def test_params_query_headers_body_non_ascii(server: quicklane.Server) -> None:
    r = fetch(server.port, "POST", "/inspect/caf%C3%A9/x/%E2%9C%93?q=%C3%BCber+alles&q=2&z",
              "ça va ✓".encode(), {"X-Test-Header": "v1"})
    assert r.status == 405  # the route is GET only: the core answers
    r = fetch(server.port, "GET", "/inspect/caf%C3%A9/x/%E2%9C%93?q=%C3%BCber+alles&q=2&z",
              "ça va ✓".encode(), {"X-Test-Header": "v1"})
    assert r.status == 200, r.body
    j = r.json()
    assert j["method"] == "GET"
    assert j["path"] == "/inspect/caf%C3%A9/x/%E2%9C%93"
    assert j["a"] == "café" and j["rest"] == "x/✓"
    assert j["params"] == {"a": "café", "rest": "x/✓"}
    assert j["q"] == "über alles" and j["qs"] == ["über alles", "2"]
    assert j["ua"] == j["ua_lower"] == j["one"] == "v1"
    assert j["client"] == ["127.0.0.1", True]
    assert j["body"] == "ça va ✓"


def test_sync_json_body(server: quicklane.Server) -> None:
    r = fetch(server.port, "POST", "/echo-sync", '{"ünï": "cödé", "n": 1e3}'.encode())
    assert r.status == 200 and r.json() == {"ünï": "cödé", "n": 1000.0}
    r = fetch(server.port, "POST", "/echo-sync", b"[1,")
    assert r.status == 400


def test_typed_path_param(server: quicklane.Server) -> None:
    assert fetch(server.port, "GET", "/items/42").json() == {"id": 42, "type": "int"}
    r = fetch(server.port, "GET", "/items/abc")
    # checked natively, in FastAPI's shape
    assert r.status == 422 and r.json()["detail"][0]["loc"] == ["path", "item_id"]
    assert r.json()["detail"][0]["type"] == "int_parsing"


def test_return_types(server: quicklane.Server) -> None:
    p = server.port
    r = fetch(p, "GET", "/bytes")
    assert r.body == b"\x00\x01raw" and r.headers["content-type"] == "application/octet-stream"
    r = fetch(p, "GET", "/text")
    assert r.body == "héllo".encode() and r.headers["content-type"].startswith("text/plain")
    r = fetch(p, "GET", "/custom")
    assert r.status == 201 and r.json() == {"made": True} and r.headers["x-custom"] == "yes"
    r = fetch(p, "GET", "/custom-type")
    assert r.headers["content-type"] == "text/html" and r.body == b"<b>hi</b>"
    assert fetch(p, "GET", "/both").body == b"GET ok"
    assert fetch(p, "POST", "/both", b"").body == b"POST ok"


# -- errors ----------------------------------------------------------------------------

def test_http_error(server: quicklane.Server) -> None:
    r = fetch(server.port, "GET", "/teapot")
    assert r.status == 418 and r.json() == {"detail": "short and stout"} and r.headers["x-tea"] == "earl grey"
    r = fetch(server.port, "GET", "/missing")
    assert r.status == 404 and r.json() == {"detail": "Not Found"}


def test_exceptions_give_500_and_server_lives_on(server: quicklane.Server, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="quicklane"):
        for path in ("/boom", "/aboom", "/bad-header"):
            r = fetch(server.port, "GET", path)
            assert r.status == 500 and r.json() == {"detail": "Internal Server Error"}
    text = caplog.text
    assert "kaboom" in text and "async kaboom" in text and "Traceback" in text
    assert "Content-Length" in text  # the refused header is named in the log
    assert fetch(server.port, "GET", "/hello/alive").json() == {"hello": "alive"}
    assert fetch(server.port, "GET", "/ping").status == 200


def test_request_data_after_answer(server: quicklane.Server) -> None:
    assert fetch(server.port, "GET", "/keep").json() == {"ok": True}
    kept: quicklane.Request = state["kept"]
    assert kept.method == "GET"  # copied while the request was live
    with pytest.raises(ValueError, match="after the request was answered"):
        _ = kept.headers
    assert kept.answered


# -- concurrency -------------------------------------------------------------------------

def test_200_concurrent_slow_sync_requests(server: quicklane.Server) -> None:
    with ThreadPoolExecutor(200) as ex:
        results = list(ex.map(lambda _: fetch(server.port, "GET", "/sleep?t=0.2", timeout=30).status, range(200)))
    assert results == [200] * 200
    # The pool (16 threads here) runs the sleeps side by side, never one at a time.
    assert sleeping["sync"].peak >= 8, sleeping["sync"].peak


def test_200_concurrent_async_requests(server: quicklane.Server) -> None:
    with ThreadPoolExecutor(200) as ex:
        results = list(ex.map(lambda _: fetch(server.port, "GET", "/asleep?t=0.2", timeout=30).status, range(200)))
    assert results == [200] * 200
    # One asyncio loop overlaps the awaits: far more than a thread pool's worth at once.
    assert sleeping["async"].peak >= 50, sleeping["async"].peak


def test_slow_sync_handler_does_not_hold_back_a_fast_one(server: quicklane.Server) -> None:
    with ThreadPoolExecutor(2) as ex:
        slow = ex.submit(fetch, server.port, "GET", "/sleep?t=1.5")
        time.sleep(0.05)
        assert fetch(server.port, "GET", "/hello/fast").status == 200
        assert not slow.done()  # answered while the slow one still sleeps
        assert slow.result().status == 200


def test_native_ping_while_every_python_thread_is_busy(server: quicklane.Server) -> None:
    state["release"].clear()
    ex = ThreadPoolExecutor(40)
    try:
        futs = [ex.submit(fetch, server.port, "GET", "/block", None, None, 30) for _ in range(32)]
        time.sleep(0.3)  # every one of the 16 pool threads is now blocked in a handler
        for _ in range(20):
            r = fetch(server.port, "GET", "/ping", timeout=2)
            assert r.status == 200 and r.json() == {"message": "pong"}
        # async handlers run on their own loop: unaffected too
        assert fetch(server.port, "GET", "/asleep?t=0", timeout=2).status == 200
        assert not any(f.done() for f in futs)
    finally:
        state["release"].set()
        assert all(f.result().body == b"released" for f in futs)
        ex.shutdown()


def test_client_disconnect_before_async_handler_finishes(server: quicklane.Server,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    state["started"].clear()
    before = state["cancelled"]
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
    assert state["started"].wait(5)
    s.close()
    deadline = time.monotonic() + 5
    while state["cancelled"] == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert state["cancelled"] == before + 1 and state["finished"] == 0
    # nothing leaks: the request slot was freed
    deadline = time.monotonic() + 5
    while server.stats()["requests_in_flight"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.stats()["requests_in_flight"] == 0
    assert fetch(server.port, "GET", "/hello/after").status == 200
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text  # no error escapes


def test_client_disconnect_during_sync_handler() -> None:
    app = quicklane.App()
    gate = threading.Event()
    done = threading.Event()

    @app.get("/slow")
    def slow() -> str:
        gate.wait(5)
        done.set()
        return "late"

    with app.start("127.0.0.1", 0, workers=1, threads=2) as srv:
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)
        s.close()
        time.sleep(0.1)
        gate.set()
        assert done.wait(5)
        deadline = time.monotonic() + 5
        while srv.stats()["requests_in_flight"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert srv.stats()["requests_in_flight"] == 0
        assert fetch(srv.port, "GET", "/slow").body == b"late"


def test_pipelined_requests_answered_in_order(server: quicklane.Server) -> None:
    burst = b"".join(b"GET /hello/p%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(10))
    burst += b"GET /hello/last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    out = raw(server.port, burst)
    order = [int(x.split(b'"}')[0]) for x in out.split(b'{"hello":"p')[1:]]
    assert order == list(range(10)) and b'{"hello":"last"}' in out


# -- lifecycle ---------------------------------------------------------------------------

def test_start_stop_repeatedly() -> None:
    app = make_app()
    for _ in range(5):
        srv = app.start("127.0.0.1", 0, workers=1, threads=2)
        assert fetch(srv.port, "GET", "/hello/again").json() == {"hello": "again"}
        assert fetch(srv.port, "POST", "/echo", b"[1]").json() == [1]
        srv.stop(1.0)
        with pytest.raises(OSError):
            fetch(srv.port, "GET", "/ping", timeout=1)


def test_stop_drains_in_flight_requests() -> None:
    app = make_app()
    srv = app.start("127.0.0.1", 0, workers=1, threads=4)
    with ThreadPoolExecutor(4) as ex:
        futs = [ex.submit(fetch, srv.port, "GET", p) for p in ("/sleep?t=0.3", "/asleep?t=0.3")]
        time.sleep(0.1)
        srv.stop(5.0)
        assert [f.result().status for f in futs] == [200, 200]


def test_port_in_use_and_bad_route() -> None:
    app = quicklane.App()
    app.static("GET", "/x", "x")
    with app.start("127.0.0.1", 0, workers=1) as srv:
        with pytest.raises(quicklane.NativeError):
            app.start("127.0.0.1", srv.port, workers=1)
    bad = quicklane.App()
    bad.static("GET", "/a/{x}", "1")
    bad.static("GET", "/a/{y}", "2")
    with pytest.raises(quicklane.NativeError, match="conflict"):
        bad.start("127.0.0.1", 0)
    with pytest.raises(TypeError, match="path parameter"):
        @quicklane.App().get("/u/{uid}")
        def f() -> None: ...


def test_serve_on_callers_asyncio_loop() -> None:
    app = quicklane.App()
    loop_ids: list[int] = []

    @app.get("/where")
    async def where() -> dict[str, bool]:
        loop_ids.append(id(asyncio.get_running_loop()))
        return {"ok": True}

    async def main() -> None:
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(app.serve("127.0.0.1", 0, workers=1, started=ready.set_result))
        port = await ready
        r = await asyncio.to_thread(fetch, port, "GET", "/where")
        assert r.json() == {"ok": True}
        assert loop_ids == [id(asyncio.get_running_loop())]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_example_runs_and_stops_on_signal(sig: int) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PORT=str(port), WORKERS="2")
    proc = subprocess.Popen([sys.executable, str(ROOT / "examples/python/hello.py")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                r = fetch(port, "GET", "/ping", timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.05)
        assert r.json() == {"message": "pong"}
        assert fetch(port, "GET", "/hello/sig").json() == {"hello": "sig"}
        assert fetch(port, "POST", "/echo", b'{"x":1}').json() == {"x": 1}
        assert fetch(port, "POST", "/echo", b"{").status == 400
        proc.send_signal(sig)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
