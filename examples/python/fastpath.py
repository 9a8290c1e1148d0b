"""The fastpath contract served from Python: native rules do the common work.

The body of POST /items is a pydantic model: quicklane turns it into a JSON
Schema and validates natively (422 in FastAPI's shape, 400 for broken JSON)
before any Python runs; the handler receives the built model. The response
cache, CORS, the rate limit, API keys, static files (./static), /metrics,
/healthz and /ping are answered by the core as well.

pydantic is not a dependency of quicklane: install it next to it
(``pip install pydantic``; FastAPI users already have it). Run from examples/:
    cd examples && PORT=8080 WORKERS=2 python python/fastpath.py
"""
import itertools
import logging
import os
import threading

from pydantic import BaseModel, ConfigDict, Field

import quicklane


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")  # other properties → 422 extra_forbidden
    name: str = Field(min_length=1)
    price: float = Field(ge=0)
    tags: list[str] = []


app = quicklane.App()
app.static("GET", "/ping", {"message": "pong"})
app.static("GET", "/healthz", {"status": "ok"})
app.api_keys(["secret-key"])
app.cors(["https://app.example"], methods=["GET", "POST"])
app.static_dir("/static/", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "static"))
app.metrics("/metrics")

_ids = itertools.count(1)
_lock = threading.Lock()  # handlers may run on several Python threads
_cached_calls = 0


@app.post("/items")
def create_item(item: Item) -> quicklane.Response:
    with _lock:
        item_id = next(_ids)
    return quicklane.Response({"id": item_id, **item.model_dump()}, 201)


@app.get("/items/{id}", params={"id": {"type": "integer", "minimum": 1}})  # else 422, natively
def read_item(id: int) -> dict[str, object]:
    return {"id": id, "name": f"item {id}", "price": 9.5, "tags": []}


@app.get("/cached/{key}", cache=2.0)  # runs once per path per 2 s
def cached(key: str) -> dict[str, object]:
    global _cached_calls
    with _lock:
        _cached_calls += 1
        calls = _cached_calls
    return {"key": key, "calls": calls}


@app.get("/limited", rate_limit=5, per=60)  # the 6th request in a minute: 429 + Retry-After
def limited() -> dict[str, bool]:
    return {"limited": True}


@app.get("/private", api_key=True)  # X-API-Key missing: 401, wrong: 403
def private() -> dict[str, bool]:
    return {"private": True}


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "8080")),
            workers=int(os.environ.get("WORKERS", "0") or 0))
