"""A raw WebSocket client for the tests (standard library only): sends exactly
the frames a test asks for and reports exactly what came back (status line,
headers, frames, a close frame or the end of the connection)."""
from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
from typing import Optional

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CLOSE, PING, PONG = 1, 2, 8, 9, 10


class Refused(Exception):
    """The server answered the upgrade with something else than 101."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:200]!r}")
        self.status = status
        self.headers = headers
        self.body = body


class Ws:
    def __init__(self, port: int, path: str, *, protocols: Optional[list[str]] = None,
                 extra: Optional[list[tuple[str, str]]] = None, timeout: float = 5.0,
                 handshake: bool = True) -> None:
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.status = 0
        self.headers: dict[str, str] = {}
        self.key = base64.b64encode(os.urandom(16))
        req = (b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
               b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + self.key + b"\r\n")
        if protocols:
            req += b"Sec-WebSocket-Protocol: " + ", ".join(protocols).encode() + b"\r\n"
        for k, v in extra or []:
            req += f"{k}: {v}\r\n".encode()
        self.s.sendall(req + b"\r\n")
        if handshake:
            self.handshake()

    def handshake(self) -> None:
        while b"\r\n\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed during the handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        if self.status != 101:
            n = int(self.headers.get("content-length", "0"))
            self._need(n)
            body, self.buf = self.buf[:n], self.buf[n:]
            self.s.close()
            raise Refused(self.status, self.headers, body)
        want = base64.b64encode(hashlib.sha1(self.key + GUID).digest()).decode()
        if self.headers.get("sec-websocket-accept") != want:
            raise AssertionError("wrong Sec-WebSocket-Accept")

    def send(self, payload: bytes | str, opcode: int = 0) -> None:
        if isinstance(payload, str):
            payload, opcode = payload.encode(), opcode or TEXT
        opcode = opcode or BINARY
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if n < 65536 else _mask_big(payload, mask)
        self.s.sendall(head + mask + masked)

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.send(struct.pack("!H", code) + reason.encode(), CLOSE)

    def _need(self, n: int) -> None:
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk

    def recv(self) -> tuple[int, bytes]:
        """The next frame: (opcode, payload); ConnectionError at the end of the connection."""
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        n, at = b1 & 0x7F, 2
        if n == 126:
            self._need(4)
            n, at = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, at = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._need(at + n)
        payload, self.buf = self.buf[at:at + n], self.buf[at + n:]
        return b0 & 0x0F, payload

    def recv_text(self) -> str:
        op, data = self.recv()
        assert op == TEXT, (op, data)
        return data.decode()

    def transcript(self, limit: int = 50) -> list[object]:
        """Every frame until a close frame (answered) or the end: [(op, payload), ..., ("close", code, reason)
        or "eof"]."""
        out: list[object] = []
        for _ in range(limit):
            try:
                op, data = self.recv()
            except (ConnectionError, socket.timeout, OSError):
                out.append("eof")
                return out
            if op == CLOSE:
                code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                out.append(("close", code, data[2:].decode()))
                try:
                    self.send(data[:2], CLOSE)
                except OSError:
                    pass
                return out
            out.append((op, data))
        return out

    def eof(self, timeout: float = 5.0) -> bool:
        """True when the server ends the connection within timeout (no more bytes)."""
        self.s.settimeout(timeout)
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    return True
        except socket.timeout:
            return False
        except OSError:
            return True

    def reset(self) -> None:
        """Leaves with a TCP reset (SO_LINGER 0): no close frame, no FIN."""
        try:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.s.close()
        except OSError:
            pass

    def shut(self) -> None:
        try:
            self.s.close()
        except OSError:
            pass


def _mask_big(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")
