#!/usr/bin/env python3
"""Sends each case of cases.txt to one or more servers and prints what came back.

    run_cases.py CASES NAME=PORT [NAME=PORT ...]        markdown table (first server vs the others)

Each case goes on a fresh connection in one write; up to as many responses as the case expects are
read, then whether the server closed the connection (within 1 s). The verdict compares the first
server with each other one: "same" when both pass or both refuse each response (a refusal is a
4xx other than 404/405, or a 5xx), "stricter" when the first refuses what the other passes,
"looser" the other way round. "RFC" says whether the first server's answer is the one cases.txt
expects.
"""
import re
import socket
import sys
import time


def unescape(s):
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c != "\\":
            out += c.encode("latin-1")
            i += 1
            continue
        n = s[i + 1]
        if n == "x":
            out.append(int(s[i + 2:i + 4], 16))
            i += 4
            continue
        out += {"r": b"\r", "n": b"\n", "t": b"\t", "\\": b"\\"}[n]
        i += 2
    return bytes(out)


def decode_raw(s):
    out = b""
    pos = 0
    for m in re.finditer(r"\{\{(\d+)\*(.*?)\}\}", s):
        out += unescape(s[pos:m.start()]) + unescape(m.group(2)) * int(m.group(1))
        pos = m.end()
    return out + unescape(s[pos:])


def load(path):
    cases = []
    with open(path, encoding="latin-1") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            name, expect, after, handled, raw = line.split("|", 4)
            cases.append({
                "name": name,
                "expect": [] if expect == "-" else expect.split(","),
                "close": after == "close",
                "raw": decode_raw(raw),
            })
    return cases


def matches(expect, status):
    for alt in expect.split("/"):
        if alt.endswith("xx") and status // 100 == int(alt[0]):
            return True
        if alt == str(status):
            return True
    return False


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=3)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False

    def fill(self, deadline):
        if self.eof:
            return False
        self.s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            d = self.s.recv(65536)
        except socket.timeout:
            return False
        except OSError:
            d = b""
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def response(self, timeout=3.0):
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if not self.fill(deadline):
                return None
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        m = re.match(rb"HTTP/\d\.\d (\d{3})", lines[0])
        if not m:
            return None
        status = int(m.group(1))
        hdrs = {}
        for l in lines[1:]:
            k, _, v = l.partition(b":")
            hdrs[k.strip().lower()] = v.strip().lower()
        if b"chunked" in hdrs.get(b"transfer-encoding", b""):
            while True:
                while b"\r\n" not in self.buf:
                    if not self.fill(deadline):
                        return status
                size_line, rest = self.buf.split(b"\r\n", 1)
                n = int(size_line.split(b";")[0], 16)
                while len(rest) < n + 2:
                    if not self.fill(deadline):
                        return status
                    rest = self.buf.split(b"\r\n", 1)[1]
                self.buf = rest[n + 2:]
                if n == 0:
                    return status
        n = int(hdrs.get(b"content-length", b"0") or 0)
        while len(self.buf) < n:
            if not self.fill(deadline):
                break
        self.buf = self.buf[n:]
        return status

    def closed_within(self, timeout):
        deadline = time.monotonic() + timeout
        while not self.eof and time.monotonic() < deadline:
            self.fill(deadline)
        return self.eof


def run_case(port, case):
    try:
        c = Conn(port)
    except OSError as e:
        return {"statuses": [], "closed": None, "error": str(e)}
    try:
        try:
            c.s.sendall(case["raw"])
        except OSError:
            pass
        statuses = []
        for _ in range(max(1, len(case["expect"]))):
            st = c.response()
            if st is None:
                break
            statuses.append(st)
            if st >= 400:
                break
        closed = c.closed_within(1.0)
        return {"statuses": statuses, "closed": closed}
    finally:
        c.s.close()


def refused(st):
    return st >= 500 or (st >= 400 and st not in (404, 405))


def show(r):
    sts = "/".join(str(s) for s in r["statuses"]) or "none"
    return f"{sts} {'close' if r['closed'] else 'open'}"


def verdict(a, b):
    ra = [refused(s) for s in a["statuses"]] or [True]
    rb = [refused(s) for s in b["statuses"]] or [True]
    if ra == rb:
        return "same" if a["statuses"] == b["statuses"] else "same (other code)"
    # Compare the first position where they differ.
    for x, y in zip(ra, rb):
        if x != y:
            return "stricter" if x else "looser"
    return "stricter" if len(ra) < len(rb) else "looser"


def main():
    path = sys.argv[1]
    servers = [(a.split("=")[0], int(a.split("=")[1])) for a in sys.argv[2:]]
    cases = load(path)
    first = servers[0][0]
    cols = [f"{first}"] + [n for n, _ in servers[1:]]
    print("| case | expected (RFC) | " + " | ".join(cols) + " | RFC | " +
          " | ".join(f"vs {n}" for n, _ in servers[1:]) + " |")
    print("|---" * (3 + 2 * (len(servers) - 1) + 1) + "|")
    counts = {}
    rfc_ok = 0
    for case in cases:
        results = [run_case(p, case) for _, p in servers]
        q = results[0]
        exp = ",".join(case["expect"]) + (" close" if case["close"] else " open")
        ok = (len(q["statuses"]) == len(case["expect"]) and
              all(matches(e, s) for e, s in zip(case["expect"], q["statuses"])) and
              q["closed"] == case["close"])
        rfc_ok += ok
        vs = [verdict(q, r) for r in results[1:]]
        for v in vs:
            counts[v] = counts.get(v, 0) + 1
        print(f"| {case['name']} | {exp} | " + " | ".join(show(r) for r in results) +
              f" | {'yes' if ok else '**no**'} | " + " | ".join(vs) + " |")
    print()
    print(f"{len(cases)} cases; {first} as cases.txt expects: {rfc_ok}; " +
          ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
