"""Native rules declared from Python: answered in the core, no Python runs."""
from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

import quicklane
from conftest import fetch


def test_rules_from_python() -> None:
    app = quicklane.App()
    calls = {"n": 0}

    @app.get("/limited", rate_limit=5, per=60)
    def limited() -> str:
        calls["n"] += 1
        return "ok"

    @app.get("/private", api_key=True)
    async def private() -> dict[str, bool]:
        calls["n"] += 1
        return {"private": True}

    app.static("GET", "/ping", {"message": "pong"})
    app.api_keys(["secret-key"])
    app.cors(["https://app.example"], methods=["GET", "POST"])
    app.metrics("/metrics")
    with app.start("127.0.0.1", 0, workers=1) as srv:
        codes = [fetch(srv.port, "GET", "/limited").status for _ in range(6)]
        assert codes == [200] * 5 + [429]
        r = fetch(srv.port, "GET", "/limited")
        assert r.headers["retry-after"] == "12" and r.json() == {"detail": "Too Many Requests"}
        assert fetch(srv.port, "GET", "/private").status == 401
        assert fetch(srv.port, "GET", "/private", headers={"X-API-Key": "wrong"}).status == 403
        assert fetch(srv.port, "GET", "/private", headers={"X-API-Key": "secret-key"}).json() == {"private": True}
        assert calls["n"] == 6
        pre = fetch(srv.port, "OPTIONS", "/private", headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "GET"})
        assert pre.status == 204 and pre.headers["access-control-allow-origin"] == "https://app.example"
        foreign = fetch(srv.port, "GET", "/ping", headers={"Origin": "https://evil.example"})
        assert foreign.status == 200 and "access-control-allow-origin" not in foreign.headers
        m = fetch(srv.port, "GET", "/metrics").body.decode()
        assert 'quicklane_requests_total{method="GET",route="/limited",status="429"} 2' in m
        assert "quicklane_requests_host_total 6" in m


def test_cache_from_python() -> None:
    app = quicklane.App()
    calls = {"n": 0}

    @app.get("/cached/{key}", cache=60)
    async def cached(key: str) -> dict[str, object]:
        calls["n"] += 1
        return {"key": key, "calls": calls["n"]}

    with app.start("127.0.0.1", 0, workers=1) as srv:
        first = fetch(srv.port, "GET", "/cached/a")
        assert first.json() == {"key": "a", "calls": 1}
        assert first.headers["cache-control"] == "max-age=60"
        hit = fetch(srv.port, "GET", "/cached/a")
        assert hit.json() == {"key": "a", "calls": 1} and hit.headers["age"] == "0"
        assert fetch(srv.port, "GET", "/cached/b").json() == {"key": "b", "calls": 2}
    with pytest.raises(ValueError, match="cache must be"):
        quicklane.App().get("/x", cache=100000)(lambda: "x")


def test_bad_rules_are_refused_at_start() -> None:
    app = quicklane.App()
    app.static("GET", "/private", "x", api_key=True)  # no keys set
    with pytest.raises(quicklane.NativeError, match="requires an API key"):
        app.start("127.0.0.1", 0, workers=1)
    app2 = quicklane.App()
    app2.cors(["*"], credentials=True)
    with pytest.raises(quicklane.NativeError, match="credentials"):
        app2.start("127.0.0.1", 0, workers=1)
    with pytest.raises(ValueError, match="per must be"):
        quicklane.App().rate_limit(5, per=0)


class Item(BaseModel):
    model_config = {"extra": "forbid"}
    name: str = Field(min_length=1)
    price: float = Field(ge=0)
    tags: list[str] = []


def test_validation_from_pydantic_and_params() -> None:
    app = quicklane.App()
    seen: list[Item] = []

    @app.post("/items")
    def create(item: Item) -> quicklane.Response:
        seen.append(item)
        return quicklane.Response(item.model_dump(), 201)

    @app.get("/items/{id}", params={"limit": {"type": "integer", "maximum": 100}})
    def read(id: int) -> dict[str, int]:
        return {"id": id}

    with app.start("127.0.0.1", 0, workers=1) as srv:
        ok = fetch(srv.port, "POST", "/items", b'{"name":"x","price":1.5}', {"Content-Type": "application/json"})
        assert ok.status == 201 and ok.json() == {"name": "x", "price": 1.5, "tags": []}
        bad = fetch(srv.port, "POST", "/items", b'{"name":"","price":"1","x":1}', {"Content-Type": "application/json"})
        assert bad.status == 422
        locs = [tuple(e["loc"]) for e in bad.json()["detail"]]
        assert ("body", "name") in locs and ("body", "price") in locs and ("body", "x") in locs
        assert fetch(srv.port, "POST", "/items", b'{"name":', {"Content-Type": "application/json"}).status == 400
        assert len(seen) == 1
        assert fetch(srv.port, "GET", "/items/7").json() == {"id": 7}
        r = fetch(srv.port, "GET", "/items/x?limit=1000")
        assert r.status == 422
        assert [e["loc"] for e in r.json()["detail"]] == [["path", "id"], ["query", "limit"]]


@pytest.mark.parametrize("ctype,body", [
    ("application/json", b'{"name":"x","price":-1}'),
    ("Application/JSON; charset=utf-8", b'{"name":"x","price":1}'),
    ("application/merge-patch+json", b'{"name":"","price":1}'),
    ("text/plain", b'{"name":"x","price":1}'),
    ("application/x-www-form-urlencoded", b"name=x&price=1"),
    ("text/plain", b" "),
    ("text/plain", b""),
])
def test_body_content_type_as_fastapi(ctype: str, body: bytes) -> None:
    """A body schema reads JSON for application/json and application/*+json;
    any other type gives the schema the text, as FastAPI does."""
    fastapi = pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    fa = fastapi.FastAPI()

    @fa.post("/items", status_code=201)
    async def fa_create(item: Item) -> Item:
        return item

    app = quicklane.App()

    @app.post("/items")
    def create(item: Item) -> quicklane.Response:
        return quicklane.Response(item.model_dump(), 201)

    want = TestClient(fa).post("/items", content=body, headers={"Content-Type": ctype})
    with app.start("127.0.0.1", 0, workers=1) as srv:
        got = fetch(srv.port, "POST", "/items", body, {"Content-Type": ctype})
    assert (got.status, got.json()) == (want.status_code, want.json())


def test_body_without_content_type_is_json() -> None:
    """Unlike FastAPI's strict default (which answers 422), a body without a
    Content-Type is read as JSON, as Gin does; bytes that are not UTF-8 under
    another type are echoed with U+FFFD (FastAPI fails to encode them)."""
    app = quicklane.App()

    @app.post("/items")
    def create(item: Item) -> quicklane.Response:
        return quicklane.Response(item.model_dump(), 201)

    with app.start("127.0.0.1", 0, workers=1) as srv:
        assert fetch(srv.port, "POST", "/items", b'{"name":"x","price":1}').status == 201
        bad = fetch(srv.port, "POST", "/items", b"\xff{", {"Content-Type": "application/octet-stream"})
        assert bad.status == 422
        assert bad.json()["detail"] == [{
            "type": "model_attributes_type", "loc": ["body"],
            "msg": "Input should be a valid dictionary or object to extract fields from", "input": "\ufffd{"}]
