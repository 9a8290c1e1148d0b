"""FastAPI peer of examples/python/hello.py (bench/bindings.sh), served by
uvicorn[standard] (uvloop + httptools), one process:
    uvicorn --app-dir bench/peers/python fastapi_app:app --port $PORT --no-access-log
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
