"""App (routes), the engine that hosts a native server, and Server (a handle on one)."""
from __future__ import annotations

import asyncio
import collections
import inspect
import json
import logging
import os
import signal
import threading
from typing import Any, Callable, Optional, Sequence, TypeVar, Union

from . import _native
from ._body import AsyncBody, ClientDisconnect, wake
from ._stream import Drains, as_stream, send_async, send_sync
from ._ws import WS_ROUTE_BASE, WsHub, WsRoute
from ._http import (
    JSON_TYPE,
    TEXT_TYPE,
    BYTES_TYPE,
    HeadersArg,
    HTTPError,
    Request,
    Response,
    _header_list,
    dumps,
    typed_path_params,
)

logger = logging.getLogger("quicklane")

F = TypeVar("F", bound=Callable[..., Any])

_INTERNAL_ERROR = b'{"detail":"Internal Server Error"}'
DEFAULT_THREADS = 40  # like anyio's default limiter (FastAPI's sync handlers)
# Most requests one sync pool thread takes per poll (docs/python.md has the
# measurements). The rest of a batch is shared: see _Engine._sync_worker.
DEFAULT_BATCH = 32
# Methods a mounted app receives (others get the core's 405).
MOUNT_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")


def _render(result: Any) -> tuple[int, Optional[str], Optional[list[tuple[str, str]]], Any]:
    """(status, content type, headers, body) for a handler's return value."""
    if isinstance(result, (dict, list)):
        return 200, JSON_TYPE, None, dumps(result)
    if isinstance(result, str):
        return 200, TEXT_TYPE, None, result
    if isinstance(result, Response):
        return result.status_code, result.media_type, result.headers, result.body
    if isinstance(result, (bytes, bytearray, memoryview)):
        return 200, BYTES_TYPE, None, result
    # dumps raises TypeError for what has no JSON form (a generator, an object): _answer sends 500.
    return 200, JSON_TYPE, None, dumps(result)  # None → null, numbers, tuples (lists, as FastAPI), models, ...


def _error_parts(e: HTTPError) -> tuple[int, Optional[str], Optional[list[tuple[str, str]]], Any]:
    return e.status_code, JSON_TYPE, _header_list(e.headers), dumps({"detail": e.detail})


class _Route:
    __slots__ = ("method", "pattern", "fn", "is_async", "req_name", "converters", "adapter", "body_name",
                 "body_model", "param_types", "query_params", "status_code", "stream")

    def __init__(self, method: str, pattern: str, fn: Callable[..., Any]) -> None:
        self.method = method
        self.pattern = pattern
        self.fn = fn
        self.is_async = _is_async(fn)
        self.adapter: Any = None
        self.status_code = 200  # of a return value that is not a Response (status_code= of the decorator)
        self.stream = False  # stream=True: the body is read while the handler runs
        names = _param_names(pattern)
        try:  # resolve string annotations (from __future__ import annotations)
            sig = inspect.signature(fn, eval_str=True)
        except (NameError, TypeError, SyntaxError):
            sig = inspect.signature(fn)
        ps = sig.parameters
        var_kw = any(p.kind is p.VAR_KEYWORD for p in ps.values())
        self.req_name: Optional[str] = None
        # A parameter annotated with a pydantic model takes the JSON body: the
        # core validates it (422 natively), then the model is built from it.
        self.body_name: Optional[str] = None
        self.body_model: Any = None
        for p in ps.values():
            if p.name not in names and _is_model(p.annotation):
                self.body_name, self.body_model = p.name, p.annotation
                break
        for p in ps.values():
            if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or p.name in names or p.name == self.body_name:
                continue
            ann = p.annotation
            if ann is Request or ann in ("Request", "quicklane.Request") or p.name in ("req", "request"):
                self.req_name = p.name
                break
        if self.req_name is None:  # else the first free parameter takes the request
            for p in ps.values():
                if (p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in names
                        and p.name != self.body_name):
                    if p.default is p.empty and _query_type(p.annotation, p.default) is None:
                        self.req_name = p.name
                    break
        converters: dict[str, Callable[[str], Any]] = {}
        self.param_types: dict[str, str] = {}  # checked natively: 422 before Python runs
        for n in names:
            if n in ps:
                ann = ps[n].annotation
                t = _QUERY_TYPES.get(ann) if isinstance(ann, (type, str)) else None
                if t in ("integer", "number"):  # typed path parameters: int and float
                    converters[n] = _QUERY_CONVERT[t]
                    self.param_types[n] = t
            elif not var_kw:
                raise TypeError(f"{fn.__qualname__} has no parameter for path parameter {n!r} of {pattern}")
        self.converters = converters
        # Every other parameter is a query parameter, as in FastAPI: typed from its
        # annotation (or its default), declared to the core (422 natively) and
        # passed converted; one quicklane cannot fill is refused here, never dropped.
        self.query_params: list[tuple[str, str, Callable[[str], Any], Any]] = []
        for p in ps.values():
            if (p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or p.name in names
                    or p.name in (self.body_name, self.req_name)):
                continue
            t = _query_type(p.annotation, p.default)
            if t is None:
                raise TypeError(f"{fn.__qualname__}: parameter {p.name!r} of {pattern} is not a path parameter, "
                                "the request, a pydantic body model or a str/int/float/bool query parameter")
            self.query_params.append((p.name, t, _QUERY_CONVERT[t], _REQUIRED if p.default is p.empty else p.default))

    @classmethod
    def mounted(cls, method: str, pattern: str, adapter: Any, is_async: bool) -> "_Route":
        """A route whose requests go, whole, to a mounted ASGI or WSGI app."""
        r = cls.__new__(cls)
        r.method, r.pattern, r.fn, r.is_async = method, pattern, adapter, is_async
        r.req_name, r.converters, r.adapter = None, {}, adapter
        r.body_name, r.body_model, r.param_types, r.query_params = None, None, {}, []
        r.status_code = 200
        r.stream = True
        return r

    def kwargs(self, req: Request) -> dict[str, Any]:
        kw = typed_path_params(req.params, self.converters)
        if self.req_name is not None:
            kw[self.req_name] = req
        if self.query_params:
            q = req.query
            for n, t, conv, default in self.query_params:
                v = q.get(n)
                if v is None:
                    if default is _REQUIRED:  # the core answers first when the route declared it
                        raise HTTPError(422, f"query parameter {n!r} is required")
                    kw[n] = default
                    continue
                try:
                    kw[n] = conv(v)
                except ValueError:
                    raise HTTPError(422, f"query parameter {n!r} must be {t}") from None
        if self.body_name is not None:
            kw[self.body_name] = self.body_model.model_validate_json(req.body)
        return kw


_REQUIRED = object()
_QUERY_TYPES: dict[Any, str] = {int: "integer", float: "number", bool: "boolean", str: "string",
                                "int": "integer", "float": "number", "bool": "boolean", "str": "string"}
_BOOL_WORDS = {"1": True, "on": True, "t": True, "true": True, "y": True, "yes": True,
               "0": False, "off": False, "f": False, "false": False, "n": False, "no": False}  # the core's grammar


def _to_bool(v: str) -> bool:
    try:
        return _BOOL_WORDS[v.lower()]
    except KeyError:
        raise ValueError(v) from None


_QUERY_CONVERT: dict[str, Callable[[str], Any]] = {"integer": int, "number": float, "boolean": _to_bool,
                                                   "string": str}


def _query_type(ann: Any, default: Any) -> Optional[str]:
    """The native type of a query parameter annotated `ann` (Optional[X] and X | None
    included) or, unannotated, of its default; None when it cannot be one."""
    if ann is inspect.Parameter.empty:
        return "string" if default is None else _QUERY_TYPES.get(type(default))
    args: tuple[Any, ...] = getattr(ann, "__args__", ())
    if len(args) == 2 and type(None) in args:  # Optional[X], X | None
        ann = args[0] if args[1] is type(None) else args[1]
    try:
        return _QUERY_TYPES.get(ann)
    except TypeError:  # unhashable annotation
        return None


def _is_model(ann: Any) -> bool:
    """A pydantic (v2) model class."""
    return isinstance(ann, type) and hasattr(ann, "model_json_schema") and hasattr(ann, "model_validate_json")


def _schema_json(schema: Any) -> str:
    """A JSON Schema given as a pydantic model class, a dict or a JSON string."""
    if schema is None:
        return ""
    if _is_model(schema):
        schema = schema.model_json_schema()
    if isinstance(schema, str):
        return schema
    return json.dumps(schema)


def _window_ms(per: float) -> int:
    ms = round(per * 1000)
    if not 1 <= ms <= 86_400_000:
        raise ValueError("per must be between 0.001 and 86400 seconds")
    return ms


def _is_async(fn: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)
    return call is not None and inspect.iscoroutinefunction(call)


def _param_names(pattern: str) -> list[str]:
    names = []
    for seg in pattern.split("/"):
        if seg.startswith("{") and seg.endswith("}"):
            n = seg[1:-1]
            names.append(n[:-3] if n.endswith("...") else n)
        elif seg.startswith(":") or seg.startswith("*"):
            names.append(seg[1:])
    return names


class App:
    """Routes and their handlers. FastAPI-style::

        app = quicklane.App()
        app.static("GET", "/ping", {"message": "pong"})     # answered natively
        @app.get("/hello/{name}")
        def hello(req: quicklane.Request, name: str) -> dict[str, str]:
            return {"hello": name}
        app.run(host="127.0.0.1", port=8080, workers=2)
    """

    def __init__(self) -> None:
        self._routes: list[_Route] = []
        self._statics: list[tuple[str, str, Response]] = []
        self._mounts: list[Any] = []
        # Native rules, applied to the native app at start, in order.
        self._native_rules: list[Callable[[_native.App], None]] = []
        self._ws_routes: list[WsRoute] = []
        self._engines: list[_Engine] = []  # serving now (publish goes to each)

    def mount(self, app: Any, *, interface: str = "auto", root_path: str = "", lifespan: str = "auto",
              access_log: Optional[bool] = None, methods: Sequence[str] = MOUNT_METHODS,
              ws_max_size: int = 16 << 20, ws_ping_interval: float = 20.0,
              ws_per_message_deflate: bool = True) -> None:
        """Sends every request that no native or Python route of this App
        matches to an existing ASGI (FastAPI, Starlette, Django's ASGI handler)
        or WSGI (Flask, Django) application, unchanged.

        interface: "asgi", "wsgi" or "auto" (an async callable is ASGI).
        root_path: the prefix the app is mounted under behind a proxy (ASGI
        root_path / WSGI SCRIPT_NAME). lifespan: "auto", "on" or "off"
        (ASGI startup/shutdown events). access_log: one line per request on
        the "quicklane.access" logger (default on, when that logger logs INFO).

        An ASGI app also gets the WebSocket upgrades (websocket scopes), with
        uvicorn's options and defaults: ws_max_size (bytes; a bigger message
        closes with 1009), ws_ping_interval (seconds; 0 = no pings, and a
        socket silent for 120 s is closed), ws_per_message_deflate.
        """
        from ._asgi import AsgiAdapter, is_asgi
        from ._wsgi import WsgiAdapter

        if interface == "auto":
            interface = "asgi" if is_asgi(app) else "wsgi"
        adapter: Any
        if interface == "asgi":
            adapter = AsgiAdapter(app, root_path, lifespan, access_log)
        elif interface == "wsgi":
            adapter = WsgiAdapter(app, root_path, access_log)
        else:
            raise ValueError("interface must be 'asgi', 'wsgi' or 'auto'")
        if self._mounts:
            raise ValueError("quicklane: one app can be mounted per App")
        # WebSocket upgrades of the catch-all go to an ASGI app too (websocket scopes).
        ws_route = WsRoute("/{path...}", None, adapter=adapter, max_message_size=ws_max_size,
                           ping_interval=ws_ping_interval, compression=bool(ws_per_message_deflate))
        self._mounts.append(adapter)
        if interface == "asgi" and "GET" in (m.upper() for m in methods):
            self._ws_routes.append(ws_route)
        for m in methods:
            self._routes.append(_Route.mounted(m.upper(), "/{path...}", adapter, interface == "asgi"))
            # Bodies reach the app as they arrive (receive() / wsgi.input), as under uvicorn.
            self._route_rules(m.upper(), "/{path...}", 0, 60.0, None, False, 0.0, (), "", "", True)

    # -- declaring routes ---------------------------------------------------
    def static(self, method: str, path: str, body: Any = b"", *, status: int = 200,
               headers: HeadersArg = None, media_type: Optional[str] = None,
               rate_limit: int = 0, per: float = 60.0, rate_key: Optional[str] = None,
               api_key: bool = False) -> None:
        """A route answered entirely in the native core with a fixed response:
        no Python runs per request. body: dict/list → JSON, str → text, bytes raw,
        or a Response. Native rules as for route()."""
        res = body if isinstance(body, Response) else Response(body, status, headers, media_type)
        self._statics.append((method.upper(), path, res))
        self._route_rules(method.upper(), path, rate_limit, per, rate_key, api_key, 0.0, (), "", "")

    def route(self, path: str, methods: Sequence[str] = ("GET",), *, rate_limit: int = 0, per: float = 60.0,
              rate_key: Optional[str] = None, api_key: bool = False, cache: float = 0.0,
              cache_vary: Sequence[str] = (), body: Any = None,
              params: Optional[dict[str, dict[str, Any]]] = None, status_code: int = 200,
              stream: bool = False, max_body_size: int = 0) -> Callable[[F], F]:
        """Registers the decorated function (def or async def) for path and methods.
        Path parameters ("{name}", "{rest...}") arrive as keyword arguments.

        Native rules, checked in the core before Python runs: rate_limit
        requests per `per` seconds per client IP (or per value of the
        rate_key header) → 429 with Retry-After; api_key=True → one of
        app.api_keys() must come with the request (401 missing, 403 wrong);
        cache=seconds → GET answers are cached natively per path and query
        (and the cache_vary headers): the function runs once per key per TTL.

        Validation, native (FastAPI's 422 shape; a body that is not JSON: 400):
        body= a pydantic model class or a JSON Schema dict (a parameter
        annotated with a pydantic model implies it, and receives the model);
        params={"limit": {"type": "integer", "maximum": 100}} types path and
        query parameters (path parameters annotated int/float are typed
        automatically); other function parameters are typed query parameters.

        status_code= is the status of a return value that is not a Response
        (FastAPI's name: status_code=201 on a POST that creates).

        stream=True: the handler runs as soon as the request's head is in, and
        reads the body as it arrives with req.stream() (uploads of any size,
        memory bounded); max_body_size= limits it (bytes; over it: 413)."""
        if not 200 <= status_code <= 599:
            raise ValueError(f"status_code must be between 200 and 599, got {status_code}")
        if isinstance(max_body_size, bool) or not isinstance(max_body_size, int) or max_body_size < 0:
            raise ValueError(f"max_body_size must be a non-negative int, got {max_body_size!r}")
        if max_body_size and not stream:
            raise ValueError("max_body_size= is the limit of a streamed body: set stream=True too "
                             "(buffered bodies are limited by the server's max_body_bytes)")
        if stream and (body is not None or cache):
            raise ValueError("stream=True cannot be combined with body= (validation needs the whole body) or cache=")

        def deco(fn: F) -> F:
            for m in methods:
                self.add_route(m, path, fn)
                r = self._routes[-1]
                r.status_code = status_code
                r.stream = stream
                if stream and r.body_model is not None:
                    raise ValueError(f"{fn.__qualname__}: a pydantic body parameter needs the whole body; "
                                     "it cannot be used with stream=True")
                schema = _schema_json(body if body is not None else r.body_model)
                specs: dict[str, dict[str, Any]] = {n: {"in": "path", "type": t} for n, t in r.param_types.items()}
                for n, t, _conv, default in r.query_params:
                    specs[n] = {"in": "query", "type": t, "required": default is _REQUIRED}
                names = _param_names(path)
                for n, spec in (params or {}).items():
                    specs[n] = {**specs.get(n, {}), "in": "path" if n in names else "query", **spec}
                self._route_rules(m.upper(), path, rate_limit, per, rate_key, api_key, cache, cache_vary,
                                  schema, json.dumps(specs) if specs else "", stream, max_body_size)
            return fn

        return deco

    def _route_rules(self, method: str, path: str, rate_limit: int, per: float, rate_key: Optional[str],
                     api_key: bool, cache: float, cache_vary: Sequence[str], body_schema: str,
                     params_schema: str, stream: bool = False, max_body_size: int = 0) -> None:
        if not rate_limit and not api_key and not cache and not body_schema and not params_schema and not stream:
            return
        window_ms = _window_ms(per)
        ttl_ms = round(cache * 1000)
        if cache and not 1 <= ttl_ms <= 86_400_000:
            raise ValueError("cache must be between 0.001 and 86400 seconds")
        vary = ", ".join(cache_vary)
        self._native_rules.append(
            lambda nat: nat.route_rules(method, path, rate_limit, window_ms, rate_key or "", api_key, ttl_ms, vary,
                                        body_schema, params_schema, stream, max_body_size))

    def static_dir(self, prefix: str, directory: Union[str, "os.PathLike[str]"], *, max_age: int = 0,
                   gzip: bool = True, index: str = "index.html") -> None:
        """Serves a folder under prefix ("/static/") from the native core:
        ETag/Last-Modified/304, Range/206/416, content types, gzip
        (precompressed .gz or compressed once), no path traversal."""
        folder = os.fspath(directory)
        self._native_rules.append(lambda nat: nat.static_dir(prefix, folder, max_age, gzip, index))

    def compression(self, minimum_size: int = 1024, level: int = 6) -> None:
        """gzip for answers of at least minimum_size bytes when the client
        accepts it (as Starlette's GZipMiddleware), done natively."""
        self._native_rules.append(lambda nat: nat.compression(True, minimum_size, level))

    def cache_size(self, max_bytes: int) -> None:
        """Bounds the native response cache (LRU by bytes; default 64 MiB)."""
        self._native_rules.append(lambda nat: nat.cache_size(max_bytes))

    # -- native rules (the fast path) ---------------------------------------
    def cors(self, origins: Sequence[str], *, methods: Sequence[str] = ("GET", "HEAD", "POST"),
             headers: Sequence[str] = (), expose: Sequence[str] = (), credentials: bool = False,
             max_age: int = 600) -> None:
        """CORS in the core (as Starlette's CORSMiddleware): preflights are
        answered natively; responses to allowed origins get the allow headers;
        a foreign origin gets none. origins: exact origins or ["*"]."""
        args = (", ".join(origins), ", ".join(methods), ", ".join(headers), ", ".join(expose),
                credentials, max_age)
        self._native_rules.append(lambda nat: nat.cors(*args))

    def api_keys(self, keys: Sequence[str], *, header: str = "X-API-Key", query: Optional[str] = None) -> None:
        """The keys routes declared with api_key=True accept, from the header
        (or the query parameter when given); compared in constant time."""
        ks = list(keys)
        self._native_rules.append(lambda nat: nat.api_keys(ks, header, query or ""))

    def rate_limit(self, requests: int, per: float = 60.0, *, key: Optional[str] = None) -> None:
        """An app-wide rate limit for every route without its own: requests
        per `per` seconds per client IP (or per value of the `key` header)."""
        window_ms = _window_ms(per)
        self._native_rules.append(lambda nat: nat.rate_limit(requests, window_ms, key or ""))

    def metrics(self, path: str = "/metrics") -> None:
        """GET path answers Prometheus metrics natively (requests by route and
        status, latency histograms, connections, bytes, native vs Python)."""
        self._native_rules.append(lambda nat: nat.metrics(path))

    def access_log(self, enabled: bool = True) -> None:
        """One JSON line per answered request on stderr, written by the core."""
        self._native_rules.append(lambda nat: nat.access_log(enabled))

    def websocket(self, path: str, *, max_message_size: int = 16 << 20, max_backpressure: int = 1 << 20,
                  idle_timeout: float = 120.0, ping_interval: float = 0.0,
                  compression: Union[bool, str, None] = False, compression_window_bits: int = 15,
                  close_on_backpressure: bool = False, rate_limit: int = 0, per: float = 60.0,
                  rate_key: Optional[str] = None, api_key: bool = False) -> Callable[[F], F]:
        """Registers an ``async def handler(ws, **path_params)`` for WebSocket
        upgrades of GET path. ws has the names of Starlette's WebSocket
        (accept, receive_text/bytes/json, send_text/bytes/json, iter_text,
        close, ...) plus subscribe/unsubscribe of pub/sub topics.

        The core's limits: max_message_size (bytes; a bigger message closes
        the socket with 1009), max_backpressure (unsent bytes per socket:
        ``await ws.send_*`` waits while more than half of it is buffered, and
        received messages the handler has not taken hold at most this much
        before the core stops reading the socket), idle_timeout (seconds
        without a byte from the client: closed with 1001), ping_interval
        (seconds; 0 = no pings from the server), compression
        (permessage-deflate: False, True/"shared" or "dedicated";
        compression_window_bits 9..15 for "dedicated"), close_on_backpressure
        (close with 1008 instead of waiting). rate_limit/per/rate_key/api_key
        apply to the upgrade request, as for route()."""
        def make(fn: Any, adapter: Any) -> WsRoute:
            return WsRoute(path, fn, max_message_size=max_message_size, max_backpressure=max_backpressure,
                           idle_timeout=idle_timeout, ping_interval=ping_interval, compression=compression,
                           compression_window_bits=compression_window_bits,
                           close_on_backpressure=close_on_backpressure, adapter=adapter)

        make(None, True)  # the options are checked here, before the function

        def deco(fn: F) -> F:
            self._ws_routes.append(make(fn, None))
            self._route_rules("GET", path, rate_limit, per, rate_key, api_key, 0.0, (), "", "")
            return fn

        return deco

    def publish(self, topic: str, data: Any) -> int:
        """Sends data to every WebSocket subscribed to topic (``ws.subscribe``),
        on every loop, from any thread (sync code included): str as a text
        message, bytes as a binary one, anything else as JSON text. Framed
        once in the core; a subscriber over its max_backpressure misses it.
        Returns how many sockets it went to (0 when not serving)."""
        if not isinstance(topic, str):
            raise TypeError(f"a topic is a str, got {type(topic).__name__}")
        binary = isinstance(data, (bytes, bytearray, memoryview))
        if not binary and not isinstance(data, str):
            data = dumps(data)
        count = 0
        for engine in list(self._engines):
            server = engine.server
            if server is not None:
                count += max(server.publish(topic, data, binary, 0), 0)
        return count

    def add_route(self, method: str, path: str, fn: Callable[..., Any]) -> None:
        self._routes.append(_Route(method.upper(), path, fn))

    def get(self, path: str, **rules: Any) -> Callable[[F], F]:
        return self.route(path, ("GET",), **rules)

    def post(self, path: str, **rules: Any) -> Callable[[F], F]:
        return self.route(path, ("POST",), **rules)

    def put(self, path: str, **rules: Any) -> Callable[[F], F]:
        return self.route(path, ("PUT",), **rules)

    def delete(self, path: str, **rules: Any) -> Callable[[F], F]:
        return self.route(path, ("DELETE",), **rules)

    def patch(self, path: str, **rules: Any) -> Callable[[F], F]:
        return self.route(path, ("PATCH",), **rules)

    def options(self, path: str, **rules: Any) -> Callable[[F], F]:
        return self.route(path, ("OPTIONS",), **rules)

    # -- serving -------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 8080, workers: int = 0, *,
              threads: int = DEFAULT_THREADS, batch: int = DEFAULT_BATCH, **limits: int) -> "Server":
        """Starts serving in the background (its own thread runs the asyncio loop
        of async handlers) and returns once listening. Stop it with .stop()."""
        srv = Server(self, host, port, workers, threads=threads, batch=batch, **limits)
        srv.start()
        return srv

    async def serve(self, host: str = "127.0.0.1", port: int = 8080, workers: int = 0, *,
                    threads: int = DEFAULT_THREADS, batch: int = DEFAULT_BATCH,
                    started: Optional[Callable[[int], Any]] = None, shutdown_timeout: float = 5.0,
                    **limits: int) -> None:
        """Serves on the running asyncio loop (async handlers run on it) until the
        task is cancelled, then stops gracefully. started(port) is called once
        listening."""
        engine = _Engine(self, host, port, workers, threads, batch, limits)
        await engine.startup()
        engine.start(asyncio.get_running_loop())
        try:
            if started is not None:
                started(engine.port)
            await asyncio.Event().wait()  # until cancelled
        finally:
            await engine.stop(shutdown_timeout)
            await engine.shutdown()

    def run(self, host: str = "127.0.0.1", port: int = 8080, workers: int = 0, *,
            threads: int = DEFAULT_THREADS, batch: int = DEFAULT_BATCH, shutdown_timeout: float = 5.0,
            **limits: int) -> None:
        """Serves until SIGINT (Ctrl-C) or SIGTERM, then stops gracefully:
        in-flight requests get up to shutdown_timeout seconds."""

        async def main() -> None:
            loop = asyncio.get_running_loop()
            stop = asyncio.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            engine = _Engine(self, host, port, workers, threads, batch, limits)
            await engine.startup()
            engine.start(loop)
            logger.info("quicklane: listening on http://%s:%d", host, engine.port)
            try:
                await stop.wait()
                logger.info("quicklane: shutting down (in-flight requests get %.1f s)", shutdown_timeout)
            finally:
                await engine.stop(shutdown_timeout)
                await engine.shutdown()

        asyncio.run(main())


class _Engine:
    """One native server with its queues, the sync thread pool and the asyncio
    side. Lives on one asyncio loop (async handlers run there)."""

    def __init__(self, app: App, host: str, port: int, workers: int, threads: int, batch: int,
                 limits: dict[str, int]) -> None:
        if threads < 1 or batch < 1:
            raise ValueError("threads and batch must be at least 1")
        # Checked here, with the names the user typed (else pybind11 answers with its signature).
        if not isinstance(host, str):
            raise TypeError(f"host must be a string, got {type(host).__name__}")
        for name, value, high in (("port", port, 65535), ("workers", workers, 256)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
            if not 0 <= value <= high:
                raise ValueError(f"{name} must be between 0 and {high}, got {value}")
        for name, value in limits.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative int, got {value!r}")
        # max_body_bytes is a limit for streamed bodies too (none by default, as uvicorn).
        if limits.get("max_body_bytes") and "max_stream_body_bytes" not in limits:
            limits = {**limits, "max_stream_body_bytes": limits["max_body_bytes"]}
        self.app = app
        self.routes = list(app._routes)
        self.ws_routes = list(app._ws_routes)
        self.hub: Optional[WsHub] = None
        self.statics = list(app._statics)
        self.mounts = list(app._mounts)
        self.native_rules = list(app._native_rules)
        self.cycles: dict[int, Any] = {}  # ASGI request cycles by request id
        self.body_waiters: dict[int, asyncio.Future[None]] = {}  # async readers of streamed bodies, by id
        self.drains = Drains()  # producers of streamed answers waiting for the socket
        self.host, self.req_port, self.workers = host, port, workers
        self.threads, self.batch, self.limits = threads, batch, limits
        self.port = 0
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.server: Optional[_native.Server] = None
        self.sync_q: Optional[_native.Queue] = None
        self.async_q: Optional[_native.Queue] = None
        self.apoller: Optional[_native.Poller] = None
        self.pool: list[threading.Thread] = []
        self.tasks: dict[int, tuple[asyncio.Task[None], _native.NativeRequest]] = {}
        self.closing = False
        self.backlog: collections.deque[Any] = collections.deque()
        self.poll_lock = threading.Lock()  # held by the one sync thread polling the native queue

    # -- lifecycle -------------------------------------------------------------
    async def startup(self) -> None:
        """Lifespan startup of mounted ASGI apps (before listening)."""
        for m in self.mounts:
            await m.startup()

    async def shutdown(self) -> None:
        """Lifespan shutdown of mounted ASGI apps (after the drain)."""
        for m in reversed(self.mounts):
            await m.shutdown()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        nat = _native.App()
        for method, path, res in self.statics:
            nat.static_route(method, path, res.status_code, res.media_type, res.headers, res.body)
        if any(not r.is_async for r in self.routes):
            self.sync_q = _native.Queue()
        if any(r.is_async for r in self.routes) or self.ws_routes:
            self.async_q = _native.Queue()
        for i, r in enumerate(self.routes):
            q = self.async_q if r.is_async else self.sync_q
            assert q is not None
            nat.route_queue(r.method, r.pattern, q, i)
        for i, w in enumerate(self.ws_routes):
            assert self.async_q is not None
            nat.ws_queue(w.pattern, self.async_q, WS_ROUTE_BASE + i, w.max_message_size, w.max_backpressure,
                         w.idle_timeout_ms, w.ping_interval_ms, w.compression, w.window_bits,
                         w.close_on_backpressure)
        if self.ws_routes:
            self.hub = WsHub(loop)
        for rule in self.native_rules:
            rule(nat)
        server = _native.Server(nat, self.host, self.req_port, self.workers, dict(self.limits))
        server.start()
        self.server = server
        self.port = server.port()
        if self.hub is not None:
            self.hub.server = server
        self.app._engines.append(self)
        for m in self.mounts:
            m.bind(self, self.host, self.port)
        if self.sync_q is not None:
            for i in range(self.threads):
                t = threading.Thread(target=self._sync_worker, args=(_native.Poller(self.sync_q),),
                                     name=f"quicklane-sync-{i}", daemon=True)
                t.start()
                self.pool.append(t)
        if self.async_q is not None:
            self.apoller = _native.Poller(self.async_q)
            loop.add_reader(self.async_q.fd(), self._on_async_ready)

    async def stop(self, timeout: float = 5.0) -> None:
        """Graceful: stop accepting, let in-flight requests finish for up to
        timeout seconds (async handlers keep running on this loop meanwhile),
        abort the rest, join the pool, free the server."""
        server = self.server
        if server is None:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, server.stop, int(timeout * 1000))
        self.closing = True
        if self in self.app._engines:
            self.app._engines.remove(self)
        if self.async_q is not None:
            self._on_async_ready()  # take the last events (aborts, WebSocket closes)
            loop.remove_reader(self.async_q.fd())
            for task, _ in list(self.tasks.values()):
                task.cancel()
            if self.tasks:
                await asyncio.wait([t for t, _ in self.tasks.values()], timeout=timeout + 1.0)
            hub = self.hub
            if hub is not None and hub.tasks:
                # Their sockets are closed (a receive raises WebSocketDisconnect): let them end, then cancel.
                _, left = await asyncio.wait(list(hub.tasks), timeout=timeout)
                for t in left:
                    t.cancel()
                if left:
                    await asyncio.wait(left, timeout=1.0)
            if self.cycles:  # ASGI apps finish their background work, then are cancelled
                pending = [c.task for c in self.cycles.values() if c.task is not None]
                if pending:
                    _, left = await asyncio.wait(pending, timeout=timeout)
                    for t in left:
                        t.cancel()
                    if left:
                        await asyncio.wait(left, timeout=1.0)
            self.async_q.close()
        if self.sync_q is not None:
            self.sync_q.close()
            pool, self.pool = self.pool, []
            await loop.run_in_executor(None, _join_all, pool, timeout + 1.0)
            stuck = [t.name for t in pool if t.is_alive()]
        else:
            stuck = []
        self.server = None
        if self.hub is not None:
            self.hub.server = None
            stuck += ["websocket"] * len(self.hub.tasks)
        if stuck or self.tasks or self.cycles:
            # A handler still runs and will answer through this server: freeing
            # it now would be a use-after-free, so it is kept (and leaked).
            logger.warning("quicklane: %d handler(s) still running after stop; the server is not freed",
                           len(stuck) + len(self.tasks) + len(self.cycles))
            _kept_servers.append(server)
            return
        server.close()

    # -- sync handlers: a bounded pool of threads polling batches ----------------
    def _sync_worker(self, poller: _native.Poller) -> None:
        # Leader/followers: one thread at a time waits in the native poll (the
        # others wait for poll_lock, GIL released) and takes a whole batch. It
        # keeps the first request and leaves the rest in a shared backlog that
        # every thread drains before it polls. The lock's release wakes a
        # follower: with fast handlers the leader, holding the GIL, has usually
        # run the whole batch before the follower gets it; a handler that
        # blocks (sleep, I/O) releases the GIL and the follower takes the next
        # request, so a slow handler never holds back its batch-mates.
        routes, batch, backlog, lock = self.routes, self.batch, self.backlog, self.poll_lock
        while True:
            try:
                ev = backlog.popleft()
            except IndexError:
                with lock:
                    try:
                        ev = backlog.popleft()
                    except IndexError:
                        events = poller.poll(batch, -1)  # waits without the GIL
                        if events is None:
                            return  # closed and drained (the backlog is empty: checked above)
                        if not events:
                            continue
                        ev = events[0]
                        if len(events) > 1:
                            backlog.extend(events[1:])
            if isinstance(ev, tuple):
                if ev[0] == _native.EVENT_DRAIN:
                    self.drains.wake(ev[1])
                continue  # a BODY event: sync reads block instead
            if isinstance(ev, int):
                self.drains.wake(ev)  # a producer waiting for the socket learns the client left
                continue  # an abort: the answer will just free the request
            if self.closing:
                ev.discard()
                continue
            route = routes[ev.route]
            if route.adapter is not None:
                route.adapter.handle(ev)  # a mounted WSGI app (answers every request itself)
                continue
            req = Request(ev, False, None, True if route.stream else None)
            try:
                result = route.fn(**route.kwargs(req))
                sr = as_stream(result)
                if sr is not None:
                    send_sync(ev, sr, self.drains, f"{route.method} {route.pattern}", type(result).__name__)
                else:
                    _answer(ev, result, route)
            except BaseException as e:  # noqa: BLE001 - every failure becomes an answer
                _answer_error(ev, e, route)

    # -- async handlers: one asyncio loop reading the queue's eventfd ----------
    def _on_async_ready(self) -> None:
        assert self.apoller is not None and self.loop is not None
        events = self.apoller.poll(256, 0)
        if not events:
            return
        routes, tasks, loop, cycles = self.routes, self.tasks, self.loop, self.cycles
        waiters = self.body_waiters
        hub = self.hub
        for ev in events:
            if isinstance(ev, tuple):
                k = ev[0]
                if k >= _native.EVENT_WS_OPEN:
                    if hub is not None:
                        hub.event(ev)  # type: ignore[arg-type]
                    elif k == _native.EVENT_WS_MESSAGE:
                        ev[2].release()  # type: ignore[misc]
                elif k == _native.EVENT_DRAIN:
                    self.drains.wake(ev[1])
                else:
                    wake(waiters, ev[1])  # more of a streamed body can be read
                continue
            if isinstance(ev, int):
                if hub is not None and hub.aborted(ev):
                    continue  # the WebSocket's handler learns it at accept
                # A reader waiting for body bytes reads again and gets
                # ClientDisconnect (or http.disconnect) instead of a cancel.
                reading = ev in waiters
                wake(waiters, ev)
                self.drains.wake(ev)
                cycle = cycles.get(ev)
                if cycle is not None:
                    cycle.on_disconnect()  # receive() gives http.disconnect; the app decides
                    continue
                if reading:
                    continue  # the handler learns it at its read, and ends itself
                entry = tasks.pop(ev, None)
                if entry is not None:
                    task, nreq = entry
                    task.cancel()
                    task.add_done_callback(_discarder(nreq))
                continue
            if self.closing:
                ev.discard()
                continue
            if ev.route >= WS_ROUTE_BASE:
                ws_route = self.ws_routes[ev.route - WS_ROUTE_BASE]
                if hub is None:
                    ev.discard()
                elif ws_route.adapter is not None:
                    ws_route.adapter.dispatch_ws(ev, ws_route, hub)
                else:
                    hub.dispatch(ws_route, ev)
                continue
            route = routes[ev.route]
            if route.adapter is not None:
                route.adapter.dispatch(ev, loop, cycles)
                continue
            tasks[ev.id] = (loop.create_task(self._run_async(route, ev)), ev)

    async def _run_async(self, route: _Route, ev: _native.NativeRequest) -> None:
        try:
            streamed = AsyncBody(ev, self.body_waiters, self.loop) if route.stream and self.loop else None
            req = Request(ev, True, None, streamed)
            result = await route.fn(**route.kwargs(req))
            sr = as_stream(result)
            if sr is not None and self.loop is not None:
                await send_async(ev, sr, self.drains, self.loop, f"{route.method} {route.pattern}",
                                 type(result).__name__)
            else:
                _answer(ev, result, route)
        except asyncio.CancelledError:
            ev.discard()  # client left or server stopped: free the request
        except BaseException as e:  # noqa: BLE001
            _answer_error(ev, e, route)
        finally:
            self.tasks.pop(ev.id, None)


_kept_servers: list[_native.Server] = []


def _discarder(n: _native.NativeRequest) -> Callable[[Any], None]:
    def done(_task: Any) -> None:
        n.discard()  # a no-op when the handler answered before the cancel landed

    return done


def _join_all(threads: list[threading.Thread], timeout: float) -> None:
    for t in threads:
        t.join(timeout)


def _answer(ev: _native.NativeRequest, result: Any, route: _Route) -> None:
    try:
        status, ctype, headers, body = _render(result)
        if route.status_code != 200 and not isinstance(result, Response):
            status = route.status_code
    except (TypeError, ValueError) as e:  # no answer can be made of it: never 200 with a repr
        logger.error("quicklane: %s %s returned %s, which is not an answer (%s); sent 500",
                     route.method, route.pattern, type(result).__name__, e)
        ev.respond(500, JSON_TYPE, None, _INTERNAL_ERROR)
        return
    try:
        ev.respond(status, ctype, headers, body)
    except ValueError as e:  # refused by the core (e.g. a reserved header): the request is still ours
        logger.error("quicklane: invalid response from %s %s: %s", route.method, route.pattern, e)
        ev.respond(500, JSON_TYPE, None, _INTERNAL_ERROR)


def _answer_error(ev: _native.NativeRequest, e: BaseException, route: _Route) -> None:
    if isinstance(e, ClientDisconnect):
        ev.discard()  # nobody to answer: free the request
        return
    if isinstance(e, HTTPError):
        try:
            ev.respond(*_error_parts(e))
            return
        except ValueError as bad:
            logger.error("quicklane: invalid HTTPError from %s %s: %s", route.method, route.pattern, bad)
    else:
        logger.error("quicklane: exception in %s %s", route.method, route.pattern,
                     exc_info=(type(e), e, e.__traceback__))
    ev.respond(500, JSON_TYPE, None, _INTERNAL_ERROR)


class Server:
    """A running server in a background thread (see App.start). Context manager."""

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 8080, workers: int = 0, *,
                 threads: int = DEFAULT_THREADS, batch: int = DEFAULT_BATCH, **limits: int) -> None:
        self._engine = _Engine(app, host, port, workers, threads, batch, limits)
        self._thread: Optional[threading.Thread] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stop: Optional[asyncio.Event] = None
        self._ready = threading.Event()
        self._error: Optional[BaseException] = None
        self._timeout = 5.0

    @property
    def port(self) -> int:
        return self._engine.port

    def stats(self) -> dict[str, int]:
        s = self._engine.server
        return s.stats() if s is not None else {}

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("quicklane: a Server starts once")
        self._thread = threading.Thread(target=self._main, name="quicklane-asyncio", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._run())
        finally:
            loop.close()

    async def _run(self) -> None:
        self._stop = asyncio.Event()
        try:
            await self._engine.startup()
            self._engine.start(asyncio.get_running_loop())
        except BaseException as e:
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self._engine.stop(self._timeout)
            await self._engine.shutdown()

    def stop(self, timeout: float = 5.0) -> None:
        """Graceful stop (in-flight requests get up to timeout seconds); waits for it."""
        t = self._thread
        if t is None or self._loop is None or self._stop is None:
            return
        self._timeout = timeout
        if t.is_alive():
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:  # loop already closed
                pass
        t.join()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["App", "Server", "Request", "Response", "HTTPError"]
