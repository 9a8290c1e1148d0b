"""A Django project run unchanged under quicklane, as WSGI and as ASGI,
compared with the same project in-process through Django's test client."""
from __future__ import annotations

import json
from typing import Any, Iterator

import pytest

import django_site
from compat import Req, assert_same, over_socket, served, via_django

UPLOAD = bytes(range(256)) * 300

CASES = {
    "path-query-header": Req("GET", "/items/42", params=[("q", "hello world"), ("tag", "a"), ("tag", "b")],
                             headers={"X-Token": "t0k"}),
    "non-ascii-query": Req("GET", "/items/7", params={"q": "grüße 世界 & =?"}),
    "converter-404": Req("GET", "/items/notanint"),
    "percent-path": Req("GET", "/path/caf%C3%A9/a%20b?x=%2F&x=2&y="),
    "json-body": Req("POST", "/json", json={"name": "pen", "tags": ["x", "ü"]}),
    "json-invalid": Req("POST", "/json", content=b"{not json", headers={"Content-Type": "application/json"}),
    "form": Req("POST", "/form", data={"name": "Zoë", "tags": ["a", "b"]}),
    "multipart": Req("POST", "/upload", files={"file": ("data.bin", UPLOAD, "application/x-thing")},
                     data={"note": "hi"}),
    "http404": Req("GET", "/missing"),
    "unhandled-500": Req("GET", "/boom"),
    "redirect": Req("GET", "/redirect"),
    "cookies": Req("GET", "/cookies", headers={"Cookie": "a=1; b=two"}),
    "streaming": Req("GET", "/stream"),
    "not-found": Req("GET", "/nowhere"),
    "head": Req("HEAD", "/items/1?q=h"),
    "large-body": Req("POST", "/size", content=bytes(range(256)) * 3600),
    "headers": Req("GET", "/headers", headers=[("X-A", "1"), ("X-B", "two")]),
}


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def dj(request: Any) -> Iterator[tuple[int, Any]]:
    from django.test import Client

    app = django_site.wsgi_app if request.param == "wsgi" else django_site.asgi_app
    with served(app, interface=request.param) as srv:
        yield srv.port, Client(raise_request_exception=False)


@pytest.mark.parametrize("name", sorted(CASES))
def test_django_same_as_test_client(dj: tuple[int, Any], name: str) -> None:
    port, client = dj
    req = CASES[name]
    # Django's test client strips HEAD bodies itself; the server sends none either.
    assert_same(over_socket(port, req), via_django(client, req))


def test_django_details(dj: tuple[int, Any]) -> None:
    port, _ = dj
    r = over_socket(port, Req("GET", "/stream"))
    assert r.status == 200 and r.body == b"".join(f"chunk {i}\n".encode() for i in range(5))
    r = over_socket(port, Req("GET", "/path/caf%C3%A9?x=1"))
    assert json.loads(r.body)["rest"] == "café"


def test_django_chunked_request_body(dj: tuple[int, Any]) -> None:
    from conftest import raw

    port, _ = dj
    out = raw(port, b"POST /size HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200") and b'"size": 11' in out
