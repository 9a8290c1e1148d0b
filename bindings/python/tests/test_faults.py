"""Faults in handlers: each gives a defined answer, a log line, and the server lives on."""
from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time

import pytest

import quicklane
from conftest import fetch


def _wait_idle(srv: quicklane.Server) -> None:
    deadline = time.monotonic() + 5
    while srv.stats()["requests_in_flight"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert srv.stats()["requests_in_flight"] == 0


def test_async_handler_that_never_answers_gets_503_and_is_cancelled() -> None:
    app = quicklane.App()
    cancelled = threading.Event()

    @app.get("/never")
    async def never() -> str:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "unreachable"

    @app.get("/ok")
    async def ok() -> str:
        return "ok"

    with app.start("127.0.0.1", 0, workers=1, handler_timeout_ms=200) as srv:
        r = fetch(srv.port, "GET", "/never")
        assert r.status == 503
        assert r.json() == {"detail": "handler timed out"}
        assert cancelled.wait(5)
        assert fetch(srv.port, "GET", "/ok").body == b"ok"
        _wait_idle(srv)


def test_sync_handler_past_the_timeout_gets_503_and_its_late_answer_is_dropped(
        caplog: pytest.LogCaptureFixture) -> None:
    app = quicklane.App()
    release = threading.Event()
    finished = threading.Event()

    @app.get("/stuck")
    def stuck() -> str:
        release.wait(5)
        finished.set()
        return "late"

    with app.start("127.0.0.1", 0, workers=1, threads=2, handler_timeout_ms=200) as srv:
        r = fetch(srv.port, "GET", "/stuck")
        assert r.status == 503
        release.set()
        assert finished.wait(5)
        _wait_idle(srv)
        # the pool thread came back: the next request is answered normally
        release.set()
        assert fetch(srv.port, "GET", "/stuck").body == b"late"


def test_out_of_range_handler_timeout_is_refused() -> None:
    app = quicklane.App()
    app.static("GET", "/ping", b"pong")
    with pytest.raises(quicklane.NativeError, match="handler_timeout_ms"):
        app.start("127.0.0.1", 0, workers=1, handler_timeout_ms=1)


def test_exception_after_client_left_is_logged_and_harmless(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    app = quicklane.App()
    started = threading.Event()
    gate = threading.Event()

    @app.get("/boom")
    def boom() -> str:
        started.set()
        gate.wait(5)
        raise RuntimeError("boom after the client left (expected by the test)")

    with app.start("127.0.0.1", 0, workers=1, threads=2) as srv:
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
        assert started.wait(5)
        s.close()
        time.sleep(0.1)
        gate.set()
        _wait_idle(srv)
        started.clear()
        r = fetch(srv.port, "GET", "/boom")  # gate stays open: raises at once
        assert r.status == 500
        assert r.json() == {"detail": "Internal Server Error"}
