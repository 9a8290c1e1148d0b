from __future__ import annotations

import http.client
import importlib.util
import json
import socket
from pathlib import Path
from typing import Any, Optional

import pytest


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def fetch(port: int, method: str, path: str, body: Optional[bytes] = None,
          headers: Optional[dict[str, str]] = None, timeout: float = 10.0) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def raw(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Sends raw bytes, reads until the server closes or timeout."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
        return out


@pytest.fixture
def anyport() -> int:
    return 0


def load_example(name: str) -> Any:
    """Imports examples/python/<name>.py as a module (the examples are not a package)."""
    path = Path(__file__).resolve().parents[3] / "examples" / "python" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_example", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
