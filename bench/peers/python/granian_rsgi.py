"""Granian RSGI minimal peer (bench/run): the contract hand-routed on
RSGI's protocol object, no framework, stdlib json; one worker:
    granian --interface rsgi --workers 1 --runtime-threads 1 --no-access-log granian_rsgi:app
"""
import json
from typing import Any
from urllib.parse import unquote

JSON = [("content-type", "application/json")]
PONG = b'{"message":"pong"}'


async def app(scope: Any, proto: Any) -> None:
    path = scope.path
    method = scope.method
    if method == "GET" and path == "/ping":
        proto.response_bytes(200, JSON, PONG)
    elif method == "GET" and path.startswith("/hello/") and "/" not in path[7:]:
        proto.response_bytes(200, JSON, json.dumps({"hello": unquote(path[7:])}, separators=(",", ":")).encode())
    elif method == "POST" and path == "/echo":
        body = await proto()
        try:
            json.loads(body)
        except ValueError:
            proto.response_bytes(400, JSON, b'{"detail":"invalid JSON"}')
            return
        proto.response_bytes(200, JSON, body)
    else:
        proto.response_bytes(404, JSON, b'{"detail":"Not Found"}')
