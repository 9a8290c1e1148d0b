"""quicklane Python, native, of bench/run's upload scenario: POST /upload is a
stream=True route, so the handler runs once the head is in and hashes the body
(SHA-256, hashlib) as it arrives; GET /ping is a native static route.
    UPLOAD_HANDLER=async (default): async def, `async for chunk in req.stream()`
    UPLOAD_HANDLER=sync: def, req.stream() read as a file (read(256 KiB)) on a pool thread
    PORT=8080 WORKERS=1 python bench/peers/python/upload_ql.py
"""
import hashlib
import os

import quicklane

app = quicklane.App()
app.static("GET", "/ping", {"message": "pong"})

if os.environ.get("UPLOAD_HANDLER", "async") == "sync":

    @app.post("/upload", stream=True)
    def upload(req: quicklane.Request) -> dict[str, object]:
        h = hashlib.sha256()
        n = 0
        f = req.stream()
        while chunk := f.read(256 * 1024):
            h.update(chunk)
            n += len(chunk)
        return {"bytes": n, "sha256": h.hexdigest()}

else:

    @app.post("/upload", stream=True)
    async def upload(req: quicklane.Request) -> dict[str, object]:
        h = hashlib.sha256()
        n = 0
        async for chunk in req.stream():
            h.update(chunk)
            n += len(chunk)
        return {"bytes": n, "sha256": h.hexdigest()}


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "8080")),
            workers=int(os.environ.get("WORKERS", "1") or 1))
