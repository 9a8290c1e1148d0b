"""An existing Flask (WSGI) app served by quicklane, with a hot route moved native.

Unchanged, under the CLI (was: gunicorn -w 2 flask_app:flask_api):
    quicklane flask_app:flask_api --interface wsgi --port 8080 --workers 2

Run as a script, the example contract (DESIGN.md) is served with GET /ping
answered by the native core and everything else by Flask on quicklane's
thread pool:
    PORT=8080 python examples/python/flask_app.py
"""
import json
import logging
import os
from typing import Any

from flask import Flask, abort, jsonify, request

import quicklane

flask_api = Flask(__name__)


@flask_api.get("/ping")
def ping() -> Any:  # shadowed by the native route below when run as a script
    return jsonify(message="pong")


@flask_api.get("/hello/<name>")
def hello(name: str) -> Any:
    return jsonify(hello=name)


@flask_api.post("/echo")
def echo() -> Any:
    try:
        return jsonify(json.loads(request.get_data()))
    except ValueError:
        abort(400)


@flask_api.errorhandler(404)
@flask_api.errorhandler(400)
@flask_api.errorhandler(405)
def error(e: Any) -> Any:
    methods = getattr(e, "valid_methods", None)  # a 405 names the allowed methods
    return jsonify(detail=e.name), e.code, {"Allow": ", ".join(methods)} if methods else {}


app = quicklane.App()
app.static("GET", "/ping", {"message": "pong"})  # moved native: the core answers it
app.mount(flask_api)  # WSGI (detected): Flask's routes, 404 and 405 unchanged

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "8080")),
            workers=int(os.environ.get("WORKERS", "1") or 1))
