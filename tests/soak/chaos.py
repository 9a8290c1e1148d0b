"""Hostile clients for the soak: half-sent requests, disconnects mid-body,
malformed heads, slow trickles and idle keep-alive connections, in a loop
bounded by --seconds. Counts what it did; never targets anything but the
given loopback port."""
import argparse
import random
import socket
import time

BAD = [
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20000 + b"\r\n\r\n",
]


def one(port: int, kind: int, large: str) -> None:
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    try:
        if kind == 5:  # a large download (sendfile), reset after its first bytes
            s.sendall(b"GET " + large.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(65536)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        elif kind == 0:  # half a head, then gone
            s.sendall(b"GET /hello/x HTTP/1.1\r\nHo")
        elif kind == 1:  # half a body, then gone
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"a\":")
        elif kind == 2:  # malformed
            s.sendall(random.choice(BAD))
            s.recv(65536)
        elif kind == 3:  # request, then reset before reading the answer
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        else:  # pipelined burst, read everything
            s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n" * 20 + b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            while s.recv(65536):
                pass
    except OSError:
        pass
    finally:
        s.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--idle", type=int, default=200)
    ap.add_argument("--large", default="", help="path of a large static file: also reset downloads of it")
    a = ap.parse_args()
    idle = []
    for _ in range(a.idle):  # idle keep-alive connections held for the whole run
        c = socket.create_connection(("127.0.0.1", a.port), timeout=2)
        c.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        c.recv(4096)
        idle.append(c)
    end = time.monotonic() + a.seconds
    kinds = 6 if a.large else 5
    counts = [0] * 6
    while time.monotonic() < end:
        k = random.randrange(kinds)
        one(a.port, k, a.large)
        counts[k] += 1
        time.sleep(0.002)
    for c in idle:
        c.close()
    print("chaos: half-heads %d, half-bodies %d, malformed %d, resets %d, pipelined bursts %d, "
          "large downloads reset %d" % tuple(counts))


if __name__ == "__main__":
    main()
