"""What a handler's return value becomes (issue 23, "nothing silently wrong"): a value with a JSON
form is encoded as FastAPI's encoder would; anything else is a 500 with a log line naming its type,
never 200 with its repr."""
from __future__ import annotations

import datetime
import decimal
import enum
import logging
import uuid
from typing import Any, Iterator, Optional

import pytest
from pydantic import BaseModel

import quicklane
from conftest import fetch


class Color(enum.Enum):
    RED = "red"


class Item(BaseModel):
    name: str
    when: datetime.date


def test_values_with_a_json_form_and_values_without(caplog: pytest.LogCaptureFixture) -> None:
    app = quicklane.App()

    @app.get("/typed")
    def typed() -> dict[str, Any]:
        return {"price": decimal.Decimal("1.50"), "count": decimal.Decimal("3"), "tags": {"a"},
                "at": datetime.datetime(2026, 12, 4, 20, 0, 0), "id": uuid.UUID(int=1), "color": Color.RED,
                "item": Item(name="pen", when=datetime.date(2026, 1, 2))}

    @app.get("/model")
    def model() -> Item:
        return Item(name="cup", when=datetime.date(2026, 3, 4))

    @app.get("/generator")
    def generator() -> Iterator[int]:
        return (i for i in range(3))

    @app.get("/object")
    def obj() -> object:
        return object()

    @app.get("/nested")
    def nested() -> dict[str, object]:
        return {"socket": object()}

    with app.start("127.0.0.1", 0, workers=1) as srv:
        r = fetch(srv.port, "GET", "/typed")
        assert r.status == 200
        assert r.json() == {"price": 1.5, "count": 3, "tags": ["a"], "at": "2026-12-04T20:00:00",
                            "id": "00000000-0000-0000-0000-000000000001", "color": "red",
                            "item": {"name": "pen", "when": "2026-01-02"}}
        r = fetch(srv.port, "GET", "/model")
        assert (r.status, r.json()) == (200, {"name": "cup", "when": "2026-03-04"})
        with caplog.at_level(logging.ERROR, logger="quicklane"):
            for path, type_name in (("/generator", "generator"), ("/object", "object"), ("/nested", "dict")):
                r = fetch(srv.port, "GET", path)
                assert r.status == 500, (path, r.body)
                assert r.json() == {"detail": "Internal Server Error"}
                assert b"<" not in r.body
                assert any(path in m and f"returned {type_name}" in m for m in caplog.messages), caplog.messages


def test_query_parameters_are_function_arguments_typed_and_validated_natively() -> None:
    """Issue 23: `def read(id: int, limit: int = 10)` with ?limit=50 gets limit == 50 (it got 10)."""
    app = quicklane.App()
    seen: list[dict[str, Any]] = []

    @app.get("/items/{id}", params={"limit": {"maximum": 100}})
    def read(id: int, limit: int = 10, q: Optional[str] = None, active: bool = False, ratio: float = 0.5,
             page=1) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        seen.append({"id": id, "limit": limit, "q": q, "active": active, "ratio": ratio, "page": page})
        return seen[-1]

    @app.get("/need")
    def need(token: str) -> dict[str, str]:  # required: no default
        return {"token": token}

    with app.start("127.0.0.1", 0, workers=1) as srv:
        r = fetch(srv.port, "GET", "/items/7?limit=50&q=pen&active=yes&ratio=2&page=3")
        assert (r.status, r.json()) == (200, {"id": 7, "limit": 50, "q": "pen", "active": True, "ratio": 2.0,
                                              "page": 3})
        assert fetch(srv.port, "GET", "/items/7").json() == {"id": 7, "limit": 10, "q": None, "active": False,
                                                               "ratio": 0.5, "page": 1}
        calls = len(seen)
        for bad in ("limit=abc", "limit=101", "active=maybe", "page=x"):  # the core answers, Python never runs
            r = fetch(srv.port, "GET", f"/items/7?{bad}")
            assert r.status == 422, (bad, r.body)
            assert r.json()["detail"][0]["loc"][0] == "query", (bad, r.body)
        assert len(seen) == calls
        r = fetch(srv.port, "GET", "/need")
        assert r.status == 422 and r.json()["detail"][0]["type"] == "missing", r.body
        assert fetch(srv.port, "GET", "/need?token=abc").json() == {"token": "abc"}


def test_a_parameter_quicklane_cannot_fill_is_refused_at_registration() -> None:
    app = quicklane.App()
    with pytest.raises(TypeError, match="'tags'"):
        @app.get("/x")
        def x(req: quicklane.Request, tags: list[int]) -> str:
            return "never"


def test_status_code_of_the_decorator() -> None:
    app = quicklane.App()

    @app.post("/items", status_code=201)
    def create(req: quicklane.Request) -> dict[str, int]:
        return {"id": 1}

    @app.post("/explicit", status_code=201)
    def explicit(req: quicklane.Request) -> quicklane.Response:
        return quicklane.Response(b"{}", status=202, media_type="application/json")

    with pytest.raises(ValueError, match="status_code"):
        app.get("/bad", status_code=99)

    with app.start("127.0.0.1", 0, workers=1) as srv:
        r = fetch(srv.port, "POST", "/items", b"")
        assert (r.status, r.json()) == (201, {"id": 1})
        assert fetch(srv.port, "POST", "/explicit", b"").status == 202  # a Response keeps its own


def test_out_of_range_server_options_are_a_clear_error() -> None:
    """Issue 23: port=70000 is a ValueError naming the option, not a pybind11 signature dump."""
    app = quicklane.App()
    app.get("/x")(lambda: "x")
    for kwargs, match in (({"port": 70000}, "port must be between 0 and 65535, got 70000"),
                          ({"port": 0, "workers": -1}, "workers must be between 0 and 256"),
                          ({"port": 0, "max_body_bytes": -5}, "max_body_bytes must be a non-negative int")):
        with pytest.raises(ValueError, match=match):
            app.start("127.0.0.1", **kwargs)
    with pytest.raises(TypeError, match="port must be an int"):
        app.start("127.0.0.1", "8080")  # type: ignore[arg-type]
