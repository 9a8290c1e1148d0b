"""An existing FastAPI app served by quicklane, with a hot route moved native.

Unchanged, the FastAPI app runs under quicklane's CLI exactly as under uvicorn:
    quicklane fastapi_app:api --port 8080          # was: uvicorn fastapi_app:api --port 8080

Run as a script, the example contract (DESIGN.md) is served with GET /ping
answered by the native core (no Python per request) and everything else by
the FastAPI app mounted behind it, its WebSocket endpoints included (plain
FastAPI: the same file runs on uvicorn):
    PORT=8080 WORKERS=1 python examples/python/fastapi_app.py
"""
import collections
import json
import logging
import os
from typing import Any

from fastapi import FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect

import quicklane

api = FastAPI()
rooms: dict[str, set[WebSocket]] = {}  # the members of each chat room (in this process)
joined: collections.Counter[str] = collections.Counter()  # member numbers given out, per room


@api.get("/ping")
async def ping() -> dict[str, str]:  # shadowed by the native route below when run as a script
    return {"message": "pong"}


@api.get("/hello/{name}")
async def hello(name: str) -> dict[str, str]:
    return {"hello": name}


@api.post("/echo")
async def echo(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError as e:
        raise HTTPException(400, f"invalid JSON body: {e}") from None


@api.websocket("/ws/echo")
async def ws_echo(ws: WebSocket) -> None:
    await ws.accept()
    while True:
        msg = await ws.receive()  # text stays text, binary stays binary
        if msg["type"] == "websocket.disconnect":
            return
        if msg.get("text") is not None:
            await ws.send_text(msg["text"])
        else:
            await ws.send_bytes(msg["bytes"])


@api.websocket("/ws/chat/{room}")
async def ws_chat(ws: WebSocket, room: str) -> None:
    await ws.accept()
    joined[room] += 1
    me = joined[room]
    members = rooms.setdefault(room, set())
    members.add(ws)
    try:
        async for text in ws.iter_text():  # until the client leaves
            out = json.dumps({"room": room, "from": me, "text": text})
            for member in list(members):
                try:
                    await member.send_text(out)
                except (WebSocketDisconnect, RuntimeError):  # that member has left
                    members.discard(member)
    finally:
        members.discard(ws)


app = quicklane.App()
app.static("GET", "/ping", {"message": "pong"})  # moved native: the core answers it
app.mount(api)  # the rest: FastAPI (404, 405 with Allow, validation) unchanged

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("quicklane").setLevel(logging.INFO)  # the "listening on" line
    logging.getLogger("quicklane.access").setLevel(logging.WARNING)
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "8080")),
            workers=int(os.environ.get("WORKERS", "1") or 1))
