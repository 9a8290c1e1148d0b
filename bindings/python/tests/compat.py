"""Runs one request against an app served by quicklane (over a real socket) and
against the same app in-process through its framework's test client, and
compares what matters."""
from __future__ import annotations

import contextlib
import http.client
import socket
from typing import Any, Iterator, Optional

import httpx

import quicklane

# Headers that differ by design between a real server and a test client.
IGNORED = {"date", "server", "content-length", "transfer-encoding", "connection", "keep-alive"}


class Res:
    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = [(k.lower(), v) for k, v in headers]
        self.body = body

    def get(self, name: str) -> Optional[str]:
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def getlist(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]

    def __repr__(self) -> str:
        return f"Res({self.status}, {self.headers}, {self.body[:200]!r})"


class Req:
    """One request, encoded once (JSON, forms, multipart) so both sides get the same bytes."""

    def __init__(self, method: str, path: str, **kw: Any) -> None:
        r = httpx.Request(method, "http://testserver" + path, **kw)
        self.method = method
        self.body = r.read()
        self.target = r.url.raw_path.decode("ascii")
        self.headers = [(k, v) for k, v in r.headers.raw if k.lower() not in (b"host", b"content-length")]
        if not any(k.lower() == b"user-agent" for k, _ in self.headers):
            self.headers.append((b"User-Agent", b"compat/1"))  # test clients add their own otherwise

    def str_headers(self) -> list[tuple[str, str]]:
        return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self.headers]

    def header_dict(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.str_headers()}


def over_socket(port: int, req: Req, timeout: float = 10.0) -> Res:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(req.method, req.target, skip_accept_encoding=True)
        for k, v in req.headers:
            conn.putheader(k, v)
        if req.body or req.method in ("POST", "PUT", "PATCH"):
            conn.putheader("Content-Length", str(len(req.body)))
        conn.endheaders(req.body or None)
        r = conn.getresponse()
        data = r.read()
        return Res(r.status, r.getheaders(), data)
    finally:
        conn.close()


def via_httpx_client(client: Any, req: Req) -> Res:
    """Starlette's TestClient (httpx-based) or an httpx.Client over a WSGI transport."""
    r = client.request(req.method, req.target, headers=req.headers, content=req.body, follow_redirects=False)
    return Res(r.status_code, list(r.headers.multi_items()), r.content)


def via_flask(client: Any, req: Req) -> Res:
    headers = []
    for k, v in req.str_headers():
        if k.lower() == "cookie":  # werkzeug's client sends its cookie jar, not a Cookie header
            for part in v.split(";"):
                name, _, value = part.strip().partition("=")
                client.set_cookie(name, value)
        else:
            headers.append((k, v))
    r = client.open(req.target, method=req.method, headers=headers, data=req.body)
    return Res(r.status_code, list(r.headers.items()), r.get_data())


def via_django(client: Any, req: Req) -> Res:
    hd = req.header_dict()
    ctype = hd.pop("content-type", "application/octet-stream")
    r = client.generic(req.method, req.target, data=req.body, content_type=ctype, headers=hd)
    body = b"".join(r.streaming_content) if r.streaming else r.content
    headers = [(k, v) for k, v in r.headers.items()]
    for morsel in r.cookies.values():
        headers.append(("set-cookie", morsel.OutputString()))
    return Res(r.status_code, headers, body)


def assert_same(ours: Res, ref: Res, *, body: bool = True, extra_ignored: tuple[str, ...] = ()) -> None:
    assert ours.status == ref.status, (ours, ref)
    if body:
        assert ours.body == ref.body, (ours.body[:300], ref.body[:300])
    ignored = IGNORED | set(extra_ignored)
    names = {k for k, _ in ref.headers if k not in ignored} | {k for k, _ in ours.headers if k not in ignored}
    for n in sorted(names):
        a, b = ours.getlist(n), ref.getlist(n)
        if n == "set-cookie":
            a, b = sorted(a), sorted(b)
        assert a == b, (n, ours.headers, ref.headers)
    if ref.get("content-length") is not None and ours.get("transfer-encoding") is None:
        assert ours.get("content-length") == ref.get("content-length"), (ours.headers, ref.headers)


def settle(srv: quicklane.Server) -> int:
    """requests_in_flight once the last answers' writes are done (bounded wait)."""
    import time

    n = -1
    for _ in range(100):
        n = srv.stats()["requests_in_flight"]
        if n == 0:
            break
        time.sleep(0.02)
    return n


@contextlib.contextmanager
def served(app: Any, **mount: Any) -> Iterator[quicklane.Server]:
    qa = quicklane.App()
    qa.mount(app, **mount)
    srv = qa.start(port=0, workers=1, threads=8)
    try:
        yield srv
    finally:
        srv.stop(3.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
