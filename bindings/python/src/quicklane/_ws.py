"""WebSockets (RFC 6455) on the core's queued WebSocket routes, with the names
of Starlette's ``WebSocket``.

The core does the handshake, the framing, the pings and the pub/sub topics on
its loop threads; Python sees whole messages. A route's events (the upgrade
request, then OPEN, MESSAGE, DRAIN and CLOSE of each socket) reach the engine's
asyncio loop through the same queue and eventfd as ``async def`` HTTP handlers:
no loop thread ever calls Python. A received message stays in the core (and
counts against the socket's inbound window) until the handler takes it, so a
handler that reads slowly makes the core stop reading that socket instead of
growing memory. ``await ws.send_*`` waits while the socket holds more unsent
bytes than half its ``max_backpressure`` (the core's drain point).
"""
from __future__ import annotations

import asyncio
import collections
import enum
import inspect
import json
import logging
import types
from typing import Any, AsyncIterator, Callable, Iterable, Mapping, Optional, Union

from . import _native
from ._http import (JSON_TYPE, Address, Headers, HTTPError, QueryParams, Response, _header_list, dumps,
                    typed_path_params)

logger = logging.getLogger("quicklane")

# Route numbers of WebSocket routes on the queue (HTTP routes count from 0).
WS_ROUTE_BASE = 1 << 24
# How long accept() waits for the core's OPEN event after the 101 was queued:
# a safety net (a connection that ends before the 101 is written gets the
# core's close with id 0, which ends the wait at once).
_OPEN_TIMEOUT = 10.0
_FRAME_HEAD = 14  # the most a frame head adds to a message
_DEFAULT_BACKPRESSURE = 1 << 20
_COMPRESSION = {False: 0, None: 0, "none": 0, True: 1, "shared": 1, "dedicated": 2}
_INTERNAL_ERROR = b'{"detail":"Internal Server Error"}'


class WebSocketState(enum.Enum):
    CONNECTING = 0
    CONNECTED = 1
    DISCONNECTED = 2
    RESPONSE = 3


class WebSocketDisconnect(Exception):
    """The client closed the socket (or the connection ended): raised by
    receive once the messages that came before are taken, and by a send
    after the client left (code 1006). code: the client's close code (1005
    when it sent none, 1006 when the connection ended without a close frame,
    1001 when the server stops or the socket idled out)."""

    def __init__(self, code: int = 1000, reason: Optional[str] = None) -> None:
        super().__init__(code, reason or "")
        self.code = code
        self.reason = reason or ""

    def __repr__(self) -> str:
        return f"WebSocketDisconnect(code={self.code}, reason={self.reason!r})"


class WebSocketDisconnected(RuntimeError):
    """A WebSocket used in a state that does not allow it (Starlette's name):
    receive before accept or after a disconnect, send after close."""


class WsRoute:
    """A WebSocket route of the native API: pattern, handler and the core's limits."""

    __slots__ = ("pattern", "fn", "ws_name", "converters", "max_message_size", "max_backpressure",
                 "idle_timeout_ms", "ping_interval_ms", "compression", "window_bits", "close_on_backpressure",
                 "adapter", "high_water")

    def __init__(self, pattern: str, fn: Any, *, max_message_size: int = 16 << 20,
                 max_backpressure: int = _DEFAULT_BACKPRESSURE, idle_timeout: float = 120.0,
                 ping_interval: float = 0.0, compression: Union[bool, str, None] = False,
                 compression_window_bits: int = 15, close_on_backpressure: bool = False,
                 adapter: Any = None) -> None:
        self.pattern = pattern
        self.fn = fn
        self.adapter = adapter
        self.ws_name = ""
        self.converters: dict[str, Callable[[str], Any]] = {}
        self.max_message_size = _int_option("max_message_size", max_message_size, 1, 1 << 40)
        self.max_backpressure = _int_option("max_backpressure", max_backpressure, 1024, 1 << 40)
        self.idle_timeout_ms = _seconds_option("idle_timeout", idle_timeout, 1.0)
        self.ping_interval_ms = _seconds_option("ping_interval", ping_interval, 1.0) if ping_interval else 0
        if not isinstance(compression, (bool, str, type(None))) or compression not in _COMPRESSION:
            raise ValueError(f"compression must be False, True, 'shared' or 'dedicated', got {compression!r}")
        self.compression = _COMPRESSION[compression]
        self.window_bits = _int_option("compression_window_bits", compression_window_bits, 9, 15)
        self.close_on_backpressure = bool(close_on_backpressure)
        self.high_water = self.max_backpressure // 2
        if adapter is None:
            self._bind(fn)

    def _bind(self, fn: Any) -> None:
        from ._app import _is_async, _param_names

        name = getattr(fn, "__qualname__", repr(fn))
        if not callable(fn):
            raise TypeError(f"a WebSocket handler must be an async function, got {fn!r}")
        if not _is_async(fn):
            raise TypeError(f"WebSocket handler {name} must be an 'async def' function "
                            "(WebSocket handlers run on the asyncio loop, as in Starlette)")
        names = _param_names(self.pattern)
        try:
            sig = inspect.signature(fn, eval_str=True)
        except (NameError, TypeError, SyntaxError):
            sig = inspect.signature(fn)
        params = list(sig.parameters.values())
        var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
        free = [p for p in params if p.name not in names and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if not free:
            raise TypeError(f"WebSocket handler {name} needs a first parameter for the WebSocket")
        self.ws_name = free[0].name
        for p in params:
            if p.name == self.ws_name or p.name in names or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                continue
            if p.default is p.empty:
                raise TypeError(f"WebSocket handler {name}: parameter {p.name!r} is not a path parameter "
                                f"of {self.pattern} (nor the WebSocket)")
        by_name = {p.name: p for p in params}
        for n in names:
            if n not in by_name:
                if not var_kw:
                    raise TypeError(f"WebSocket handler {name} has no parameter for path parameter {n!r} "
                                    f"of {self.pattern}")
                continue
            ann = by_name[n].annotation
            if ann in (int, "int"):
                self.converters[n] = int
            elif ann in (float, "float"):
                self.converters[n] = float


def _int_option(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _seconds_option(name: str, value: Any, low: float) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if not low <= value <= 86_400 * 7:
        raise ValueError(f"{name} must be between {low:g} and {86_400 * 7} seconds, got {value}")
    return round(value * 1000)


class WsHub:
    """The WebSockets of one engine: sockets by tag, upgrade requests not yet
    answered by request id, and the running handler tasks."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.server: Optional[_native.Server] = None
        self.sockets: dict[int, WebSocket] = {}  # accepted (or being accepted), by tag, until CLOSE
        self.pending: dict[int, WebSocket] = {}  # upgrade requests not answered yet, by request id
        self.tasks: set[asyncio.Task[None]] = set()
        self._next_tag = 0

    def tag(self) -> int:
        self._next_tag += 1
        return self._next_tag

    def dispatch(self, route: WsRoute, ev: _native.NativeRequest) -> None:
        """An upgrade request of a native WebSocket route: runs its handler."""
        ws = WebSocket(self, ev, route)
        self.pending[ev.id] = ws
        task = self.loop.create_task(ws._run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def aborted(self, rid: int) -> bool:
        """The client of an upgrade request left before the answer."""
        ws = self.pending.pop(rid, None)
        if ws is None:
            return False
        ws._gone = True
        w = ws._waiter
        if w is not None and not w.done():
            w.set_result(None)
        return True

    def event(self, ev: tuple[int, int, Any]) -> None:
        kind, tag, x = ev
        ws = self.sockets.get(tag)
        if kind == _native.EVENT_WS_MESSAGE:
            if ws is None or ws._done:
                x.release()
                return
            ws._inbox.append(x)
            w = ws._waiter
            if w is not None and not w.done():
                w.set_result(None)
        elif kind == _native.EVENT_WS_DRAIN:
            if ws is not None:
                ws._wake_drain()
        elif kind == _native.EVENT_WS_OPEN:
            if ws is None or ws._open is None or ws._open.done():
                # Nobody waits for it any more (accept gave up): close it.
                if self.server is not None:
                    self.server.websocket(x).close(1011, "")
                return
            ws._ws = self.server.websocket(x) if self.server is not None else None
            ws._open.set_result(None)
        elif kind == _native.EVENT_WS_CLOSE:
            if ws is None:
                return
            del self.sockets[tag]
            ws._on_close(x[0], x[1])

    def live(self) -> int:
        return len(self.sockets) + len(self.pending) + len(self.tasks)


class WebSocket:
    """One WebSocket, as a handler of ``@app.websocket`` sees it (Starlette's
    names): ``accept``, ``receive_text/bytes/json``, ``iter_text/bytes/json``,
    ``send_text/bytes/json``, ``close``; plus ``subscribe``/``unsubscribe`` of
    pub/sub topics (``app.publish`` sends to them) and ``send_ping``/``send_pong``. Request data:
    ``path_params``, ``query_params``, ``headers``, ``client``, ``url_path``,
    ``subprotocols``."""

    def __init__(self, hub: WsHub, ev: _native.NativeRequest, route: WsRoute) -> None:
        self._hub = hub
        self._route = route
        self._n: Optional[_native.NativeRequest] = ev
        self._rid = ev.id
        self._tag = 0
        self._ws: Optional[_native.NativeWebSocket] = None
        self._inbox: collections.deque[_native.WsMessage] = collections.deque()
        self._waiter: Optional[asyncio.Future[None]] = None
        self._drain: Optional[asyncio.Future[None]] = None
        self._open: Optional[asyncio.Future[None]] = None
        self._gone = False  # the upgrade request's client left
        self._done = False  # the handler has returned
        self._cancelled = False
        self._closed: Optional[tuple[int, str]] = None  # the CLOSE event: (code, reason)
        self.client_state = WebSocketState.CONNECTING
        self.application_state = WebSocketState.CONNECTING
        self.path_params: dict[str, str] = ev.params()
        self.query_params = QueryParams(ev.query())
        self.headers = Headers(ev.headers())
        host, port = ev.client()
        self.client = Address(host, port)
        self.url_path: str = ev.path()
        self.query_string: str = ev.query_string()
        self.subprotocols: list[str] = [p.strip() for v in self.headers.getlist("sec-websocket-protocol")
                                        for p in v.split(",") if p.strip()]
        self.state = types.SimpleNamespace()  # for the handler's own use

    def __repr__(self) -> str:
        return f"<WebSocket {self.url_path} {self.application_state.name.lower()}>"

    @property
    def id(self) -> int:
        """The core's id of the open socket (0 before accept)."""
        return self._ws.id if self._ws is not None else 0

    # -- the handshake ------------------------------------------------------------
    async def accept(self, subprotocol: Optional[str] = None,
                     headers: Union[Mapping[str, str], Iterable[tuple[Any, Any]], None] = None) -> None:
        """Answers 101 (with one of the client's ``subprotocols``, and extra
        headers) and returns once the socket is open. Raises
        WebSocketDisconnect(1006) when the client has left, ValueError for a
        subprotocol the client did not offer."""
        if self.application_state is not WebSocketState.CONNECTING:
            raise RuntimeError("WebSocket.accept: the WebSocket was already accepted or refused")
        n = self._n
        if n is None or self._gone:
            self._n = None
            if n is not None:
                n.discard()  # its client left: the core frees it
            self._hub.pending.pop(self._rid, None)
            self._disconnected()
            raise WebSocketDisconnect(1006)
        hs = list(headers.items()) if isinstance(headers, Mapping) else list(headers) if headers else None
        hub = self._hub
        self._tag = tag = hub.tag()
        hub.sockets[tag] = self
        fut = self._open = hub.loop.create_future()
        try:
            st = n.ws_accept(subprotocol, hs, tag)
        except BaseException:
            del hub.sockets[tag]
            raise
        hub.pending.pop(self._rid, None)
        self._n = None
        if st != _native.OK:
            hub.sockets.pop(tag, None)
            self._disconnected()
            raise WebSocketDisconnect(1006)
        self.application_state = WebSocketState.CONNECTED
        self.client_state = WebSocketState.CONNECTED
        try:
            await asyncio.wait_for(asyncio.shield(fut), _OPEN_TIMEOUT)  # read at call time (tests patch it)
        except asyncio.TimeoutError:
            hub.sockets.pop(tag, None)  # the connection ended before the 101 went out
            self._disconnected()
            raise WebSocketDisconnect(1006) from None
        if self._ws is None:
            self._disconnected()
            raise WebSocketDisconnect(1006)

    async def send_denial_response(self, response: Response) -> None:
        """Refuses the upgrade with an HTTP answer (any status and body)
        instead of accepting it; the connection closes after it."""
        self._refuse(response.status_code, response.media_type, response.headers, response.body)

    def _refuse(self, status: int, ctype: Optional[str], headers: Any, body: Any) -> None:
        if self.application_state is not WebSocketState.CONNECTING:
            raise RuntimeError("the upgrade can only be refused before accept")
        n = self._n
        if n is not None:
            n.respond(status, ctype, headers, body)  # ValueError (refused by the core): still unanswered
        self._n = None
        self.application_state = WebSocketState.DISCONNECTED
        self.client_state = WebSocketState.DISCONNECTED
        self._hub.pending.pop(self._rid, None)

    def _disconnected(self) -> None:
        self.application_state = WebSocketState.DISCONNECTED
        self.client_state = WebSocketState.DISCONNECTED

    # -- receiving ------------------------------------------------------------------
    async def _next(self) -> _native.WsMessage:
        if self.application_state is not WebSocketState.CONNECTED:
            raise WebSocketDisconnected('WebSocket is not connected. Need to call "accept" first.')
        if self.client_state is WebSocketState.DISCONNECTED:
            raise WebSocketDisconnected('Cannot call "receive" once a disconnect message has been received.')
        inbox = self._inbox
        while not inbox:
            closed = self._closed
            if closed is not None:
                self.client_state = WebSocketState.DISCONNECTED
                raise WebSocketDisconnect(closed[0], closed[1])
            fut = self._waiter = self._hub.loop.create_future()
            try:
                await fut
            finally:
                self._waiter = None
        return inbox.popleft()

    async def receive(self) -> dict[str, Any]:
        """The next message as an ASGI event: {"type": "websocket.receive",
        "text": ...} or {..., "bytes": ...}; {"type": "websocket.disconnect",
        "code": ..., "reason": ...} once the client closed."""
        try:
            m = await self._next()
        except WebSocketDisconnect as e:
            return {"type": "websocket.disconnect", "code": e.code, "reason": e.reason}
        return {"type": "websocket.receive", "bytes" if m.binary else "text": m.take()}

    async def receive_text(self) -> str:
        m = await self._next()
        if m.binary:
            m.release()
            raise TypeError("WebSocket.receive_text: the client sent a binary message (use receive_bytes)")
        data = m.take()
        assert isinstance(data, str)
        return data

    async def receive_bytes(self) -> bytes:
        m = await self._next()
        if not m.binary:
            m.release()
            raise TypeError("WebSocket.receive_bytes: the client sent a text message (use receive_text)")
        data = m.take()
        assert isinstance(data, bytes)
        return data

    async def receive_json(self, mode: str = "text") -> Any:
        if mode not in ("text", "binary"):
            raise RuntimeError('The "mode" argument should be "text" or "binary".')
        m = await self._next()
        data = m.take()
        return json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)

    async def iter_text(self) -> AsyncIterator[str]:
        """Text messages until the client closes."""
        try:
            while True:
                yield await self.receive_text()
        except WebSocketDisconnect:
            pass

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        """Binary messages until the client closes."""
        try:
            while True:
                yield await self.receive_bytes()
        except WebSocketDisconnect:
            pass

    async def iter_json(self) -> AsyncIterator[Any]:
        """JSON text messages until the client closes."""
        try:
            while True:
                yield await self.receive_json()
        except WebSocketDisconnect:
            pass

    # -- sending ----------------------------------------------------------------------
    async def send_text(self, data: str) -> None:
        if not isinstance(data, str):
            raise TypeError(f"send_text takes a str, got {type(data).__name__}")
        await self._send(data, False)

    async def send_bytes(self, data: Union[bytes, bytearray, memoryview]) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"send_bytes takes bytes, got {type(data).__name__}")
        await self._send(data, True)

    async def send_json(self, data: Any, mode: str = "text") -> None:
        if mode not in ("text", "binary"):
            raise RuntimeError('The "mode" argument should be "text" or "binary".')
        await self._send(dumps(data), mode == "binary")

    async def send_ping(self, data: Union[bytes, bytearray, memoryview, str] = b"") -> None:
        """Sends a ping frame (a quicklane extension: Starlette has no ping)
        with at most 125 bytes of application data (a str goes as UTF-8). It
        goes out in order after the messages sent before it, never dropped
        nor compressed, and never waits for backpressure. The core answers the
        client's pings itself; the client's pong is not delivered to Python
        (``ping_interval=`` has the core ping silent clients)."""
        await self._control(data, False)

    async def send_pong(self, data: Union[bytes, bytearray, memoryview, str] = b"") -> None:
        """Sends an unsolicited pong frame (a heartbeat the client need not
        answer), as ``send_ping``."""
        await self._control(data, True)

    async def _control(self, data: Union[bytes, bytearray, memoryview, str], pong: bool) -> None:
        name = "send_pong" if pong else "send_ping"
        if not isinstance(data, (bytes, bytearray, memoryview, str)):
            raise TypeError(f"{name} takes bytes or a str, got {type(data).__name__}")
        size = len(data.encode()) if isinstance(data, str) else memoryview(data).nbytes
        if size > 125:
            raise ValueError(f"{name}: a control frame carries at most 125 bytes, got {size}")
        if self._writable().control(data, pong) != _native.OK:
            self.application_state = WebSocketState.DISCONNECTED
            raise WebSocketDisconnect(1006)

    async def send(self, message: Mapping[str, Any]) -> None:
        """An ASGI message: websocket.send (text or bytes) or websocket.close."""
        t = message.get("type")
        if t == "websocket.send":
            if message.get("bytes") is not None:
                await self._send(message["bytes"], True)
            else:
                await self._send(message.get("text") or "", False)
        elif t == "websocket.close":
            await self.close(message.get("code", 1000), message.get("reason"))
        elif t == "websocket.accept":
            await self.accept(message.get("subprotocol"), message.get("headers"))
        else:
            raise RuntimeError(f"WebSocket.send: unexpected message type {t!r}")

    def _writable(self) -> _native.NativeWebSocket:
        state = self.application_state
        if state is WebSocketState.CONNECTING:
            raise WebSocketDisconnected('WebSocket is not connected. Need to call "accept" first.')
        if state is not WebSocketState.CONNECTED or self._ws is None:
            raise WebSocketDisconnected('Cannot call "send" once a close message has been sent.')
        return self._ws

    async def _send(self, data: Any, binary: bool) -> None:
        ws = self._writable()
        while True:
            r = ws.send(data, binary)
            if r >= 0:
                if r > self._route.high_water:
                    await self._wait_room(0)
                return
            if r != _native.WS_DROPPED:
                self.application_state = WebSocketState.DISCONNECTED
                raise WebSocketDisconnect(1006)
            size = len(data.encode()) if isinstance(data, str) else memoryview(data).nbytes
            await self._wait_room(size + _FRAME_HEAD)  # over max_backpressure: wait, send again

    async def _wait_room(self, size: int) -> None:
        """Waits for the core's drain event until the socket's unsent bytes
        are at or under the high-water mark (and `size` more fit)."""
        route = self._route
        nws = self._ws
        assert nws is not None
        nws.want_drain(True)
        try:
            while True:
                b = nws.buffered()
                if b < 0 or self._closed is not None:
                    self.application_state = WebSocketState.DISCONNECTED
                    raise WebSocketDisconnect(1006)
                if b <= route.high_water and (size == 0 or b == 0 or b + size <= route.max_backpressure):
                    return
                fut = self._drain = self._hub.loop.create_future()
                try:
                    # The drain event; a bounded re-check all the same (and a fast
                    # one for a message bigger than the room left at the drain point).
                    await asyncio.wait_for(fut, 1.0 if b > route.high_water else 0.02)
                except asyncio.TimeoutError:
                    pass
                finally:
                    self._drain = None
        finally:
            nws.want_drain(False)

    def _wake_drain(self) -> None:
        d = self._drain
        if d is not None and not d.done():
            d.set_result(None)

    async def close(self, code: int = 1000, reason: Optional[str] = None) -> None:
        """Closes the socket with code and reason (starts the close handshake).
        Before accept, refuses the upgrade with 403."""
        state = self.application_state
        if state is WebSocketState.CONNECTING:
            self._refuse(403, None, None, b"")
            return
        if state is not WebSocketState.CONNECTED or self._ws is None:
            raise WebSocketDisconnected('Cannot call "send" once a close message has been sent.')
        if isinstance(code, bool) or not isinstance(code, int) or not 0 < code < 65536:
            raise ValueError(f"close code must be an int between 1000 and 4999, got {code!r}")
        self._ws.close(code, reason or "")  # ValueError for a code or reason that may not be sent
        self.application_state = WebSocketState.DISCONNECTED

    # -- pub/sub --------------------------------------------------------------------
    def subscribe(self, topic: str) -> bool:
        """Joins a topic (``app.publish(topic, data)`` reaches every socket in
        it, on every loop). False when the socket is closed."""
        return self._topic(topic, True)

    def unsubscribe(self, topic: str) -> bool:
        """Leaves a topic. False when the socket is closed."""
        return self._topic(topic, False)

    def _topic(self, topic: str, on: bool) -> bool:
        if not isinstance(topic, str):
            raise TypeError(f"a topic is a str, got {type(topic).__name__}")
        if self._ws is None:
            if self.application_state is WebSocketState.CONNECTING:
                raise WebSocketDisconnected('WebSocket is not connected. Need to call "accept" first.')
            return False
        return self._ws.subscribe(topic, on) == _native.OK

    @property
    def buffered_amount(self) -> int:
        """Bytes sent and not yet taken by the kernel (0 once closed)."""
        b = self._ws.buffered() if self._ws is not None else 0
        return max(b, 0)

    # -- the engine's side -----------------------------------------------------------
    def _on_close(self, code: int, reason: str) -> None:
        self._closed = (code, reason)
        o = self._open
        if o is not None and not o.done():
            o.set_result(None)  # accepted, but the connection ended before the 101 (the core's id-0 close)
        if self._done:
            self._release_inbox()
            self._ws = None  # closed and its handler done: the native handle goes
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)
        self._wake_drain()

    def _release_inbox(self) -> None:
        inbox = self._inbox
        while inbox:
            inbox.popleft().release()

    async def _run(self) -> None:
        route = self._route
        where = f"WebSocket {route.pattern}"
        error: Optional[BaseException] = None
        try:
            kw = typed_path_params(self.path_params, route.converters)
            kw[route.ws_name] = self
            await route.fn(**kw)
        except WebSocketDisconnect:
            pass
        except asyncio.CancelledError:
            self._cancelled = True  # the server is stopping
        except HTTPError as e:
            if self.application_state is WebSocketState.CONNECTING:
                try:
                    self._refuse(e.status_code, JSON_TYPE, _header_list(e.headers), dumps({"detail": e.detail}))
                except ValueError as bad:  # refused by the core (a reserved header): a 500 follows
                    error = bad
            else:
                error = e
        except BaseException as e:  # noqa: BLE001 - the server lives on
            error = e
        finally:
            self._finish(where, error)

    def _finish(self, where: str, error: Optional[BaseException]) -> None:
        hub = self._hub
        if error is not None:
            logger.error("quicklane: exception in %s", where, exc_info=(type(error), error, error.__traceback__))
        state = self.application_state
        if state is WebSocketState.CONNECTING:
            hub.pending.pop(self._rid, None)
            n, self._n = self._n, None
            if n is not None:
                if error is None and not self._gone:
                    logger.error("quicklane: %s returned without accepting or refusing the WebSocket; sent 500",
                                 where)
                n.respond(500, JSON_TYPE, None, _INTERNAL_ERROR)  # frees it when the client left
            self._disconnected()
        elif state is WebSocketState.CONNECTED and self._ws is not None:
            # Returned without closing: 1000; raised: 1011.
            self.application_state = WebSocketState.DISCONNECTED
            if self._closed is None:
                self._ws.close(1011 if error is not None else 1001 if self._cancelled else 1000, "")
        self._done = True
        self._release_inbox()
        if self._closed is not None:
            self._ws = None  # closed and its handler done: the native handle goes
        if self._tag and self._closed is None and self._tag in hub.sockets and self._ws is None:
            del hub.sockets[self._tag]  # accepted, never opened


__all__ = ["WebSocket", "WebSocketDisconnect", "WebSocketDisconnected", "WebSocketState", "WsHub", "WsRoute",
           "WS_ROUTE_BASE"]
