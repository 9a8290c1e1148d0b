"""WebSocket peer of bench/run on socketify (PyPI; Python bindings, through
cffi, of uWebSockets, whose C library ships inside the wheel), its defaults but
permessage-deflate off; the WebSocket part of the example contract on
127.0.0.1:$PORT:
    GET /ws/echo         each message sent back as it came (text as text, binary as binary)
    GET /ws/chat/{room}  each message published to every member of the room, sender
                         included (app.publish), as {"room":…,"from":n,"text":…};
                         n = the sender's member number in the room, from 1 in order of joining
    GET /ping            {"message":"pong"} (bench/run's start-up check)
Run: PORT=8080 python ws_socketify.py
"""
import json
import os
from urllib.parse import unquote

from socketify import App, CompressOptions, OpCode

rooms: dict[str, list[int]] = {}  # room -> [next member number, members]


def ping(res, req):
    res.write_header("Content-Type", "application/json")
    res.end('{"message":"pong"}')


def not_found(res, req):
    res.write_status(404)
    res.write_header("Content-Type", "application/json")
    res.end('{"detail":"Not Found"}')


def echo_message(ws, message, opcode):
    ws.send(message, opcode)


def chat_upgrade(res, req, socket_context):
    room = unquote(req.get_parameter(0) or "")
    res.upgrade(req.get_header("sec-websocket-key"), req.get_header("sec-websocket-protocol"),
                req.get_header("sec-websocket-extensions"), socket_context, {"room": room, "from": 0})


def chat_open(ws):
    data = ws.get_user_data()
    r = rooms.setdefault(data["room"], [1, 0])
    data["from"] = r[0]
    r[0] += 1
    r[1] += 1
    ws.subscribe("room:" + data["room"])


def chat_message(ws, message, opcode):
    data = ws.get_user_data()
    text = message if isinstance(message, str) else bytes(message).decode("utf-8", "replace")
    app.publish("room:" + data["room"], json.dumps({"room": data["room"], "from": data["from"], "text": text},
                                                   separators=(",", ":")), OpCode.TEXT)


def chat_close(ws, code, message):
    data = ws.get_user_data()
    r = rooms.get(data["room"])
    if r is not None:
        r[1] -= 1
        if r[1] <= 0:
            del rooms[data["room"]]


app = App()
app.get("/ping", ping)
app.ws("/ws/echo", {"compression": CompressOptions.DISABLED, "message": echo_message})
app.ws("/ws/chat/:room", {"compression": CompressOptions.DISABLED, "upgrade": chat_upgrade, "open": chat_open,
                          "message": chat_message, "close": chat_close})
app.any("/*", not_found)
port = int(os.environ.get("PORT", "8080"))
app.listen(port, lambda config: print(f"socketify on 127.0.0.1:{port}", flush=True))
app.run()
