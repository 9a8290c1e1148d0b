"""What a handler's return value becomes (issue 23, "nothing silently wrong"): a value with a JSON
form is encoded as FastAPI's encoder would; anything else is a 500 with a log line naming its type,
never 200 with its repr."""
from __future__ import annotations

import datetime
import decimal
import enum
import logging
import uuid
from typing import Any, Iterator

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
