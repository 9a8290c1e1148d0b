"""The example contract (DESIGN.md) served from Python.

GET /ping is a native static route (no Python per request); /hello/{name} and
POST /echo are Python handlers; 404 and 405 come from the core. WebSockets:
/ws/echo sends each message back as it came; /ws/chat/{room} publishes each
message to every member of the room (pub/sub topics live in the core).
    PORT=8080 WORKERS=2 python examples/python/hello.py
"""
import collections
import logging
import os
from typing import Any

import quicklane

app = quicklane.App()
app.static("GET", "/ping", {"message": "pong"})
members: collections.Counter[str] = collections.Counter()  # member numbers given out, per room


@app.get("/hello/{name}")
def hello(req: quicklane.Request, name: str) -> dict[str, str]:
    return {"hello": name}


@app.post("/echo")
async def echo(req: quicklane.Request) -> Any:
    return await req.json()  # invalid JSON raises HTTPError(400)


@app.websocket("/ws/echo")
async def ws_echo(ws: quicklane.WebSocket) -> None:
    await ws.accept()
    while True:
        msg = await ws.receive()  # text stays text, binary stays binary
        if msg["type"] == "websocket.disconnect":
            return
        if "text" in msg:
            await ws.send_text(msg["text"])
        else:
            await ws.send_bytes(msg["bytes"])


@app.websocket("/ws/chat/{room}")
async def ws_chat(ws: quicklane.WebSocket, room: str) -> None:
    await ws.accept()
    members[room] += 1
    me = members[room]
    ws.subscribe(f"room:{room}")
    async for text in ws.iter_text():  # until the client leaves
        app.publish(f"room:{room}", {"room": room, "from": me, "text": text})


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "8080")),
            workers=int(os.environ.get("WORKERS", "0") or 0))
