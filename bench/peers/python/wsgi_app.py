"""Flask app of the "existing apps" scenario (bench/run, WSGI): the example
contract as a plain Flask app, served unchanged by gunicorn (sync workers),
Granian (--interface wsgi) and quicklane (--interface wsgi):
    gunicorn -w 1 -k sync wsgi_app:app
"""
from typing import Any

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/ping")
def ping() -> Any:
    return jsonify(message="pong")


@app.get("/hello/<name>")
def hello(name: str) -> Any:
    return jsonify(hello=name)


@app.post("/echo")
def echo() -> Any:
    body = request.get_json(silent=True)
    if body is None:
        return jsonify(detail="invalid JSON"), 400
    return jsonify(body)
