"""The example contract (DESIGN.md) served from Python.

GET /ping is a native static route (no Python per request); /hello/{name} and
POST /echo are Python handlers; 404 and 405 come from the core.
    PORT=8080 WORKERS=2 python examples/python/hello.py
"""
import logging
import os
from typing import Any

import quicklane

app = quicklane.App()
app.static("GET", "/ping", {"message": "pong"})


@app.get("/hello/{name}")
def hello(req: quicklane.Request, name: str) -> dict[str, str]:
    return {"hello": name}


@app.post("/echo")
async def echo(req: quicklane.Request) -> Any:
    return await req.json()  # invalid JSON raises HTTPError(400)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "8080")),
            workers=int(os.environ.get("WORKERS", "0") or 0))
