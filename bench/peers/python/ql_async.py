"""quicklane from Python with an *async* handler (bench/run): the
contract of examples/python/hello.py, whose /hello is a `def` handler, with
/hello/{name} as `async def` (the shape FastAPI's peer uses).
    PORT=8080 WORKERS=1 python bench/peers/python/ql_async.py
"""
import os
from typing import Any

import quicklane

app = quicklane.App()
app.static("GET", "/ping", {"message": "pong"})


@app.get("/hello/{name}")
async def hello(req: quicklane.Request, name: str) -> dict[str, str]:
    return {"hello": name}


@app.post("/echo")
async def echo(req: quicklane.Request) -> Any:
    return await req.json()


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "8080")),
            workers=int(os.environ.get("WORKERS", "1") or 1))
