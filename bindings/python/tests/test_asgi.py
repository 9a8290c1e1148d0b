"""FastAPI and Starlette apps run unchanged under quicklane (App.mount, ASGI 3),
compared with the same apps run in-process through Starlette's TestClient."""
from __future__ import annotations

import hashlib
import logging
import socket
import time
from typing import Any, Iterator

import pytest
from starlette.testclient import TestClient

import fw_apps
import quicklane
from compat import Req, Res, assert_same, over_socket, served, settle, via_httpx_client
from conftest import load_example

ASCII_FILE = bytes(range(256)) * 300  # 76,800 bytes, every byte value


@pytest.fixture(scope="module")
def fa() -> Iterator[tuple[int, TestClient]]:
    with served(fw_apps.fastapi_app) as srv, TestClient(fw_apps.fastapi_app, raise_server_exceptions=False) as tc:
        yield srv.port, tc


FASTAPI_CASES = {
    "path-query-header": Req("GET", "/items/42", params=[("q", "hello world"), ("tag", "a"), ("tag", "b")],
                             headers=[("X-Token", "t0k"), ("X-Multi", "one"), ("X-Multi", "two")]),
    "non-ascii-query": Req("GET", "/items/7", params={"q": "grüße 世界 & =?"}),
    "validation-422": Req("GET", "/items/notanint"),
    "percent-path": Req("GET", "/path/caf%C3%A9/a%20b?x=%2F&x=2&y"),
    "encoded-slash": Req("GET", "/path/a%2Fb"),
    "json-body": Req("POST", "/items", json={"name": "pen", "price": 1.5, "tags": ["x", "ü"]}),
    "json-422": Req("POST", "/items", json={"name": "pen", "price": "cheap"}),
    "json-invalid": Req("POST", "/items", content=b"{not json", headers={"Content-Type": "application/json"}),
    "form": Req("POST", "/form", data={"name": "Zoë", "tags": ["a", "b"]}),
    "multipart": Req("POST", "/upload", files={"file": ("data.bin", ASCII_FILE, "application/x-thing")},
                     data={"note": "hi"}),
    "custom-exception-handler": Req("GET", "/teapot/earl%20grey"),
    "http-exception": Req("GET", "/missing"),
    "unhandled-500": Req("GET", "/boom"),
    "unhandled-500-sync": Req("GET", "/boom-sync"),
    "redirect": Req("GET", "/redirect"),
    "cookies": Req("GET", "/cookies", headers={"Cookie": "a=1; b=two"}),
    "streaming": Req("GET", "/stream"),
    "streaming-sync-iterator": Req("GET", "/stream-sync"),
    "not-found": Req("GET", "/nowhere"),
    "method-not-allowed": Req("DELETE", "/items/1"),
    "head-on-get-only": Req("HEAD", "/items/1"),
    "lifespan-state": Req("GET", "/state"),
    "large-response": Req("GET", "/big/2048"),
    "large-body": Req("POST", "/size", content=bytes(range(256)) * 3600),  # 921,600 bytes
    "non-ascii-response": Req("GET", "/nonascii"),
}


@pytest.mark.parametrize("name", sorted(FASTAPI_CASES))
def test_fastapi_same_as_testclient(fa: tuple[int, TestClient], name: str) -> None:
    port, tc = fa
    req = FASTAPI_CASES[name]
    ours = over_socket(port, req)
    ref = via_httpx_client(tc, req)
    assert_same(ours, ref)


def test_fastapi_details(fa: tuple[int, TestClient]) -> None:
    port, _ = fa
    r = over_socket(port, Req("GET", "/stream"))
    assert r.get("transfer-encoding") == "chunked" and r.body == b"".join(f"chunk {i}\n".encode() for i in range(5))
    r = over_socket(port, Req("POST", "/size", content=b"z" * 200_000))
    assert r.status == 200 and r.body.startswith(b'{"size":200000,') and b'"chunked":true' in r.body
    r = over_socket(port, Req("GET", "/state"))
    assert r.body == b'{"db":"connected","n":42}'
    # Through BaseHTTPMiddleware the body comes in pieces with a declared length:
    # up to 1 MiB it is gathered, beyond it is streamed; either way with its
    # Content-Length (as uvicorn), not chunked.
    r = over_socket(port, Req("GET", "/big/512"))
    assert r.get("content-length") == str(512 * 1024) and len(r.body) == 512 * 1024
    assert r.get("x-middleware") == "GET"
    r = over_socket(port, Req("GET", "/big/2048"))
    assert r.get("transfer-encoding") is None and r.get("content-length") == str(2048 * 1024)
    assert len(r.body) == 2048 * 1024


def test_fastapi_background_task(fa: tuple[int, TestClient]) -> None:
    port, _ = fa
    r = over_socket(port, Req("POST", "/bg/job-1"))
    assert r.status == 200 and r.body == b'{"scheduled":"job-1"}'
    for _ in range(200):
        if "job-1" in fw_apps.events["bg"]:
            break
        time.sleep(0.01)
    assert "job-1" in fw_apps.events["bg"]


def test_body_over_limit_is_413() -> None:
    qa = quicklane.App()
    qa.mount(fw_apps.fastapi_app)
    with qa.start(port=0, workers=1, max_body_bytes=1000) as srv:
        r = over_socket(srv.port, Req("POST", "/size", content=b"x" * 5000))
        assert r.status == 413
        r = over_socket(srv.port, Req("POST", "/size", content=b"x" * 500))
        assert r.status == 200 and b'"size":500' in r.body


def test_lifespan_startup_and_shutdown() -> None:
    fw_apps.events["lifespan"].clear()
    with served(fw_apps.fastapi_app) as srv:
        assert fw_apps.events["lifespan"] == ["startup"]
        assert over_socket(srv.port, Req("GET", "/state")).status == 200
    assert fw_apps.events["lifespan"] == ["startup", "shutdown"]


def test_client_disconnect_mid_stream(fa: tuple[int, TestClient]) -> None:
    port, _ = fa
    fw_apps.events["stream_closed"].clear()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while b"tick" not in got:
            chunk = s.recv(4096)
            assert chunk
            got += chunk
        assert b"text/event-stream" in got and b"chunked" in got
    # The app hears http.disconnect and its generator is closed.
    assert fw_apps.events["stream_closed"].wait(5.0)


def test_backpressure_bounds_memory(fa: tuple[int, TestClient]) -> None:
    """A client that stops reading holds the producer back (bounded buffering)."""
    port, _ = fa
    fw_apps.events["produced"] = 0
    total = 64 << 20
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /big-stream/64 HTTP/1.1\r\nHost: x\r\n\r\n")
        received = 0
        while received < (1 << 20):
            chunk = s.recv(65536)
            assert chunk
            received += len(chunk)
        # Stop reading: production must stall well short of the 64 MiB.
        last = -1
        for _ in range(40):
            time.sleep(0.05)
            now = fw_apps.events["produced"]
            if now == last:
                break
            last = now
        stalled = fw_apps.events["produced"]
        print(f"produced while the client paused: {stalled} bytes")
        assert stalled < 24 << 20, stalled
        while received < total:
            chunk = s.recv(1 << 20)
            assert chunk
            received += len(chunk)
    assert fw_apps.events["produced"] == total


@pytest.fixture(scope="module")
def st() -> Iterator[tuple[int, TestClient]]:
    with served(fw_apps.starlette_app) as srv, TestClient(fw_apps.starlette_app) as tc:
        yield srv.port, tc


STARLETTE_CASES = {
    "scope": Req("GET", "/scope/a%20b/%C3%A9?x=1&x=%C3%A9&flag",
                 headers=[("X-One", "1"), ("X-Dup", "a"), ("X-Dup", "b"), ("X-Latin", "caf\u00e9".encode("latin-1"))]),
    "scope-post": Req("POST", "/scope/p", content=b"abc"),
    "head": Req("HEAD", "/plain"),
    "get": Req("GET", "/plain"),
    "no-content": Req("DELETE", "/empty"),
}


@pytest.mark.parametrize("name", sorted(STARLETTE_CASES))
def test_starlette_same_as_testclient(st: tuple[int, TestClient], name: str) -> None:
    port, tc = st
    req = STARLETTE_CASES[name]
    ours, ref = over_socket(port, req), via_httpx_client(tc, req)
    if name.startswith("scope"):
        # The test client's scope lacks "asgi"; the rest must match.
        import json

        assert ours.status == ref.status == 200
        a, b = json.loads(ours.body), json.loads(ref.body)
        assert a.pop("asgi") == "3.0" and b.pop("asgi") is None
        # TestClient re-encodes a latin-1 header value as UTF-8; the server passes the bytes as sent.
        assert ["x-latin", "caf\u00e9"] in a["headers"] or name != "scope"
        a["headers"] = [h for h in a["headers"] if h[0] != "x-latin"]
        b["headers"] = [h for h in b["headers"] if h[0] != "x-latin"]
        assert a == b
        return
    assert_same(ours, ref)


def test_scope_details(st: tuple[int, TestClient]) -> None:
    port, _ = st
    r = over_socket(port, STARLETTE_CASES["scope"])
    import json

    s = json.loads(r.body)
    assert s["path"] == "/scope/a b/é" and s["raw_path"] == "/scope/a%20b/%C3%A9"
    assert s["query_string"] == "x=1&x=%C3%A9&flag" and s["http_version"] == "1.1"
    assert s["headers"] == [["x-one", "1"], ["x-dup", "a"], ["x-dup", "b"], ["x-latin", "caf\u00e9"]]
    assert s["lower"] and s["bytes"] and s["asgi"] == "3.0" and s["client"] and s["scheme"] == "http"


def test_root_path() -> None:
    with served(fw_apps.starlette_app, root_path="/api") as srv:
        import json

        r = over_socket(srv.port, Req("GET", "/scope/x"))
        s = json.loads(r.body)
        assert s["root_path"] == "/api" and s["path"] == "/api/scope/x" and s["raw_path"] == "/api/scope/x"


def test_protocol_misuse_is_answered_and_server_lives(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="quicklane")
    with served(fw_apps.misuse_app) as srv:
        for path in ("/body-first", "/two-starts", "/no-response", "/raise"):
            r = over_socket(srv.port, Req("GET", path))
            assert r.status == 500, path
        assert over_socket(srv.port, Req("GET", "/fine")).body == b"ok"
        fw_apps.events["after"] = None
        assert over_socket(srv.port, Req("POST", "/receive-after", content=b"body!")).body == b"body!"
        for _ in range(100):
            if fw_apps.events["after"] is not None:
                break
            time.sleep(0.01)
        assert fw_apps.events["after"] == "http.disconnect"
        assert settle(srv) == 0
    text = caplog.text
    assert "before http.response.start" in text and "sent twice" in text
    assert "without starting a response" in text and "app crashed" in text


def test_mount_behind_native_routes() -> None:
    qa = quicklane.App()
    qa.static("GET", "/ping", {"message": "native"})

    @qa.get("/py/{name}")
    def py(name: str) -> dict[str, str]:
        return {"py": name}

    qa.mount(fw_apps.fastapi_app)
    with qa.start(port=0, workers=1) as srv:
        assert over_socket(srv.port, Req("GET", "/ping")).body == b'{"message":"native"}'
        r = over_socket(srv.port, Req("HEAD", "/ping"))  # the core answers HEAD from its GET route
        assert r.status == 200 and r.body == b"" and r.get("content-length") == "20"
        assert over_socket(srv.port, Req("POST", "/ping")).body == b'{"detail":"Not Found"}'  # FastAPI's
        assert over_socket(srv.port, Req("GET", "/py/x")).body == b'{"py":"x"}'
        r = over_socket(srv.port, Req("GET", "/items/5?q=z"))
        assert r.status == 200 and b'"item_id":5' in r.body and b'"q":"z"' in r.body
        assert over_socket(srv.port, Req("GET", "/")).status == 404  # FastAPI's own 404


def test_fastapi_example_contract() -> None:
    mod = load_example("fastapi_app")
    with mod.app.start(port=0, workers=1) as srv:
        p = srv.port
        assert over_socket(p, Req("GET", "/ping")).body == b'{"message":"pong"}'
        assert over_socket(p, Req("GET", "/hello/w%C3%B6rld")).body == '{"hello":"wörld"}'.encode()
        r = over_socket(p, Req("POST", "/echo", content=b'{"a":[1,2]}'))
        assert r.status == 200 and r.body == b'{"a":[1,2]}'
        assert over_socket(p, Req("POST", "/echo", content=b"{bad")).status == 400
        r = over_socket(p, Req("GET", "/nope"))
        assert r.status == 404 and r.get("content-type") == "application/json"
        r = over_socket(p, Req("DELETE", "/hello/x"))
        assert r.status == 405 and r.get("allow") == "GET"


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_res_helper() -> None:
    assert Res(200, [("A", "1")], b"").get("a") == "1" and _sha(b"") != ""


def test_http10_stream_is_close_delimited(fa: tuple[int, TestClient]) -> None:
    from conftest import raw

    port, _ = fa
    out = raw(port, b"GET /stream HTTP/1.0\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") and b"Transfer-Encoding" not in head and b"Connection: close" in head
    assert body == b"".join(f"chunk {i}\n".encode() for i in range(5))


def test_http10_scope_version(st: tuple[int, TestClient]) -> None:
    from conftest import raw
    import json

    port, _ = st
    out = raw(port, b"GET /scope/v HTTP/1.0\r\n\r\n")
    assert json.loads(out.partition(b"\r\n\r\n")[2])["http_version"] == "1.0"
