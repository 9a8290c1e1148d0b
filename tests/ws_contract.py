#!/usr/bin/env python3
"""The WebSocket part of the example contract (DESIGN.md), checked against any example binary.

Usage: ws_contract.py COMMAND [ARGS...] (an example binary, or e.g. `python3 examples/python/hello.py`,
`node examples/node/hello.js`). Starts it on a free port with WORKERS=2, then, over raw
sockets (standard library only): /ws/echo sends text back as text and binary as binary (a 70 000
byte message too); /ws/chat/{room} publishes each message to every member of the room, sender
included, as {"room": ..., "from": <member number>, "text": ...}, and nothing to another room.
"""
import base64
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Ws:
    def __init__(self, port, path):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        key = base64.b64encode(os.urandom(16))
        self.s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
                       b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + b"\r\n\r\n")
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.s.recv(4096)
            if not chunk:
                raise AssertionError(f"{path}: connection closed during the handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/1.1 101"):
            raise AssertionError(f"{path}: {lines[0]}")
        want = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
        headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        if headers.get("sec-websocket-accept") != want:
            raise AssertionError(f"{path}: wrong Sec-WebSocket-Accept")

    def send(self, payload, opcode=1):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        self.s.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise AssertionError("connection closed")
            self.buf += chunk

    def recv(self):
        """One whole message: (opcode, payload), continuation frames joined."""
        opcode, fin, payload = self._frame()
        while not fin:
            _, fin, more = self._frame()
            payload += more
        return opcode, payload

    def _frame(self):
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
        return b0 & 0x0F, bool(b0 & 0x80), payload

    def quiet(self, seconds):
        self.s.settimeout(seconds)
        try:
            return not self.s.recv(1)
        except socket.timeout:
            return True
        finally:
            self.s.settimeout(5)


def main():
    command = sys.argv[1:]
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    env = dict(os.environ, PORT=str(port), WORKERS="2")
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        seen_lines = []
        while not seen_lines or "listening" not in seen_lines[-1]:
            line = proc.stdout.readline()  # the examples print a "listening" line once serving
            if not line:
                raise AssertionError(f"example did not start: {''.join(seen_lines)!r}")
            seen_lines.append(line)
        e = Ws(port, "/ws/echo")
        e.send("grüße".encode(), 1)
        assert e.recv() == (1, "grüße".encode()), "echo text"
        e.send(b"\x00\xff\x10", 2)
        assert e.recv() == (2, b"\x00\xff\x10"), "echo binary"
        big = bytes(i % 251 for i in range(70000))
        e.send(big, 2)
        assert e.recv() == (2, big), "echo 70000 bytes"
        print("ok   /ws/echo: text, binary, 70000 bytes")

        members = [Ws(port, "/ws/chat/lobby") for _ in range(3)]
        other = Ws(port, "/ws/chat/other")
        time.sleep(0.1)  # subscriptions from every loop are in place
        members[1].send(b'hi "all"')
        seen = [json.loads(m.recv()[1]) for m in members]
        assert all(s == seen[0] for s in seen), seen
        assert seen[0]["room"] == "lobby" and seen[0]["text"] == 'hi "all"', seen[0]
        assert isinstance(seen[0]["from"], int), seen[0]
        members[0].send(b"second")
        froms = {json.loads(m.recv()[1])["from"] for m in members}
        assert len(froms) == 1 and froms != {seen[0]["from"]}, "members have their own numbers"
        assert other.quiet(0.2), "another room heard the lobby"
        print(f"ok   /ws/chat/{{room}}: {seen[0]}")
        for w in [e, other] + members:
            w.s.close()
        print(f"ws contract ok for {' '.join(os.path.basename(a) for a in command)}")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    try:
        main()
    except AssertionError as err:
        print(f"FAIL ws contract: {err}")
        sys.exit(1)
