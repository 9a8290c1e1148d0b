"""The `quicklane module:app` command: one process, --workers processes on one
port, SIGTERM drain with lifespan shutdown."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import pytest

from compat import Req, free_port, over_socket

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def start(args: list[str], cmd: Optional[list[str]] = None) -> subprocess.Popen[str]:
    base = cmd or [sys.executable, "-m", "quicklane"]
    return subprocess.Popen([*base, *args, "--app-dir", str(HERE)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=str(HERE))


def wait_ready(port: int, proc: subprocess.Popen[str], path: str = "/pid") -> None:
    for _ in range(300):  # up to ~30 s on a loaded machine (imports FastAPI)
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if over_socket(port, Req("GET", path), timeout=2).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not become ready")


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"no exit after SIGTERM: {out}")
    return proc.returncode, out


def test_cli_serves_asgi_and_drains_on_sigterm() -> None:
    port = free_port()
    proc = start(["fw_apps:fastapi_app", "--port", str(port), "--log-level", "info", "--access-log"])
    try:
        wait_ready(port, proc)
        r = over_socket(port, Req("GET", "/items/3?q=cli"))
        assert r.status == 200 and json.loads(r.body)["q"] == "cli"
        # A streamed answer is in flight (its first bytes arrived) when SIGTERM comes:
        # it must complete, then lifespan shutdown runs and the process exits 0.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /slow-stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            got = b""
            while b"first;" not in got:
                chunk = s.recv(4096)
                assert chunk
                got += chunk
            proc.send_signal(signal.SIGTERM)
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        assert b"last" in got and got.endswith(b"0\r\n\r\n")
    finally:
        rc, out = stop(proc)
    assert rc == 0, out
    assert "fw_apps: lifespan shutdown" in out
    assert '"GET /items/3?q=cli HTTP/1.1" 200' in out  # access log


def test_python_m_and_console_script_wsgi_workers() -> None:
    script = BIN / "quicklane"
    assert script.exists()
    port = free_port()
    proc = start(["fw_apps:flask_app", "--port", str(port), "--workers", "2", "--interface", "wsgi",
                  "--no-access-log"], cmd=[str(script)])
    try:
        wait_ready(port, proc)
        pids = set()
        for _ in range(100):
            try:
                pids.add(json.loads(over_socket(port, Req("GET", "/pid")).body)["pid"])
            except OSError:
                pass
            if len(pids) == 2:
                break
            time.sleep(0.02)
        assert len(pids) == 2 and proc.pid not in pids
    finally:
        rc, out = stop(proc)
    assert rc == 0, out
    for pid in pids:  # every worker is gone
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_cli_errors() -> None:
    r = subprocess.run([sys.executable, "-m", "quicklane", "nosuchmodule:app", "--port", "0"],
                       capture_output=True, text=True, timeout=30, cwd=str(HERE))
    assert r.returncode != 0 and "could not import module 'nosuchmodule'" in r.stderr
    r = subprocess.run([sys.executable, "-m", "quicklane", "fw_apps:nothere", "--app-dir", str(HERE)],
                       capture_output=True, text=True, timeout=30, cwd=str(HERE))
    assert r.returncode != 0 and "attribute 'nothere' not found" in r.stderr
    r = subprocess.run([sys.executable, "-m", "quicklane", "fw_apps:failing_startup_app", "--port", "0",
                        "--app-dir", str(HERE)], capture_output=True, text=True, timeout=30, cwd=str(HERE))
    assert r.returncode == 3 and "lifespan startup failed: no database" in r.stderr
    r = subprocess.run([sys.executable, "-m", "quicklane", "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "--workers" in r.stdout and "--root-path" in r.stdout


def test_cli_serves_fastapi_websockets() -> None:
    """`quicklane fastapi_app:api` (the example's unchanged FastAPI app): its WebSocket endpoints
    answer the handshake (issue 17: they were 404) and chat across members."""
    from wsclient import BINARY, TEXT, Ws

    port = free_port()
    examples = HERE.parents[2] / "examples" / "python"
    proc = subprocess.Popen([sys.executable, "-m", "quicklane", "fastapi_app:api", "--port", str(port),
                             "--app-dir", str(examples)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=str(examples))
    try:
        wait_ready(port, proc, "/ping")
        w = Ws(port, "/ws/echo")
        w.send("hé", TEXT)
        assert w.recv() == (TEXT, "hé".encode())
        w.send(b"\x00\x01", BINARY)
        assert w.recv() == (BINARY, b"\x00\x01")
        a, b = Ws(port, "/ws/chat/r"), Ws(port, "/ws/chat/r")
        b.s.settimeout(0.2)
        for i in range(50):  # until b's handler has joined the room (bounded)
            a.send(f"hi {i}", TEXT)
            assert json.loads(a.recv_text()) == {"room": "r", "from": 1, "text": f"hi {i}"}
            try:
                assert json.loads(b.recv_text()) == {"room": "r", "from": 1, "text": f"hi {i}"}
                break
            except socket.timeout:
                continue
        else:
            raise AssertionError("the second member never heard the first")
        b.s.settimeout(5)
        b.send("back", TEXT)
        for m in (a, b):
            assert json.loads(m.recv_text()) == {"room": "r", "from": 2, "text": "back"}
        for m in (w, a, b):
            m.shut()
    finally:
        code, out = stop(proc)
    assert code == 0, out
