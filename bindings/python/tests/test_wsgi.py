"""Flask (WSGI, PEP 3333) apps run unchanged under quicklane, compared with the
same app in-process through Flask's test client."""
from __future__ import annotations

import json
import logging
import socket
import threading
import time
from typing import Any, Iterator

import pytest

import fw_apps
import quicklane
from compat import Req, assert_same, over_socket, served, settle, via_flask
from conftest import load_example

UPLOAD = bytes(range(256)) * 300


@pytest.fixture(scope="module")
def fl() -> Iterator[tuple[int, Any]]:
    with served(fw_apps.flask_app) as srv:
        yield srv.port, fw_apps.flask_app.test_client()


FLASK_CASES = {
    "path-query-header": Req("GET", "/items/42", params=[("q", "hello world"), ("tag", "a"), ("tag", "b")],
                             headers={"X-Token": "t0k", "User-Agent": "compat/1"}),
    "non-ascii-query": Req("GET", "/items/7", params={"q": "grüße 世界 & =?"}),
    "converter-404": Req("GET", "/items/notanint"),
    "percent-path": Req("GET", "/path/caf%C3%A9/a%20b?x=%2F&x=2&y="),
    "json-body": Req("POST", "/json", json={"name": "pen", "price": 1.5, "tags": ["x", "ü"]}),
    "json-invalid": Req("POST", "/json", content=b"{not json", headers={"Content-Type": "application/json"}),
    "form": Req("POST", "/form", data={"name": "Zoë", "tags": ["a", "b"]}),
    "multipart": Req("POST", "/upload", files={"file": ("data.bin", UPLOAD, "application/x-thing")},
                     data={"note": "hi"}),
    "custom-error-handler": Req("GET", "/teapot/earl%20grey"),
    "abort-404": Req("GET", "/missing"),
    "unhandled-500": Req("GET", "/boom"),
    "redirect": Req("GET", "/redirect"),
    "cookies": Req("GET", "/cookies", headers={"Cookie": "a=1; b=two"}),
    "streaming": Req("GET", "/stream"),
    "not-found": Req("GET", "/nowhere"),
    "method-not-allowed": Req("DELETE", "/items/1"),
    "head": Req("HEAD", "/items/1?q=h"),
    "large-response": Req("GET", "/big/2048"),
    "large-body": Req("POST", "/size", content=bytes(range(256)) * 3600),
}


@pytest.mark.parametrize("name", sorted(FLASK_CASES))
def test_flask_same_as_test_client(fl: tuple[int, Any], name: str) -> None:
    port, client = fl
    req = FLASK_CASES[name]
    assert_same(over_socket(port, req), via_flask(client, req))


def test_flask_details(fl: tuple[int, Any]) -> None:
    port, _ = fl
    r = over_socket(port, Req("GET", "/stream"))
    assert r.get("transfer-encoding") == "chunked" and r.body == b"".join(f"chunk {i}\n".encode() for i in range(5))
    r = over_socket(port, Req("GET", "/path/caf%C3%A9?x=1"))
    assert json.loads(r.body)["rest"] == "café"
    r = over_socket(port, Req("HEAD", "/big/3"))
    assert r.status == 200 and r.body == b"" and r.get("content-length") == "3072"


def test_write_callable_and_root_path() -> None:
    with served(fw_apps.write_app, root_path="/app") as srv:
        r = over_socket(srv.port, Req("GET", "/x"))
        assert r.status == 200 and r.body == b"hello from write(); and the iterable" and r.get("x-write") == "1"
    with served(fw_apps.flask_app, root_path="/app") as srv:
        r = over_socket(srv.port, Req("GET", "/path/q"))
        assert json.loads(r.body)["script"] == "/app"


def test_slow_wsgi_does_not_block_native_routes() -> None:
    qa = quicklane.App()
    qa.static("GET", "/ping", "pong")
    qa.mount(fw_apps.slow_wsgi)
    with qa.start(port=0, workers=1, threads=4) as srv:
        out: list[int] = []
        ts = [threading.Thread(target=lambda: out.append(over_socket(srv.port, Req("GET", "/slow")).status))
              for _ in range(3)]
        for t in ts:
            t.start()
        assert over_socket(srv.port, Req("GET", "/ping")).body == b"pong"
        for t in ts:
            t.join(10)
        assert out == [200, 200, 200]


def test_wsgi_client_disconnect_stops_the_iterable(fl: tuple[int, Any]) -> None:
    port, _ = fl
    fw_apps.events["flask_stream_closed"].clear()
    fw_apps.events["flask_produced"] = 0
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
        got = 0
        while got < 512 * 1024:
            chunk = s.recv(65536)
            assert chunk
            got += len(chunk)
        # Paused reader: the pool thread is held back (bounded), not buffering 6 GB.
        last = -1
        for _ in range(40):
            time.sleep(0.05)
            if fw_apps.events["flask_produced"] == last:
                break
            last = fw_apps.events["flask_produced"]
        assert fw_apps.events["flask_produced"] < 24 << 20
    # Closed: the next write sees the client gone and the iterable is closed.
    assert fw_apps.events["flask_stream_closed"].wait(5.0)


def test_wsgi_errors_are_500_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="quicklane")

    def no_start(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        return [b"never started"]

    def bad_header(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("X-Bad", "a\r\nb")])
        return [b"x"]

    for app in (no_start, bad_header):
        with served(app) as srv:
            assert over_socket(srv.port, Req("GET", "/")).status == 500
            assert settle(srv) == 0
    assert "without calling start_response" in caplog.text and "invalid WSGI response" in caplog.text


def test_flask_example_contract() -> None:
    mod = load_example("flask_app")
    with mod.app.start(port=0, workers=1) as srv:
        p = srv.port
        assert over_socket(p, Req("GET", "/ping")).body == b'{"message":"pong"}'
        assert json.loads(over_socket(p, Req("GET", "/hello/w%C3%B6rld")).body) == {"hello": "wörld"}
        r = over_socket(p, Req("POST", "/echo", content=b'{"a":[1,2]}'))
        assert r.status == 200 and json.loads(r.body) == {"a": [1, 2]}
        assert over_socket(p, Req("POST", "/echo", content=b"{bad")).status == 400
        r = over_socket(p, Req("GET", "/nope"))
        assert r.status == 404 and r.get("content-type") == "application/json"
        r = over_socket(p, Req("DELETE", "/hello/x"))
        assert r.status == 405 and "GET" in (r.get("allow") or "")
