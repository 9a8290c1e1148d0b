"""An existing FastAPI app served by quicklane, with a hot route moved native.

Unchanged, the FastAPI app runs under quicklane's CLI exactly as under uvicorn:
    quicklane fastapi_app:api --port 8080          # was: uvicorn fastapi_app:api --port 8080

Run as a script, the example contract (DESIGN.md) is served with GET /ping
answered by the native core (no Python per request) and everything else by
the FastAPI app mounted behind it:
    PORT=8080 WORKERS=1 python examples/python/fastapi_app.py
"""
import json
import logging
import os
from typing import Any

from fastapi import FastAPI, HTTPException, Request

import quicklane

api = FastAPI()


@api.get("/ping")
async def ping() -> dict[str, str]:  # shadowed by the native route below when run as a script
    return {"message": "pong"}


@api.get("/hello/{name}")
async def hello(name: str) -> dict[str, str]:
    return {"hello": name}


@api.post("/echo")
async def echo(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError as e:
        raise HTTPException(400, f"invalid JSON body: {e}") from None


app = quicklane.App()
app.static("GET", "/ping", {"message": "pong"})  # moved native: the core answers it
app.mount(api)  # the rest: FastAPI (404, 405 with Allow, validation) unchanged

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "8080")),
            workers=int(os.environ.get("WORKERS", "1") or 1))
