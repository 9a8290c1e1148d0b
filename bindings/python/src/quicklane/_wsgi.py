"""WSGI (PEP 3333) server side: Flask, Django and friends on the sync pool.

Requests of a mounted WSGI app arrive on quicklane's bounded pool of Python
threads (App.start/run `threads=`), in batches; the environ is built natively
in one crossing (NativeRequest.wsgi_environ).
"""
from __future__ import annotations

import logging
import sys
import time
from typing import Any, Callable, Iterable, Optional

from . import _native
from ._body import ClientDisconnect, body_file, read_up_to
from ._asgi import GATHER_LIMIT, HIGH_WATER

logger = logging.getLogger("quicklane")
access_logger = logging.getLogger("quicklane.access")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# A chunked body up to this size is read whole before the app runs (see handle).
CHUNKED_GATHER = 1 << 20
_ERROR_BODY = b"Internal Server Error"
_ERROR_HEADERS = [("Content-Type", "text/plain; charset=utf-8")]


class WsgiAdapter:
    """Serves one WSGI application from the sync thread pool."""

    def __init__(self, app: WSGIApp, root_path: str = "", access_log: Optional[bool] = None) -> None:
        self.app = app
        self.script_name = root_path.rstrip("/")
        self.base: dict[str, Any] = {}
        self.access_log = access_log
        self.log_access = False
        self.engine: Any = None

    def bind(self, engine: Any, host: str, port: int) -> None:
        self.engine = engine
        self.base = {
            "SCRIPT_NAME": self.script_name,
            "SERVER_NAME": host,
            "SERVER_PORT": str(port),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
        }
        self.log_access = (self.access_log if self.access_log is not None else True) and \
            access_logger.isEnabledFor(logging.INFO)

    async def startup(self) -> None:  # WSGI has no lifespan
        return None

    async def shutdown(self) -> None:
        return None

    def handle(self, ev: _native.NativeRequest) -> None:
        """Runs the app for one request on the calling pool thread and answers it."""
        try:
            env = ev.wsgi_environ(self.base)
            # The body as it arrives, read on this pool thread (PEP 3333).
            if "HTTP_TRANSFER_ENCODING" in env:
                # Chunked: frameworks that read CONTENT_LENGTH bytes only (Django)
                # get a short body whole, described as the bytes it is; a long
                # one streams and ends at EOF (wsgi.input_terminated: Flask).
                head, ended = read_up_to(ev, CHUNKED_GATHER)
                if ended:
                    del env["HTTP_TRANSFER_ENCODING"]
                    env["CONTENT_LENGTH"] = str(len(head))
                env["wsgi.input"] = body_file(ev, head)
            else:
                env["wsgi.input"] = body_file(ev)
        except ClientDisconnect:
            ev.discard()
            return
        except Exception:  # noqa: BLE001
            logger.exception("quicklane: could not build the WSGI environ")
            ev.respond_app(500, _ERROR_HEADERS, _ERROR_BODY)
            return
        _Call(self, ev, env).run()


class _Call:
    """One WSGI call: start_response, write() and the returned iterable."""

    __slots__ = ("adapter", "ev", "env", "status", "headers", "started", "sent", "chunks", "gone", "gather",
                 "pending", "held")

    def __init__(self, adapter: WsgiAdapter, ev: _native.NativeRequest, env: dict[str, Any]) -> None:
        self.adapter = adapter
        self.ev = ev
        self.env = env
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.started = False  # start_response called
        self.sent = False  # head handed to the core (streamed)
        self.chunks: list[bytes] = []  # gathered body (declared Content-Length up to GATHER_LIMIT)
        self.gone = False
        self.gather = False
        self.pending = 0
        self.held: Optional[bytes] = None  # the first chunk, until a second one says "stream"

    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.started:
            raise AssertionError("WSGI: start_response called twice without exc_info")
        code = status.split(" ", 1)[0]
        if len(code) != 3 or not code.isdigit():
            raise ValueError(f"WSGI: invalid status {status!r}")
        self.status = int(code)
        self.headers = headers
        self.started = True
        self.chunks, self.pending, self.held, self.gather = [], 0, None, False
        for name, value in headers:
            if len(name) == 14 and name.lower() == "content-length":
                try:
                    self.gather = int(value) <= GATHER_LIMIT
                except ValueError:
                    pass
        return self.write

    def write(self, data: bytes) -> None:
        """Adds body bytes: gathered when the whole body is small and declared,
        else the first chunk is held and a second one starts a streamed answer."""
        if not self.started:
            raise AssertionError("WSGI: write() before start_response")
        if not data or self.gone:
            return
        if self.sent:
            self._write(data)
        elif self.gather:
            self.chunks.append(bytes(data))
            self.pending += len(data)
            if self.pending > GATHER_LIMIT:
                self.gather = False
                self._start_stream(b"".join(self.chunks))
                self.chunks = []
        elif self.held is None:
            self.held = bytes(data)
        else:
            first, self.held = self.held, None
            self._start_stream(first)
            if not self.gone:
                self._write(data)

    def _start_stream(self, first: bytes) -> None:
        self.sent = True
        try:
            st = self.ev.stream_start(self.status, self.headers, first)
        except ValueError as e:
            logger.error("quicklane: invalid WSGI response head: %s", e)
            self.ev.respond_app(500, _ERROR_HEADERS, _ERROR_BODY)
            self.gone = True
            return
        self._log()
        if st != _native.OK:
            self.gone = True

    def _write(self, data: bytes) -> None:
        buffered = self.ev.stream_write(data)
        if buffered < 0:
            self.gone = True
            return
        if buffered > HIGH_WATER:  # backpressure: a slow client blocks this pool thread, bounded
            if not self.adapter.engine.drains.wait_sync(self.ev):
                self.gone = True

    def run(self) -> None:
        ev = self.ev
        result: Any = None
        try:
            result = self.adapter.app(self.env, self.start_response)
            if isinstance(result, list) and len(result) <= 1 and not self.sent and self.held is None:
                if not self.started:
                    raise RuntimeError("WSGI: the app returned without calling start_response")
                self.chunks.extend(result)
            else:
                for data in result:
                    if not self.started:
                        raise RuntimeError("WSGI: body before start_response")
                    if self.gone:
                        break  # the client left: stop producing
                    if data:
                        self.write(data)
                if not self.started:
                    raise RuntimeError("WSGI: the app returned without calling start_response")
            if not self.sent:
                if self.held is not None:
                    self.chunks.append(self.held)
                body = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
                self._respond(self.status, self.headers, body)
            elif not self.gone:
                ev.stream_end()
        except BaseException as e:  # noqa: BLE001 - the server lives on
            logger.error("quicklane: exception in WSGI application", exc_info=(type(e), e, e.__traceback__))
            if not self.sent and not ev.finished:
                self.status = 500
                self._respond(500, _ERROR_HEADERS, _ERROR_BODY)
            elif not ev.finished:
                ev.abort()  # mid-stream: cut, so the client sees it broken
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # noqa: BLE001
                    logger.exception("quicklane: exception in the WSGI iterable's close()")
            if not ev.finished:
                ev.discard()

    def _respond(self, status: int, headers: Any, body: bytes) -> None:
        try:
            self.ev.respond_app(status, headers, body)
        except ValueError as e:
            logger.error("quicklane: invalid WSGI response: %s", e)
            status = self.status = 500
            self.ev.respond_app(500, _ERROR_HEADERS, _ERROR_BODY)
        self._log()

    def _log(self) -> None:
        if self.adapter.log_access:
            env = self.env
            qs = env.get("QUERY_STRING")
            access_logger.info('%s:%s - "%s %s%s %s" %d', env.get("REMOTE_ADDR"), env.get("REMOTE_PORT"),
                               env["REQUEST_METHOD"], env["PATH_INFO"], "?" + qs if qs else "",
                               env["SERVER_PROTOCOL"], self.status)
