"""Streamed request bodies: uploads of any size reach the app as they arrive,
with bounded memory — FastAPI (UploadFile, request.stream()), Flask
(request.stream, request.files), and the native API (req.stream())."""
from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import threading
import time
from typing import Any, AsyncIterator, Callable, Iterator, Optional

import pytest
from fastapi import FastAPI, File, Request, UploadFile
from flask import Flask, jsonify, request

import quicklane

MIB = 1 << 20


def piece(i: int, n: int) -> bytes:
    """Deterministic, incompressible-enough upload bytes (made on the fly)."""
    seed = hashlib.sha256(i.to_bytes(8, "little")).digest()
    return (seed * (n // 32 + 1))[:n]


def pieces(total: int, chunk: int = 256 * 1024) -> Iterator[bytes]:
    off = i = 0
    while off < total:
        n = min(chunk, total - off)
        yield piece(i, n)
        off += n
        i += 1


def digest(total: int) -> str:
    h = hashlib.sha256()
    for p in pieces(total):
        h.update(p)
    return h.hexdigest()


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def upload(port: int, path: str, parts: Iterator[bytes], *, length: Optional[int] = None,
           headers: Optional[dict[str, str]] = None, prefix: bytes = b"", suffix: bytes = b"",
           timeout: float = 60.0) -> tuple[int, bytes]:
    """Sends a body piece by piece (Content-Length when length is given, else chunked)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        head = f"POST {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
        for k, v in (headers or {}).items():
            head += f"{k}: {v}\r\n"
        head += f"Content-Length: {length}\r\n\r\n" if length is not None else "Transfer-Encoding: chunked\r\n\r\n"
        s.sendall(head.encode())

        def frame(b: bytes) -> bytes:
            return b if length is not None else b"%x\r\n%s\r\n" % (len(b), b)

        if prefix:
            s.sendall(frame(prefix))
        for p in parts:
            s.sendall(frame(p))
        if suffix:
            s.sendall(frame(suffix))
        if length is None:
            s.sendall(b"0\r\n\r\n")
        out = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            out += c
    status = int(out.split(b" ", 2)[1])
    return status, out.split(b"\r\n\r\n", 1)[1]


def serve(app: Any, **kw: Any) -> quicklane.Server:
    if isinstance(app, quicklane.App):
        return app.start(port=0, workers=1, threads=4, **kw)
    qa = quicklane.App()
    qa.mount(app)
    return qa.start(port=0, workers=1, threads=4, **kw)


# 64 MiB in `make test`; `SOAK_MODE=upload make soak` sets 1 GiB.
TOTAL = int(os.environ.get("QL_UPLOAD_MIB", "64")) * MIB
WANT = digest(TOTAL)


def check_upload(port: int, path: str, chunked: bool, grown_limit_kib: int = 32 * 1024, **kw: Any) -> bytes:
    before = rss_kib()
    status, body = upload(port, path, pieces(TOTAL), length=None if chunked else TOTAL, **kw)
    grown = rss_kib() - before
    assert status == 200, body[:300]
    assert grown < grown_limit_kib, f"RSS grew by {grown} KiB"
    return body


# ---- FastAPI ---------------------------------------------------------------

def fastapi_app() -> Any:
    app = FastAPI()

    @app.post("/stream")
    async def stream(request: Request) -> dict[str, Any]:
        h = hashlib.sha256()
        n = 0
        async for chunk in request.stream():
            h.update(chunk)
            n += len(chunk)
        return {"sha256": h.hexdigest(), "size": n}

    @app.post("/file")
    async def file(file: UploadFile = File()) -> dict[str, Any]:
        h = hashlib.sha256()
        n = 0
        while data := await file.read(MIB):
            h.update(data)
            n += len(data)
        return {"sha256": h.hexdigest(), "size": n, "name": file.filename}

    return app


@pytest.fixture(scope="module")
def fa() -> Iterator[int]:
    srv = serve(fastapi_app())
    try:
        yield srv.port
    finally:
        srv.stop(3.0)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_fastapi_request_stream_64mib(fa: int, chunked: bool) -> None:
    import json

    r = json.loads(check_upload(fa, "/stream", chunked))
    assert r == {"sha256": WANT, "size": TOTAL}


def test_fastapi_uploadfile_64mib(fa: int) -> None:
    import json

    boundary = "qlboundary7d93"
    pre = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n"
           "Content-Type: application/octet-stream\r\n\r\n").encode()
    post = f"\r\n--{boundary}--\r\n".encode()
    before = rss_kib()
    status, body = upload(fa, "/file", pieces(TOTAL), length=len(pre) + TOTAL + len(post), prefix=pre,
                          suffix=post, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    grown = rss_kib() - before
    assert status == 200, body[:300]
    assert json.loads(body) == {"sha256": WANT, "size": TOTAL, "name": "big.bin"}
    assert grown < 32 * 1024, f"RSS grew by {grown} KiB"


def test_asgi_receive_messages_and_disconnect() -> None:
    """receive() delivers chunks live with more_body; a client that leaves
    mid-body gives http.disconnect."""
    seen: list[Any] = []
    done = threading.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while True:
            m = await receive()
            seen.append((m["type"], len(m.get("body", b"")), m.get("more_body")))
            if m["type"] == "http.disconnect" or not m.get("more_body"):
                break
        if seen[-1][0] == "http.disconnect":
            done.set()
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": str(sum(s[1] for s in seen)).encode()})

    srv = serve(app)
    try:
        status, body = upload(srv.port, "/", pieces(3 * MIB), length=3 * MIB)
        assert status == 200 and body == str(3 * MIB).encode()
        assert len(seen) > 1 and seen[-1][2] is False and all(s[2] for s in seen[:-1])
        seen.clear()
        with socket.create_connection(("127.0.0.1", srv.port)) as s:
            s.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n" + piece(0, 10000))
            time.sleep(0.2)
        assert done.wait(5)
        assert [m for m in seen if m[0] == "http.disconnect"] == [("http.disconnect", 0, None)]
    finally:
        srv.stop(3.0)


# ---- Flask -----------------------------------------------------------------

def flask_app() -> Any:
    app = Flask(__name__)

    @app.post("/stream")
    def stream() -> Any:
        h = hashlib.sha256()
        n = 0
        while data := request.stream.read(MIB):
            h.update(data)
            n += len(data)
        return jsonify(sha256=h.hexdigest(), size=n)

    @app.post("/files")
    def files() -> Any:
        f = request.files["file"]
        h = hashlib.sha256()
        n = 0
        while data := f.stream.read(MIB):
            h.update(data)
            n += len(data)
        return jsonify(sha256=h.hexdigest(), size=n, name=f.filename)

    return app


@pytest.fixture(scope="module")
def fl() -> Iterator[int]:
    srv = serve(flask_app())
    try:
        yield srv.port
    finally:
        srv.stop(3.0)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_flask_request_stream_64mib(fl: int, chunked: bool) -> None:
    import json

    assert json.loads(check_upload(fl, "/stream", chunked)) == {"sha256": WANT, "size": TOTAL}


def test_flask_request_files(fl: int) -> None:
    import json

    boundary = "qlb0undary"
    total = 16 * MIB
    pre = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.bin\"\r\n"
           "Content-Type: application/octet-stream\r\n\r\n").encode()
    post = f"\r\n--{boundary}--\r\n".encode()
    status, body = upload(fl, "/files", pieces(total), length=len(pre) + total + len(post), prefix=pre,
                          suffix=post, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 200, body[:300]
    assert json.loads(body) == {"sha256": digest(total), "size": total, "name": "f.bin"}


# ---- native API --------------------------------------------------------------

@pytest.fixture(scope="module")
def native() -> Iterator[tuple[int, dict[str, Any]]]:
    app = quicklane.App()
    state: dict[str, Any] = {"disconnects": 0, "read_at": None}

    @app.post("/async", stream=True)
    async def up_async(req: quicklane.Request) -> dict[str, Any]:
        h = hashlib.sha256()
        n = 0
        try:
            async for chunk in req.stream():
                h.update(chunk)
                n += len(chunk)
        except quicklane.ClientDisconnect:
            state["disconnects"] += 1
            raise
        return {"sha256": h.hexdigest(), "size": n}

    @app.post("/sync", stream=True)
    def up_sync(req: quicklane.Request) -> dict[str, Any]:
        h = hashlib.sha256()
        n = 0
        f = req.stream()
        while data := f.read(64 * 1024):
            h.update(data)
            n += len(data)
        return {"sha256": h.hexdigest(), "size": n}

    @app.post("/slow", stream=True)
    def slow(req: quicklane.Request) -> dict[str, Any]:
        h = hashlib.sha256()
        f = req.stream()
        while data := f.read(64 * 1024):
            h.update(data)
            time.sleep(0.0005)
        return {"sha256": h.hexdigest()}

    @app.put("/continue", stream=True)
    def cont(req: quicklane.Request) -> bytes:
        time.sleep(0.3)
        state["read_at"] = time.monotonic()
        return req.stream().read()

    @app.put("/refuse", stream=True)
    def refuse(req: quicklane.Request) -> quicklane.Response:
        return quicklane.Response({"detail": "Not authenticated"}, 401)

    @app.post("/limited", stream=True, max_body_size=MIB)
    async def limited(req: quicklane.Request) -> dict[str, int]:
        n = 0
        async for chunk in req.stream():
            n += len(chunk)
        return {"size": n}

    @app.post("/json", stream=True)
    async def as_json(req: quicklane.Request) -> Any:
        return await req.json()

    @app.get("/ping")
    def ping() -> str:
        return "pong"

    srv = serve(app)
    try:
        yield srv.port, state
    finally:
        srv.stop(3.0)


@pytest.mark.parametrize("path", ["/async", "/sync"])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_native_stream_64mib(native: tuple[int, dict[str, Any]], path: str, chunked: bool) -> None:
    import json

    port, _ = native
    assert json.loads(check_upload(port, path, chunked)) == {"sha256": WANT, "size": TOTAL}


def test_native_slow_reader_memory_bounded(native: tuple[int, dict[str, Any]]) -> None:
    import json

    port, _ = native
    assert json.loads(check_upload(port, "/slow", False)) == {"sha256": WANT}


def test_native_abort_mid_upload_one_disconnect(native: tuple[int, dict[str, Any]]) -> None:
    port, state = native
    before = state["disconnects"]
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /async HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n\r\n" + piece(0, 100000))
    time.sleep(0.2)
    s.close()
    deadline = time.monotonic() + 5
    while state["disconnects"] == before and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert state["disconnects"] == before + 1
    from conftest import fetch

    assert fetch(port, "GET", "/ping").body == b"pong"  # the server goes on


def test_native_100_continue_on_first_read(native: tuple[int, dict[str, Any]]) -> None:
    port, state = native
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"PUT /continue HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        t0 = time.monotonic()
        first = s.recv(100)
        assert first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        assert time.monotonic() - t0 >= 0.25  # not before the handler read
        s.sendall(b"hello")
        rest = first[25:]
        while b"hello" not in rest:
            rest += s.recv(1000)
        assert rest.startswith(b"HTTP/1.1 200")
    # Refused without reading: a 401, no 100, and the connection closes.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"PUT /refuse HTTP/1.1\r\nHost: t\r\nContent-Length: 50000000\r\nExpect: 100-continue\r\n\r\n")
        out = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            out += c
        assert out.startswith(b"HTTP/1.1 401") and b"100 Continue" not in out
        assert b"connection: close" in out.lower()


def test_native_limit_and_json(native: tuple[int, dict[str, Any]]) -> None:
    port, _ = native
    status, body = upload(port, "/limited", pieces(2 * MIB), length=2 * MIB)
    assert status == 413 and b"too large" in body
    status, body = upload(port, "/limited", pieces(3 * MIB))  # chunked: crosses the limit midway
    assert status == 413
    status, body = upload(port, "/limited", pieces(MIB // 2))
    assert status == 200 and body == b'{"size":524288}'
    status, body = upload(port, "/json", iter([b'{"a": [1, ', b'2]}']))
    assert status == 200 and body == b'{"a":[1,2]}'


def test_stream_options_are_checked() -> None:
    app = quicklane.App()
    with pytest.raises(ValueError, match="stream=True"):
        app.post("/x", max_body_size=10)(lambda req: "x")
    with pytest.raises(ValueError, match="body="):
        app.post("/y", stream=True, body={"type": "object"})(lambda req: "x")


# ---- streamed answers from native handlers -----------------------------------

@pytest.fixture(scope="module")
def answers() -> Iterator[tuple[int, dict[str, Any]]]:
    app = quicklane.App()
    state: dict[str, Any] = {"produced": 0, "closed": 0}

    @app.get("/agen")
    async def agen() -> Any:
        async def gen() -> AsyncIterator[bytes]:
            for i in range(3):
                yield f"chunk {i}\n".encode()
                await asyncio.sleep(0.01)
        return quicklane.StreamingResponse(gen(), media_type="text/plain")

    @app.get("/sgen")
    def sgen() -> Any:
        def gen() -> Iterator[str]:
            yield "a"
            yield "b"
        return gen()

    @app.get("/sized")
    def sized() -> Any:
        return quicklane.StreamingResponse(iter([b"abc", b"def"]), media_type="text/plain", content_length=6)

    @app.get("/sse")
    async def sse() -> Any:
        async def events() -> AsyncIterator[Any]:
            yield quicklane.ServerSentEvent({"n": 1}, event="tick", id="1")
            await asyncio.sleep(0.25)
            yield "two\nlines\r\nthree\rfour"
        return quicklane.EventSourceResponse(events(), ping=0.1)

    @app.get("/broken")
    def broken() -> Any:
        def gen() -> Iterator[bytes]:
            yield b"start"
            raise RuntimeError("producer failed")
        return gen()

    @app.get("/endless")
    async def endless() -> Any:
        async def gen() -> AsyncIterator[bytes]:
            try:
                block = b"x" * 65536
                while True:
                    state["produced"] += len(block)
                    yield block
            finally:
                state["closed"] += 1
        return quicklane.StreamingResponse(gen())

    srv = serve(app)
    try:
        yield srv.port, state
    finally:
        srv.stop(3.0)


def test_streamed_answers_async_sync_sized(answers: tuple[int, dict[str, Any]]) -> None:
    from conftest import fetch

    port, _ = answers
    r = fetch(port, "GET", "/agen")
    assert r.status == 200 and r.body == b"chunk 0\nchunk 1\nchunk 2\n"
    assert r.headers.get("transfer-encoding") == "chunked"
    r = fetch(port, "GET", "/sgen")
    assert r.body == b"ab"
    r = fetch(port, "GET", "/sized")
    assert r.body == b"abcdef" and r.headers.get("content-length") == "6" and "transfer-encoding" not in r.headers


def test_sse_events_and_keep_alive(answers: tuple[int, dict[str, Any]]) -> None:
    from conftest import fetch

    port, _ = answers
    r = fetch(port, "GET", "/sse")
    assert r.headers["content-type"] == "text/event-stream" and r.headers["cache-control"] == "no-cache"
    text = r.body.decode()
    assert text.startswith('event: tick\nid: 1\ndata: {"n":1}\n\n')
    assert ": keep-alive\n\n" in text  # the producer was quiet for 0.25 s, pinged every 0.1 s
    assert text.endswith("data: two\ndata: lines\ndata: three\ndata: four\n\n")  # CR, LF, CRLF all end lines


def test_sse_fields_refuse_line_breaks() -> None:
    with pytest.raises(ValueError):
        quicklane.ServerSentEvent("x", event="a\nb")
    with pytest.raises(ValueError):
        quicklane.ServerSentEvent("x", id="1\r")
    assert quicklane.ServerSentEvent("a\r\n", id="7").encode() == b"id: 7\ndata: a\ndata: \n\n"


def test_a_failing_producer_cuts_the_answer(answers: tuple[int, dict[str, Any]]) -> None:
    from conftest import raw

    port, _ = answers
    out = raw(port, b"GET /broken HTTP/1.1\r\nHost: t\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200") and b"start" in out
    assert not out.endswith(b"0\r\n\r\n")  # never a complete message


def test_a_slow_client_pauses_the_producer_and_a_gone_one_stops_it(answers: tuple[int, dict[str, Any]]) -> None:
    port, state = answers
    before_closed = state["closed"]
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /endless HTTP/1.1\r\nHost: t\r\n\r\n")
    time.sleep(0.5)  # not reading: the producer must stop at the core's bound plus the socket buffers
    produced = state["produced"]
    time.sleep(0.3)
    assert state["produced"] == produced  # paused
    assert produced < 64 * MIB
    got = 0
    while got < 8 * MIB:
        got += len(s.recv(1 << 20))
    assert state["produced"] > produced  # reading resumed it
    s.close()
    deadline = time.monotonic() + 5
    while state["closed"] == before_closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert state["closed"] == before_closed + 1
