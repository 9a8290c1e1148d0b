"""FastAPI app: the FastAPI peer of examples/python/hello.py (bench/run),
served by uvicorn[standard] (uvloop + httptools), one process, no access log:
    uvicorn --app-dir bench/peers/python asgi_app:app --port $PORT --no-access-log
and, unchanged, the ASGI app of the "existing apps" scenario under uvicorn,
Granian (--interface asgi) and quicklane (--interface asgi).
"""
from typing import Any

from fastapi import FastAPI, Request

app = FastAPI()


@app.get("/ping")
async def ping() -> dict[str, str]:
    return {"message": "pong"}


@app.get("/hello/{name}")
async def hello(name: str) -> dict[str, str]:
    return {"hello": name}


@app.post("/echo")
async def echo(request: Request) -> Any:
    return await request.json()
