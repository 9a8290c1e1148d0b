"""Small real apps in FastAPI, Starlette and Flask for the compatibility tests
(also importable by the `quicklane` CLI: `quicklane fw_apps:fastapi_app`)."""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sys
import threading
import time
from typing import Any, AsyncIterator, Iterator, Optional

# -- shared observations (tests read these) ----------------------------------
events: dict[str, Any] = {
    "bg": [], "stream_closed": threading.Event(), "produced": 0, "lifespan": [],
    "flask_stream_closed": threading.Event(), "flask_produced": 0,
}

# ---------------------------------------------------------------------------
# FastAPI
# ---------------------------------------------------------------------------
from fastapi import BackgroundTasks, FastAPI, File, Form, Header, HTTPException, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, StreamingResponse
from pydantic import BaseModel


class Teapot(Exception):
    def __init__(self, name: str) -> None:
        self.name = name


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    events["lifespan"].append("startup")
    yield {"db": "connected", "n": 42}
    events["lifespan"].append("shutdown")
    print("fw_apps: lifespan shutdown", file=sys.stderr, flush=True)


fastapi_app = FastAPI(lifespan=lifespan)


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


@fastapi_app.middleware("http")
async def add_header(request: Request, call_next: Any) -> Any:
    # A BaseHTTPMiddleware in front of every route (common in real apps).
    response = await call_next(request)
    response.headers["X-Middleware"] = request.method
    return response


@fastapi_app.exception_handler(Teapot)
async def teapot_handler(request: Request, exc: Teapot) -> JSONResponse:
    return JSONResponse({"teapot": exc.name}, status_code=418, headers={"X-Teapot": "yes"})


@fastapi_app.get("/items/{item_id}")
async def read_item(item_id: int, q: Optional[str] = None, tag: list[str] = Query(default=[]),
                    x_token: Optional[str] = Header(default=None),
                    x_multi: Optional[list[str]] = Header(default=None)) -> dict[str, Any]:
    return {"item_id": item_id, "q": q, "tag": tag, "x_token": x_token, "x_multi": x_multi}


@fastapi_app.get("/path/{rest:path}")
async def read_path(rest: str, request: Request) -> dict[str, Any]:
    return {"rest": rest, "path": request.url.path, "raw": request.scope["raw_path"].decode("latin-1"),
            "qs": request.scope["query_string"].decode("latin-1"), "query": list(request.query_params.multi_items())}


@fastapi_app.post("/items")
async def create_item(item: Item) -> Item:
    return item


@fastapi_app.post("/form")
async def form(name: str = Form(), tags: list[str] = Form(default=[])) -> dict[str, Any]:
    return {"name": name, "tags": tags}


@fastapi_app.post("/upload")
async def upload(file: UploadFile = File(), note: str = Form(default="")) -> dict[str, Any]:
    data = await file.read()
    return {"filename": file.filename, "type": file.content_type, "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), "note": note}


@fastapi_app.get("/teapot/{name}")
async def teapot(name: str) -> None:
    raise Teapot(name)


@fastapi_app.get("/missing")
async def missing() -> None:
    raise HTTPException(404, "no such thing", headers={"X-Why": "missing"})


@fastapi_app.get("/boom")
async def boom() -> None:
    raise RuntimeError("boom")


@fastapi_app.get("/boom-sync")
def boom_sync() -> None:
    raise ValueError("boom")


@fastapi_app.get("/redirect")
async def redirect() -> RedirectResponse:
    return RedirectResponse("/items/1?q=redirected", status_code=307)


@fastapi_app.get("/cookies")
async def cookies(request: Request, response: Response) -> dict[str, Any]:
    response.set_cookie("session", "abc123", httponly=True)
    response.set_cookie("theme", "dark", max_age=60, path="/")
    return {"got": dict(request.cookies)}


@fastapi_app.get("/stream")
async def stream() -> StreamingResponse:
    async def gen() -> AsyncIterator[bytes]:
        for i in range(5):
            yield f"chunk {i}\n".encode()
            await asyncio.sleep(0)

    return StreamingResponse(gen(), media_type="text/plain")


@fastapi_app.get("/stream-sync")
def stream_sync() -> StreamingResponse:
    def gen() -> Iterator[bytes]:
        for i in range(3):
            yield f"sync {i}\n".encode()

    return StreamingResponse(gen(), media_type="text/plain")


@fastapi_app.get("/forever")
async def forever() -> StreamingResponse:
    async def gen() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"data: tick\n\n"
                await asyncio.sleep(0.01)
        finally:
            events["stream_closed"].set()

    return StreamingResponse(gen(), media_type="text/event-stream")


@fastapi_app.get("/big-stream/{mb}")
async def big_stream(mb: int) -> StreamingResponse:
    chunk = b"x" * (256 * 1024)

    async def gen() -> AsyncIterator[bytes]:
        for _ in range(mb * 4):
            events["produced"] += len(chunk)
            yield chunk

    return StreamingResponse(gen(), media_type="application/octet-stream")


def record(what: str) -> None:
    events["bg"].append(what)


@fastapi_app.post("/bg/{what}")
async def bg(what: str, tasks: BackgroundTasks) -> dict[str, str]:
    tasks.add_task(record, what)
    return {"scheduled": what}


@fastapi_app.get("/state")
async def state(request: Request) -> dict[str, Any]:
    return {"db": request.state.db, "n": request.state.n}


@fastapi_app.post("/size")
async def size(request: Request) -> dict[str, Any]:
    n = 0
    h = hashlib.sha256()
    chunks = 0
    async for c in request.stream():
        n += len(c)
        h.update(c)
        chunks += 1
    return {"size": n, "sha256": h.hexdigest(), "chunked": chunks > 1}


@fastapi_app.get("/pid")
async def pid() -> dict[str, int]:
    return {"pid": os.getpid()}


@fastapi_app.get("/slow-stream")
async def slow_stream() -> StreamingResponse:
    async def gen() -> AsyncIterator[bytes]:
        yield b"first;"
        await asyncio.sleep(0.5)
        yield b"last"

    return StreamingResponse(gen(), media_type="text/plain")


@fastapi_app.get("/big/{kb}")
async def big(kb: int) -> PlainTextResponse:
    return PlainTextResponse("y" * (kb * 1024))


@fastapi_app.get("/nonascii")
async def nonascii() -> JSONResponse:
    return JSONResponse({"text": "grüße, 世界"}, headers={"X-Lang": "de, zh"})


# ---------------------------------------------------------------------------
# Starlette (raw scope, HEAD, plain responses)
# ---------------------------------------------------------------------------
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse as SPlain, JSONResponse as SJSON
from starlette.routing import Route


async def s_scope(request: Request) -> SJSON:
    s = request.scope
    return SJSON({
        "type": s["type"], "http_version": s["http_version"], "method": s["method"], "scheme": s["scheme"],
        "path": s["path"], "raw_path": s["raw_path"].decode("latin-1"), "root_path": s["root_path"],
        "query_string": s["query_string"].decode("latin-1"),
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in s["headers"]
                    if k.startswith(b"x-")],
        "lower": all(k == k.lower() for k, _ in s["headers"]),
        "bytes": all(isinstance(k, bytes) and isinstance(v, bytes) for k, v in s["headers"]),
        "asgi": s.get("asgi", {}).get("version"), "client": isinstance(s.get("client"), (list, tuple)),
    })


async def s_plain(request: Request) -> SPlain:
    return SPlain("hello plain", headers={"X-Plain": "1"})


async def s_empty(request: Request) -> SPlain:
    return SPlain("", status_code=204)


starlette_app = Starlette(routes=[
    Route("/scope/{rest:path}", s_scope, methods=["GET", "POST"]),
    Route("/plain", s_plain),
    Route("/empty", s_empty, methods=["DELETE"]),
])


# ---------------------------------------------------------------------------
# Raw ASGI apps for protocol misuse and errors
# ---------------------------------------------------------------------------
async def misuse_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        msg = await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    path = scope["path"]
    if path == "/body-first":
        await send({"type": "http.response.body", "body": b"oops"})
    elif path == "/two-starts":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.start", "status": 200, "headers": []})
    elif path == "/no-response":
        return
    elif path == "/raise":
        raise RuntimeError("app crashed")
    elif path == "/receive-after":
        first = await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": first["body"]})
        events["after"] = (await receive())["type"]  # the response is complete: http.disconnect
    else:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})


# ---------------------------------------------------------------------------
# Flask
# ---------------------------------------------------------------------------
from flask import Flask, abort, jsonify, make_response, redirect as f_redirect, request as f_request, stream_with_context

flask_app = Flask(__name__)


class FlaskTeapot(Exception):
    pass


@flask_app.errorhandler(FlaskTeapot)
def f_teapot(e: FlaskTeapot) -> Any:
    return jsonify(teapot=str(e)), 418, {"X-Teapot": "yes"}


@flask_app.route("/items/<int:item_id>")
def f_item(item_id: int) -> Any:
    return jsonify(item_id=item_id, q=f_request.args.get("q"), tag=f_request.args.getlist("tag"),
                   x_token=f_request.headers.get("X-Token"), path=f_request.path,
                   full=f_request.full_path, ua=f_request.headers.get("User-Agent"))


@flask_app.route("/path/<path:rest>")
def f_path(rest: str) -> Any:
    return jsonify(rest=rest, path=f_request.path, args=list(f_request.args.items(multi=True)),
                   script=f_request.script_root)


@flask_app.route("/json", methods=["POST"])
def f_json() -> Any:
    data = f_request.get_json()
    return jsonify(got=data)


@flask_app.route("/form", methods=["POST"])
def f_form() -> Any:
    return jsonify(name=f_request.form.get("name"), tags=f_request.form.getlist("tags"))


@flask_app.route("/upload", methods=["POST"])
def f_upload() -> Any:
    f = f_request.files["file"]
    data = f.read()
    return jsonify(filename=f.filename, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                   note=f_request.form.get("note"))


@flask_app.route("/teapot/<name>")
def f_teapot_route(name: str) -> Any:
    raise FlaskTeapot(name)


@flask_app.route("/missing")
def f_missing() -> Any:
    abort(404)


@flask_app.route("/boom")
def f_boom() -> Any:
    raise RuntimeError("boom")


@flask_app.route("/redirect")
def f_redir() -> Any:
    return f_redirect("/items/1?q=redirected", code=302)


@flask_app.route("/cookies")
def f_cookies() -> Any:
    resp = make_response(jsonify(got=dict(f_request.cookies)))
    resp.set_cookie("session", "abc123", httponly=True)
    resp.set_cookie("theme", "dark", max_age=60)
    return resp


@flask_app.route("/stream")
def f_stream() -> Any:
    def gen() -> Iterator[str]:
        for i in range(5):
            yield f"chunk {i}\n"

    return flask_app.response_class(stream_with_context(gen()), mimetype="text/plain")


@flask_app.route("/forever")
def f_forever() -> Any:
    def gen() -> Iterator[bytes]:
        try:
            for _ in range(100000):
                yield b"x" * 65536
                events["flask_produced"] += 65536
        finally:
            events["flask_stream_closed"].set()

    return flask_app.response_class(gen(), mimetype="application/octet-stream")


@flask_app.route("/size", methods=["POST"])
def f_size() -> Any:
    stream = f_request.stream
    h = hashlib.sha256()
    n = 0
    while True:
        c = stream.read(65536)
        if not c:
            break
        n += len(c)
        h.update(c)
    return jsonify(size=n, sha256=h.hexdigest())


@flask_app.route("/pid")
def f_pid() -> Any:
    return jsonify(pid=os.getpid())


@flask_app.route("/big/<int:kb>")
def f_big(kb: int) -> Any:
    return "y" * (kb * 1024)


@flask_app.route("/write")
def f_write() -> Any:
    # A raw WSGI app behind Flask's routing: uses the write() callable.
    return flask_app.response_class("via flask")


def write_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    write = start_response("200 OK", [("Content-Type", "text/plain"), ("X-Write", "1")])
    write(b"hello ")
    write(b"from write()")
    return [b"; and the iterable"]


def slow_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    time.sleep(0.3)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"slow done"]


async def failing_startup_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "lifespan"
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "no database"})
