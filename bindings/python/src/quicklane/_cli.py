"""`quicklane module:app` — serve an existing ASGI or WSGI application.

Flag names follow uvicorn's where they exist, so `uvicorn main:app --port 8000`
becomes `quicklane main:app --port 8000`.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import subprocess
import sys
import time
from typing import Any, Optional, Sequence

LOG_LEVELS = {"critical": logging.CRITICAL, "error": logging.ERROR, "warning": logging.WARNING,
              "info": logging.INFO, "debug": logging.DEBUG, "trace": 5}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="quicklane",
        description="Serve an ASGI (FastAPI, Starlette, Django) or WSGI (Flask, Django) application "
                    "on quicklane's native HTTP core.")
    p.add_argument("app", help="the application as module:attribute, e.g. main:app")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="bind port (default 8000; 0 picks a free one)")
    p.add_argument("--workers", type=int, default=1,
                   help="processes sharing the port through SO_REUSEPORT (default 1)")
    p.add_argument("--interface", choices=("auto", "asgi", "wsgi"), default="auto",
                   help="application interface (default auto: an async callable is ASGI)")
    p.add_argument("--root-path", default="", help="ASGI root_path / WSGI SCRIPT_NAME behind a proxy")
    p.add_argument("--log-level", choices=tuple(LOG_LEVELS), default="info", help="log level (default info)")
    p.add_argument("--access-log", dest="access_log", action="store_true", default=True,
                   help="log one line per request (default)")
    p.add_argument("--no-access-log", dest="access_log", action="store_false", help="no access log")
    p.add_argument("--lifespan", choices=("auto", "on", "off"), default="auto",
                   help="ASGI lifespan events (default auto)")
    p.add_argument("--factory", action="store_true", help="APP is a factory: call it to get the app")
    p.add_argument("--app-dir", default=".", help="directory added to sys.path first (default .)")
    p.add_argument("--timeout-graceful-shutdown", type=float, default=30.0,
                   help="seconds in-flight requests get after SIGTERM/SIGINT (default 30)")
    p.add_argument("--max-body-size", type=int, default=0,
                   help="largest request body in bytes (larger → 413); bodies stream to the app "
                        "as they arrive, memory stays bounded (default 0 = no limit, as uvicorn)")
    p.add_argument("--threads", type=int, default=40,
                   help="WSGI thread pool size per process (default 40)")
    p.add_argument("--loops", type=int, default=1,
                   help="native I/O loop threads per process (default 1; 0 = one per core)")
    p.add_argument("--ws-max-size", type=int, default=16 << 20,
                   help="largest WebSocket message in bytes (larger: closed with 1009; default 16 MiB)")
    p.add_argument("--ws-ping-interval", type=float, default=20.0,
                   help="seconds between the server's WebSocket pings (default 20; 0 = none)")
    p.add_argument("--ws-per-message-deflate", type=_bool, default=True, metavar="BOOL",
                   help="WebSocket permessage-deflate when the client offers it (default true)")
    p.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    return p


def _bool(value: str) -> bool:
    v = value.lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def import_app(spec: str, app_dir: str = ".", factory: bool = False) -> Any:
    """Imports "module:attr" (attr may be dotted)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise SystemExit(f'quicklane: APP must be "module:attribute", got {spec!r}')
    if app_dir is not None:
        sys.path.insert(0, os.path.abspath(app_dir))
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name and not module_name.startswith(f"{e.name}."):
            raise
        raise SystemExit(f"quicklane: could not import module {module_name!r}") from None
    try:
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise SystemExit(f"quicklane: attribute {attr!r} not found in module {module_name!r}") from None
    if factory:
        obj = obj()
    return obj


def _configure_logging(level: str) -> None:
    logging.addLevelName(5, "TRACE")
    logging.basicConfig(level=LOG_LEVELS[level], format="%(levelname)s:%(name)s: %(message)s")
    logging.getLogger("quicklane").setLevel(LOG_LEVELS[level])


def serve(args: argparse.Namespace) -> None:
    """Serves in this process until SIGTERM/SIGINT, then drains."""
    import quicklane

    target = import_app(args.app, args.app_dir, args.factory)
    app = quicklane.App()
    app.mount(target, interface=args.interface, root_path=args.root_path, lifespan=args.lifespan,
              access_log=args.access_log, ws_max_size=args.ws_max_size, ws_ping_interval=args.ws_ping_interval,
              ws_per_message_deflate=args.ws_per_message_deflate)
    app.run(host=args.host, port=args.port, workers=args.loops, threads=args.threads,
            shutdown_timeout=args.timeout_graceful_shutdown, max_body_bytes=args.max_body_size,
            reuse_port=1 if args.reuse_port else 0)


def supervise(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Runs --workers child processes on one port (SO_REUSEPORT); forwards
    SIGTERM/SIGINT to them and waits for their drain. A child that dies while
    serving is replaced."""
    log = logging.getLogger("quicklane")
    if args.port == 0:
        raise SystemExit("quicklane: --workers > 1 needs a fixed --port")
    child_argv = [sys.executable, "-m", "quicklane", *argv, "--workers", "1", "--reuse-port"]
    stopping = False

    def on_signal(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for c in children:
            if c.poll() is None:
                c.send_signal(signal.SIGTERM)

    children: list[subprocess.Popen[bytes]] = []
    born: list[float] = []
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for _ in range(args.workers):
        children.append(subprocess.Popen(child_argv))
        born.append(time.monotonic())
    log.info("quicklane: %d worker processes on http://%s:%d (pids %s)", args.workers, args.host, args.port,
             " ".join(str(c.pid) for c in children))
    restarts = 0
    while True:
        if all(c.poll() is not None for c in children):
            break
        if not stopping:
            for i, c in enumerate(children):
                # A worker that dies while serving is replaced; one that fails at
                # startup (import error, port refused) is not.
                if c.poll() is not None and c.returncode != 0 and time.monotonic() - born[i] > 5.0 \
                        and restarts < 10 * args.workers:
                    log.warning("quicklane: worker %d exited with %s; starting another", c.pid, c.returncode)
                    restarts += 1
                    children[i] = subprocess.Popen(child_argv)
                    born[i] = time.monotonic()
        time.sleep(0.1)
    codes = [c.returncode for c in children]
    return 0 if stopping or all(rc == 0 for rc in codes) else 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(raw)
    _configure_logging(args.log_level)
    if args.workers < 1:
        raise SystemExit("quicklane: --workers must be at least 1")
    if args.workers > 1:
        # The children get the same flags (the last --workers wins: 1).
        return supervise(args, raw)
    try:
        serve(args)
    except RuntimeError as e:  # lifespan startup failed, port in use, ...
        logging.getLogger("quicklane").error("quicklane: %s", e)
        return 3
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
