"""Measures Python dispatch shapes and JSON encoders (not a test; numbers go to docs/python.md).

    bindings/python/.venv/bin/python bindings/python/bench_dispatch.py [--duration 5] [--conns 64]

Each case starts a server in this process (1 native worker), runs wrk on
GET /hello/x (a Python handler returning {"hello": name}) and reports rps.
Dispatch shapes: one Python thread polling batches; threads polling one request
each (one GIL take per request); the default adaptive batches; async def on the
asyncio loop; and the native static /ping for reference.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import timeit
from typing import Any

import quicklane


PIN = False


def wrk(port: int, path: str, duration: int, conns: int) -> float:
    pin = ["taskset", "-c", "1"] if PIN else []
    out = subprocess.run(pin + ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(m.group(1)) if m else 0.0


def app_for(kind: str) -> quicklane.App:
    app = quicklane.App()
    app.static("GET", "/ping", {"message": "pong"})
    if kind == "async":
        @app.get("/hello/{name}")
        async def ahello(req: quicklane.Request, name: str) -> dict[str, str]:
            return {"hello": name}
    else:
        @app.get("/hello/{name}")
        def hello(req: quicklane.Request, name: str) -> dict[str, str]:
            return {"hello": name}
    return app


def dispatch(duration: int, conns: int, rounds: int) -> None:
    cases: list[tuple[str, str, dict[str, int], str]] = [
        ("one thread, batches of up to 64 (GIL once per batch)", "sync", {"threads": 1, "batch": 64}, "/hello/x"),
        ("16 threads x batch 1 (GIL once per request)", "sync", {"threads": 16, "batch": 1}, "/hello/x"),
        ("40 threads x batch 1", "sync", {"threads": 40, "batch": 1}, "/hello/x"),
        ("40 threads x batch 8, leader/followers + shared backlog", "sync", {"threads": 40, "batch": 8}, "/hello/x"),
        ("40 threads x batch 32, leader/followers + shared backlog (default)", "sync", {"threads": 40, "batch": 32}, "/hello/x"),
        ("async def on the asyncio loop (eventfd + batches)", "async", {"threads": 1, "batch": 1}, "/hello/x"),
        ("native static /ping (never enters Python)", "sync", {"threads": 1, "batch": 1}, "/ping"),
    ]
    best = [0.0] * len(cases)
    for _ in range(rounds):  # cases alternate; the best round of each is kept (shared machine)
        for i, (name, kind, opts, path) in enumerate(cases):
            with app_for(kind).start("127.0.0.1", 0, workers=1, **opts) as srv:
                wrk(srv.port, path, 1, conns)  # warm-up
                best[i] = max(best[i], wrk(srv.port, path, duration, conns))
    print(f"| shape | best of {rounds} rounds, rps (wrk -t1 -c{conns} -d{duration}s, 1 native worker) |")
    print("|---|---|")
    for (name, *_), rps in zip(cases, best):
        print(f"| {name} | {rps:,.0f} |", flush=True)


def encoders() -> None:
    import orjson

    payload: Any = {"hello": "wörld ✓", "n": [1, 2.5, 1e-7, 3.141592653589793], "nested": {"a": [{"b": None}] * 5},
                    "flag": True}
    small = {"hello": "x"}
    std = lambda o: json.dumps(o, ensure_ascii=False, separators=(",", ":")).encode()  # noqa: E731
    orj = orjson.dumps
    # correctness: both round-trip to the same value
    for o in (payload, small):
        assert json.loads(std(o)) == json.loads(orj(o)) == o
    print("| encoder | small dict (µs) | nested payload (µs) |")
    print("|---|---|---|")
    for name, fn in (("json.dumps (stdlib)", std), ("orjson.dumps", orj)):
        t_small = min(timeit.repeat(lambda: fn(small), number=100000, repeat=3)) / 100000 * 1e6
        t_big = min(timeit.repeat(lambda: fn(payload), number=50000, repeat=3)) / 50000 * 1e6
        print(f"| {name} | {t_small:.2f} | {t_big:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pin", action="store_true", help="server threads on CPU 0, wrk on CPU 1")
    ap.add_argument("--only", choices=["dispatch", "json"], default=None)
    a = ap.parse_args()
    if a.pin:
        global PIN
        PIN = True
        os.sched_setaffinity(0, {0})  # threads started later inherit it
    print(f"python {sys.version.split()[0]}, quicklane core {quicklane.native_version()}\n")
    if a.only in (None, "json"):
        encoders()
        print()
    if a.only in (None, "dispatch"):
        dispatch(a.duration, a.conns, a.rounds)


if __name__ == "__main__":
    main()
