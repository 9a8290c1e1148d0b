"""WebSocket peer of bench/run on the `websockets` PyPI package (its asyncio
server, >= 13; default settings), the WebSocket part of the example contract on
127.0.0.1:$PORT:
    GET /ws/echo         each message sent back as it came (text as text, binary as binary)
    GET /ws/chat/{room}  each message published to every member of the room, sender
                         included, as {"room":…,"from":n,"text":…} (websockets.broadcast);
                         n = the sender's member number in the room, from 1 in order of joining
    GET /ping            {"message":"pong"} (bench/run's start-up check)
Run: PORT=8080 python ws_websockets.py
"""
import asyncio
import json
import os
import signal
from http import HTTPStatus
from urllib.parse import unquote

from websockets.asyncio.server import Request, Response, ServerConnection, broadcast, serve


class Room:
    def __init__(self) -> None:
        self.next = 1
        self.members: set[ServerConnection] = set()


rooms: dict[str, Room] = {}


def room_of(path: str) -> str | None:
    if path.startswith("/ws/chat/") and len(path) > 9 and "/" not in path[9:]:
        return unquote(path[9:])
    return None


def json_response(connection: ServerConnection, status: HTTPStatus, body: str) -> Response:
    response = connection.respond(status, body)
    del response.headers["Content-Type"]  # respond() says text/plain
    response.headers["Content-Type"] = "application/json"
    return response


def process_request(connection: ServerConnection, request: Request) -> Response | None:
    path = request.path.split("?", 1)[0]
    if path == "/ping":
        return json_response(connection, HTTPStatus.OK, '{"message":"pong"}')
    if path != "/ws/echo" and room_of(path) is None:
        return json_response(connection, HTTPStatus.NOT_FOUND, '{"detail":"Not Found"}')
    return None  # the WebSocket handshake goes on


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def chat(ws: ServerConnection, name: str) -> None:
    room = rooms.setdefault(name, Room())
    sender = room.next
    room.next += 1
    room.members.add(ws)
    try:
        async for message in ws:
            text = message if isinstance(message, str) else message.decode("utf-8", "replace")
            broadcast(room.members, json.dumps({"room": name, "from": sender, "text": text}, separators=(",", ":")))
    finally:
        room.members.discard(ws)
        if not room.members and rooms.get(name) is room:
            del rooms[name]


async def handler(ws: ServerConnection) -> None:
    path = ws.request.path.split("?", 1)[0]
    name = room_of(path)
    if name is None:
        await echo(ws)
    else:
        await chat(ws, name)


async def main() -> None:
    port = int(os.environ.get("PORT", "8080"))
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(handler, "127.0.0.1", port, process_request=process_request) as server:
        print(f"websockets on 127.0.0.1:{port}", flush=True)
        await stop
        server.close(close_connections=True)


if __name__ == "__main__":
    asyncio.run(main())
