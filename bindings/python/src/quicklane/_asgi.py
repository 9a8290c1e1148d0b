"""ASGI 3.0 server side (HTTP, WebSocket and lifespan) on quicklane's queued delivery.

Each request's scope is built natively in one crossing (NativeRequest.asgi_scope);
the app runs as one task on the engine's asyncio loop, with no thread hop.
WebSockets (ASGI spec 2.4, with the websocket.http.response extension) run on
the core's queued WebSocket route that the mount adds on its catch-all
pattern; the messages an app sees, and what a client sees, follow uvicorn's.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, MutableMapping, Optional

from . import _native
from ._body import AsyncBody, ClientDisconnect
from ._http import HTTPError
from ._ws import WebSocket, WebSocketDisconnect, WebSocketState, WsHub, WsRoute

logger = logging.getLogger("quicklane")
access_logger = logging.getLogger("quicklane.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The request body streams: receive() hands over what the core holds (up to
# _body.CHUNK per message) as it arrives, with backpressure through the core.
# A streamed answer pauses its producer while the core holds more than HIGH
# bytes for the socket, until the core's drain event (at LOW bytes or fewer).
HIGH_WATER = _native.DRAIN_HIGH
LOW_WATER = _native.DRAIN_LOW
# A declared Content-Length up to this size, sent in several messages, is
# gathered and answered with Content-Length instead of chunked.
GATHER_LIMIT = 1 << 20

_ASGI = {"version": "3.0", "spec_version": "2.3"}
_ASGI_WS = {"version": "3.0", "spec_version": "2.4"}
_DISCONNECT: dict[str, Any] = {"type": "http.disconnect"}
_ERROR_BODY = b"Internal Server Error"
_ERROR_HEADERS = [(b"content-type", b"text/plain; charset=utf-8")]


class AsgiAdapter:
    """Serves one ASGI application: builds scopes, runs the app per request,
    runs its lifespan."""

    def __init__(self, app: ASGIApp, root_path: str = "", lifespan: str = "auto",
                 access_log: Optional[bool] = None) -> None:
        if lifespan not in ("auto", "on", "off"):
            raise ValueError("lifespan must be 'auto', 'on' or 'off'")
        self.app = app
        self.root_path = root_path.rstrip("/")
        self.root = self.root_path.encode("latin-1")
        self.lifespan_mode = lifespan
        self.state: dict[str, Any] = {}
        self.base: dict[str, Any] = {}
        self.access_log = access_log
        self.log_access = False
        self.lifespan: Optional[_Lifespan] = None
        self.engine: Any = None

    def bind(self, engine: Any, host: str, port: int) -> None:
        """Called once the server listens: the constant part of every scope."""
        self.engine = engine
        self.base = {"type": "http", "asgi": _ASGI, "scheme": "http", "root_path": self.root_path,
                     "server": (host, port)}
        self.log_access = (self.access_log if self.access_log is not None else True) and \
            access_logger.isEnabledFor(logging.INFO)
        self.ws_base = {"type": "websocket", "asgi": _ASGI_WS, "scheme": "ws", "root_path": self.root_path,
                        "server": (host, port), "extensions": {"websocket.http.response": {}}}

    # -- lifespan ------------------------------------------------------------
    async def startup(self) -> None:
        if self.lifespan_mode == "off":
            return
        self.lifespan = _Lifespan(self)
        await self.lifespan.startup()

    async def shutdown(self) -> None:
        if self.lifespan is not None:
            await self.lifespan.shutdown()

    # -- requests --------------------------------------------------------------
    def dispatch(self, ev: _native.NativeRequest, loop: asyncio.AbstractEventLoop,
                 cycles: dict[int, "_Cycle"]) -> None:
        try:
            scope = ev.asgi_scope(self.base, self.state, self.root)
        except Exception:  # noqa: BLE001
            logger.exception("quicklane: could not build the ASGI scope")
            ev.respond_app(500, _ERROR_HEADERS, _ERROR_BODY)
            return
        cycle = _Cycle(self, ev, scope, loop)
        cycles[ev.id] = cycle
        cycle.task = loop.create_task(cycle.run(cycles))


    def dispatch_ws(self, ev: _native.NativeRequest, route: WsRoute, hub: WsHub) -> None:
        """An upgrade request on the mount's WebSocket route: runs the app with a websocket scope."""
        try:
            scope = ev.asgi_scope(self.ws_base, self.state, self.root)
            del scope["method"]
        except Exception:  # noqa: BLE001
            logger.exception("quicklane: could not build the ASGI scope")
            ev.respond_app(500, _ERROR_HEADERS, _ERROR_BODY)
            return
        ws = WebSocket(hub, ev, route)
        scope["subprotocols"] = ws.subprotocols
        hub.pending[ev.id] = ws
        cycle = _WsCycle(self, ws, scope)
        task = hub.loop.create_task(cycle.run())
        hub.tasks.add(task)
        task.add_done_callback(hub.tasks.discard)


class ClientDisconnected(OSError):
    """A send on a WebSocket whose client has left (uvicorn's name; Starlette
    turns it into WebSocketDisconnect(1006))."""


class _WsCycle:
    """One ASGI WebSocket session: receive() and send() over a core WebSocket."""

    __slots__ = ("adapter", "ws", "scope", "connect_sent", "response", "body", "app_close")

    def __init__(self, adapter: AsgiAdapter, ws: WebSocket, scope: Scope) -> None:
        self.adapter = adapter
        self.ws = ws
        self.scope = scope
        self.connect_sent = False
        self.response: Optional[tuple[int, Any]] = None  # websocket.http.response.start
        self.body: list[bytes] = []
        self.app_close: Optional[dict[str, Any]] = None  # the disconnect a receive gives after the app's close

    async def run(self) -> None:
        ws = self.ws
        failed = False
        try:
            await self.adapter.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except asyncio.CancelledError:
            failed = True
        except BaseException as e:  # noqa: BLE001 - the server lives on
            failed = True
            logger.error("quicklane: exception in ASGI application", exc_info=(type(e), e, e.__traceback__))
        finally:
            state = ws.application_state
            n = ws._n
            if state is WebSocketState.CONNECTING:
                if not failed and not ws._gone:
                    logger.error("quicklane: ASGI callable returned without completing the WebSocket handshake")
                ws._refuse(500, None, _ERROR_HEADERS, _ERROR_BODY)
            elif state is WebSocketState.RESPONSE:
                ws._disconnected()
                ws._hub.pending.pop(ws._rid, None)
                ws._n = None
                if n is not None:
                    n.abort()  # an unfinished denial response: the connection closes (as uvicorn)
            elif state is WebSocketState.CONNECTED and ws._ws is not None and ws._closed is None:
                # Returned (or raised) without closing: the connection ends without a close
                # frame once what was sent is out, as under uvicorn.
                await _flushed(ws._ws)
                ws._ws.close(0, "")
            ws.application_state = WebSocketState.DISCONNECTED
            ws._done = True
            ws._release_inbox()
            if ws._closed is not None:
                ws._ws = None  # closed and done: the native handle goes
            self._changed()

    def _changed(self) -> None:
        self._wake_receive()  # a receive() waiting for the handshake's end

    async def receive(self) -> Message:
        ws = self.ws
        if not self.connect_sent:
            self.connect_sent = True
            return {"type": "websocket.connect"}
        while ws.application_state is WebSocketState.CONNECTING and not ws._gone:
            f = ws._waiter = ws._hub.loop.create_future()
            try:
                await f  # until the app accepts or refuses, or the client leaves
            finally:
                ws._waiter = None
        if ws._gone or ws._ws is None:
            if self.app_close is not None:
                return dict(self.app_close)
            return {"type": "websocket.disconnect", "code": 1006}
        if self.app_close is not None and ws._closed is None:
            return dict(self.app_close)
        inbox = ws._inbox
        while not inbox:
            closed = ws._closed
            if closed is not None:
                if ws.client_state is WebSocketState.DISCONNECTED:
                    return {"type": "websocket.disconnect", "code": 1005}  # told once already
                ws.client_state = WebSocketState.DISCONNECTED
                return {"type": "websocket.disconnect", "code": closed[0], "reason": closed[1]}
            fut = ws._waiter = ws._hub.loop.create_future()
            try:
                await fut
            finally:
                ws._waiter = None
        m = inbox.popleft()
        return {"type": "websocket.receive", "bytes" if m.binary else "text": m.take()}

    async def send(self, message: Message) -> None:
        ws = self.ws
        t = message["type"]
        state = ws.application_state
        if ws._closed is not None or (ws._gone and state is WebSocketState.CONNECTING):
            raise ClientDisconnected()
        if state is WebSocketState.CONNECTING:
            if t == "websocket.accept":
                headers = message.get("headers") or None
                try:
                    await ws.accept(message.get("subprotocol"), headers)
                except WebSocketDisconnect:
                    raise ClientDisconnected() from None
                finally:
                    self._changed()
                self._log("[accepted]")
            elif t == "websocket.close":
                self.app_close = {"type": "websocket.disconnect", "code": 1006}
                ws._refuse(403, "text/plain; charset=utf-8", None, b"")
                self._changed()
                self._log("403")
            elif t == "websocket.http.response.start":
                status = message["status"]
                if not 100 <= status < 600:
                    raise RuntimeError("Invalid HTTP status code '%d' in response." % status)
                self.response = (status, message.get("headers") or [])
                ws.application_state = WebSocketState.RESPONSE
                self._changed()
                self._log(str(status))
            else:
                raise RuntimeError("Expected ASGI message 'websocket.accept', 'websocket.close' "
                                   f"or 'websocket.http.response.start' but got '{t}'.")
        elif state is WebSocketState.CONNECTED:
            if t == "websocket.send":
                data = message.get("bytes")
                try:
                    if data is not None:
                        await ws._send(data, True)
                    else:
                        await ws._send(message.get("text") or "", False)
                except WebSocketDisconnect:
                    raise ClientDisconnected() from None
            elif t == "websocket.close":
                code = message.get("code", 1000)
                reason = message.get("reason", "") or ""
                self.app_close = {"type": "websocket.disconnect", "code": code, "reason": reason}
                assert ws._ws is not None
                ws._ws.close(code, reason)
                ws.application_state = WebSocketState.DISCONNECTED
                self._wake_receive()
            else:
                raise RuntimeError(f"Expected ASGI message 'websocket.send' or 'websocket.close', but got '{t}'.")
        elif state is WebSocketState.RESPONSE:
            if t != "websocket.http.response.body":
                raise RuntimeError(f"Expected ASGI message 'websocket.http.response.body' but got '{t}'.")
            self.body.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                assert self.response is not None
                status, headers = self.response
                hs = list(headers)
                if not any(bytes(k).lower() == b"content-type" for k, _ in hs):
                    hs.append((b"content-type", b"text/plain; charset=utf-8"))
                n, ws._n = ws._n, None
                ws._hub.pending.pop(ws._rid, None)
                ws._disconnected()
                self.app_close = {"type": "websocket.disconnect", "code": 1006}
                if n is not None:
                    n.respond_app(status, hs, b"".join(self.body))
        else:
            raise RuntimeError(f"Unexpected ASGI message '{t}', after sending 'websocket.close'.")

    def _wake_receive(self) -> None:
        w = self.ws._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _log(self, what: str) -> None:
        if self.adapter.log_access:
            s = self.scope
            client = s.get("client") or ("-", 0)
            qs = s["query_string"]
            path = s["raw_path"].decode("latin-1") + ("?" + qs.decode("latin-1") if qs else "")
            access_logger.info('%s:%d - "WebSocket %s" %s', client[0], client[1], path, what)


async def _flushed(nws: _native.NativeWebSocket, timeout: float = 2.0) -> None:
    """Until the socket's sent bytes are all with the kernel (or it closed, or timeout)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while nws.buffered() > 0 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.002)


class _Cycle:
    """One request/response cycle: receive() and send() of one ASGI call."""

    __slots__ = ("adapter", "ev", "scope", "loop", "task", "body_left", "body", "clen", "disconnected",
                 "started", "complete", "status", "headers", "gather", "waiter", "native_started")

    def __init__(self, adapter: AsgiAdapter, ev: _native.NativeRequest, scope: Scope,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.adapter = adapter
        self.ev = ev
        self.scope = scope
        self.loop = loop
        self.task: Optional[asyncio.Task[None]] = None
        self.body_left = True  # the body (possibly empty) is still to be received
        self.body = AsyncBody(ev, adapter.engine.body_waiters, loop)
        self.clen = ev.content_length()  # -1: chunked
        self.disconnected = False
        self.started = False  # http.response.start seen
        self.complete = False  # last body message seen
        self.native_started = False  # head handed to the core (streamed answer)
        self.status = 200
        self.headers: Any = None
        self.gather: Optional[list[bytes]] = None
        self.waiter: Optional[asyncio.Future[None]] = None

    async def run(self, cycles: dict[int, "_Cycle"]) -> None:
        ev = self.ev
        failed = False
        try:
            await self.adapter.app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            failed = True
            if not self.complete and not self.disconnected:
                logger.warning("quicklane: ASGI task cancelled before its response was complete")
        except BaseException as e:  # noqa: BLE001 - the server lives on
            failed = True
            logger.error("quicklane: exception in ASGI application", exc_info=(type(e), e, e.__traceback__))
        finally:
            if not self.complete and not self.disconnected:
                if not failed:
                    logger.error("quicklane: ASGI callable returned without %s a response",
                                 "completing" if self.started else "starting")
                if not self.native_started:
                    # Nothing sent yet: a clean 500 (a gathered body is dropped).
                    self._answer(500, _ERROR_HEADERS, _ERROR_BODY)
                elif not ev.finished:
                    # A streamed answer under way is cut (no last chunk, the
                    # connection closes): the client sees it broken, as under uvicorn.
                    ev.abort()
            self.complete = True
            if not ev.finished:
                ev.discard()  # frees an aborted request, ends an unfinished stream
            cycles.pop(ev.id, None)
            self._wake()

    def on_disconnect(self) -> None:
        self.disconnected = True
        self._wake()

    async def receive(self) -> Message:
        if self.body_left and not self.disconnected and not self.ev.finished:
            body = self.body
            if self.clen == 0:
                chunk = b""
            else:
                try:
                    chunk = await body.chunk()
                except (ClientDisconnect, HTTPError):
                    # Left mid-body, or refused by the core (413/400 already sent).
                    self.disconnected = True
                    self.body_left = False
                    return dict(_DISCONNECT)
            # With a declared length the last bytes end the body at once.
            more = bool(chunk) and not (self.clen >= 0 and body.received >= self.clen)
            self.body_left = more
            return {"type": "http.request", "body": chunk, "more_body": more}
        if not self.disconnected and not self.complete:
            w = self.waiter = self.loop.create_future()
            await w
        return dict(_DISCONNECT)

    async def send(self, message: Message) -> None:
        t = message["type"]
        if t == "http.response.body":
            await self._body(message)
            if self.complete:
                self._wake()  # a pending receive() now gives http.disconnect (as uvicorn)
        elif t == "http.response.start":
            if self.started:
                raise RuntimeError("ASGI: http.response.start sent twice")
            self.started = True
            self.status = message["status"]
            self.headers = message.get("headers")
        else:
            raise RuntimeError(f"ASGI: unexpected message type {t!r} for an HTTP request")

    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def _body(self, message: Message) -> None:
        if not self.started:
            raise RuntimeError("ASGI: http.response.body before http.response.start")
        if self.complete:
            raise RuntimeError("ASGI: http.response.body after the response was complete")
        body = message.get("body", b"")
        more = message.get("more_body", False)
        if self.disconnected:
            if not more:
                self.complete = True
            return  # the client left: nothing to write (as uvicorn)
        if not self.native_started:
            if not more and self.gather is None:
                self.complete = True
                self._answer(self.status, self.headers, body)
                return
            if self.gather is None and _small_length(self.headers):
                self.gather = []
            if self.gather is not None:
                if body:
                    self.gather.append(bytes(body))
                if not more:
                    self.complete = True
                    self._answer(self.status, self.headers, b"".join(self.gather))
                return
            self.native_started = True
            try:
                st = self.ev.stream_start(self.status, self.headers, body)
            except ValueError as e:
                self.complete = True
                logger.error("quicklane: invalid ASGI response head: %s", e)
                self.native_started = False
                self.ev.respond_app(500, _ERROR_HEADERS, _ERROR_BODY)
                return
            self._log(self.status)
            if st != _native.OK:
                self.on_disconnect()
                return
            if not more:
                self.complete = True
                self.ev.stream_end()
            return
        ev = self.ev
        buffered = ev.stream_write(body) if body else 0
        if not more:
            self.complete = True
            if buffered >= 0:
                ev.stream_end()
            else:
                self.on_disconnect()
            return
        if buffered < 0:
            self.on_disconnect()
        elif buffered > HIGH_WATER:
            await self._drain()

    async def _drain(self) -> None:
        """Waits for the core's drain event (the buffer for this answer is small again)."""
        if not await self.adapter.engine.drains.wait_async(self.ev, self.loop):
            self.on_disconnect()

    def _answer(self, status: int, headers: Any, body: Any) -> None:
        ev = self.ev
        try:
            st = ev.respond_app(status, headers, body)
        except ValueError as e:
            logger.error("quicklane: invalid ASGI response: %s", e)
            status = 500
            st = ev.respond_app(500, _ERROR_HEADERS, _ERROR_BODY)
        if st == _native.E_GONE:
            self.disconnected = True
        self._log(status)

    def _log(self, status: int) -> None:
        if self.adapter.log_access:
            s = self.scope
            client = s.get("client") or ("-", 0)
            qs = s["query_string"]
            path = s["raw_path"].decode("latin-1") + ("?" + qs.decode("latin-1") if qs else "")
            access_logger.info('%s:%d - "%s %s HTTP/%s" %d', client[0], client[1], s["method"], path,
                               s["http_version"], status)


def _small_length(headers: Any) -> bool:
    for name, value in headers or ():
        if len(name) == 14 and name.lower() in (b"content-length", "content-length"):
            try:
                return int(value) <= GATHER_LIMIT
            except ValueError:
                return False
    return False


class _Lifespan:
    """Runs the app's lifespan protocol: startup before serving, shutdown after."""

    def __init__(self, adapter: AsgiAdapter) -> None:
        self.adapter = adapter
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.started = asyncio.Event()
        self.stopped = asyncio.Event()
        self.failed: Optional[str] = None
        self.unsupported = False
        self.task: Optional[asyncio.Task[None]] = None

    async def startup(self) -> None:
        scope = {"type": "lifespan", "asgi": _ASGI, "state": self.adapter.state}
        self.task = asyncio.get_running_loop().create_task(self._main(scope))
        await self.inbox.put({"type": "lifespan.startup"})
        await self.started.wait()
        if self.failed is not None:
            raise RuntimeError(f"ASGI lifespan startup failed: {self.failed}")

    async def _main(self, scope: Scope) -> None:
        try:
            await self.adapter.app(scope, self.inbox.get, self._send)
        except BaseException as e:  # noqa: BLE001
            if not self.started.is_set():
                if self.adapter.lifespan_mode == "on":
                    self.failed = repr(e)
                    logger.error("quicklane: ASGI lifespan startup raised", exc_info=(type(e), e, e.__traceback__))
                else:
                    self.unsupported = True
                    logger.info("quicklane: ASGI lifespan not supported by the app (%r); going on without it", e)
            else:
                logger.error("quicklane: exception in ASGI lifespan", exc_info=(type(e), e, e.__traceback__))
        finally:
            self.started.set()
            self.stopped.set()

    async def _send(self, message: Message) -> None:
        t = message["type"]
        if t == "lifespan.startup.complete":
            self.started.set()
        elif t == "lifespan.startup.failed":
            self.failed = message.get("message", "") or "lifespan.startup.failed"
            logger.error("quicklane: ASGI lifespan startup failed: %s", self.failed)
            self.started.set()
        elif t in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            if t == "lifespan.shutdown.failed":
                logger.error("quicklane: ASGI lifespan shutdown failed: %s", message.get("message", ""))
            self.stopped.set()
        else:
            raise RuntimeError(f"ASGI: unexpected lifespan message {t!r}")

    async def shutdown(self) -> None:
        if self.unsupported or self.task is None or self.task.done():
            return
        await self.inbox.put({"type": "lifespan.shutdown"})
        await self.stopped.wait()


def is_asgi(app: Any) -> bool:
    """True for an ASGI 3 application (a coroutine function or an object with
    an async __call__), False for a WSGI one."""
    import inspect

    if inspect.iscoroutinefunction(app):
        return True
    call = getattr(app, "__call__", None)
    return call is not None and inspect.iscoroutinefunction(call)
