"""Plain ASGI app of bench/run's upload scenario, no framework: POST /upload
hashes the body (SHA-256, hashlib) chunk by chunk as receive() hands it over
and answers {"bytes": N, "sha256": "<hex>"}; GET /ping answers
{"message":"pong"} (bench/run's start-up check). The same file, unchanged,
under uvicorn[standard] and under quicklane (--interface asgi):
    uvicorn upload_asgi:app --port $PORT --loop uvloop --http httptools --no-access-log
    python -m quicklane upload_asgi:app --interface asgi --port $PORT
"""
import hashlib
import json
from typing import Any, Awaitable, Callable

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def _answer(send: Send, status: int, doc: dict[str, Any]) -> None:
    body = json.dumps(doc, separators=(",", ":")).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["path"] == "/upload" and scope["method"] == "POST":
        h = hashlib.sha256()
        n = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunk = msg.get("body", b"")
            h.update(chunk)
            n += len(chunk)
            if not msg.get("more_body", False):
                break
        await _answer(send, 200, {"bytes": n, "sha256": h.hexdigest()})
    elif scope["path"] == "/ping":
        await _answer(send, 200, {"message": "pong"})
    else:
        await _answer(send, 404, {"detail": "Not Found"})
