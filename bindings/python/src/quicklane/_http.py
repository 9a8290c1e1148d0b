"""Requests, responses and errors: the values a handler sees and returns."""
from __future__ import annotations

import datetime as _dt
import decimal as _decimal
import enum as _enum
import http
import json as _json
import pathlib as _pathlib
import uuid as _uuid
from typing import Any, AsyncIterator, Iterator, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from . import _native

try:  # orjson is the fastest encoder measured (docs/python.md); stdlib json is the fallback.
    import orjson as _orjson

    _ORJSON_OPTS = _orjson.OPT_NON_STR_KEYS
except ImportError:  # pragma: no cover
    _orjson = None  # type: ignore[assignment]

JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"
BYTES_TYPE = "application/octet-stream"

HeaderList = Sequence[Tuple[str, str]]
HeadersArg = Union[Mapping[str, str], HeaderList, None]


def _encodable(obj: Any) -> Any:
    """What FastAPI's encoder makes of the types JSON has no form for; TypeError
    for anything else (a generator, a socket...), never its repr."""
    model_dump = getattr(obj, "model_dump", None)
    if callable(model_dump):  # a pydantic model
        return model_dump(mode="json")
    if isinstance(obj, _decimal.Decimal):
        exp = obj.as_tuple().exponent  # as FastAPI: 3 -> 3, 1.50 -> 1.5 (NaN, Infinity: floats)
        return int(obj) if isinstance(exp, int) and exp >= 0 else float(obj)
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    if isinstance(obj, (_dt.datetime, _dt.date, _dt.time)):
        return obj.isoformat()
    if isinstance(obj, _dt.timedelta):
        return obj.total_seconds()
    if isinstance(obj, _enum.Enum):
        return obj.value
    if isinstance(obj, (_uuid.UUID, _pathlib.PurePath)):
        return str(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _stdlib_dumps(obj: Any) -> bytes:
    return _json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=_encodable).encode()


def dumps(obj: Any) -> bytes:
    """Encodes obj as compact UTF-8 JSON (orjson when installed, else stdlib json).
    TypeError for a value with no JSON form."""
    if _orjson is not None:
        try:
            return _orjson.dumps(obj, default=_encodable, option=_ORJSON_OPTS)
        except TypeError:  # a type orjson does not take even so (huge int, ...): stdlib decides
            pass
    return _stdlib_dumps(obj)


def loads(data: Union[bytes, str]) -> Any:
    if _orjson is not None:
        return _orjson.loads(data)
    return _json.loads(data)


def _header_list(headers: HeadersArg) -> Optional[list[tuple[str, str]]]:
    if not headers:
        return None
    if isinstance(headers, Mapping):
        return [(str(k), str(v)) for k, v in headers.items()]
    return [(str(k), str(v)) for k, v in headers]


class HTTPError(Exception):
    """Raise it from a handler to answer `status_code` with `{"detail": detail}`.

    The detail defaults to the status's reason phrase ("Not Found").
    """

    def __init__(self, status_code: int, detail: Any = None, headers: HeadersArg = None) -> None:
        if detail is None:
            try:
                detail = http.HTTPStatus(status_code).phrase
            except ValueError:
                detail = "Error"
        super().__init__(status_code, detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = headers

    def __str__(self) -> str:
        return f"{self.status_code}: {self.detail}"


def typed_path_params(params: Mapping[str, str], converters: Mapping[str, Any]) -> dict[str, Any]:
    """A route's path parameters as its handler's keyword arguments, those
    annotated int or float converted (422 when one is not)."""
    kw: dict[str, Any] = dict(params)
    for n, conv in converters.items():
        try:
            kw[n] = conv(kw[n])
        except ValueError:
            raise HTTPError(422, f"path parameter {n!r} must be {conv.__name__}") from None
    return kw


class Response:
    """A full response: body (dict/list → JSON, str → text, bytes → raw), status,
    headers (a mapping or (name, value) pairs) and media type (Content-Type)."""

    __slots__ = ("body", "status_code", "headers", "media_type")

    def __init__(
        self,
        body: Any = b"",
        status: int = 200,
        headers: HeadersArg = None,
        media_type: Optional[str] = None,
    ) -> None:
        raw: bytes
        if body is None:
            raw, default_type = b"", None
        elif isinstance(body, (bytes, bytearray, memoryview)):
            raw, default_type = bytes(body), BYTES_TYPE if body else None
        elif isinstance(body, str):
            raw, default_type = body.encode(), TEXT_TYPE
        else:
            raw, default_type = dumps(body), JSON_TYPE
        self.body: bytes = raw
        self.status_code: int = status
        self.headers: Optional[list[tuple[str, str]]] = _header_list(headers)
        self.media_type: Optional[str] = media_type if media_type is not None else default_type

    def __repr__(self) -> str:
        return f"Response(status={self.status_code}, media_type={self.media_type!r}, {len(self.body)} bytes)"


class Address(NamedTuple):
    host: str
    port: int


class Headers(Mapping[str, str]):
    """Request headers: case-insensitive lookup giving the first value;
    `getlist(name)` gives every value, `raw` the pairs as received."""

    __slots__ = ("raw", "_map")

    def __init__(self, raw: list[tuple[str, str]]) -> None:
        self.raw = raw
        m: dict[str, str] = {}
        for k, v in raw:
            m.setdefault(k.lower(), v)
        self._map = m

    def __getitem__(self, name: str) -> str:
        return self._map[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._map

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def get(self, name: str, default: Any = None) -> Any:
        return self._map.get(name.lower(), default)

    def getlist(self, name: str) -> list[str]:
        n = name.lower()
        return [v for k, v in self.raw if k.lower() == n]

    def __repr__(self) -> str:
        return f"Headers({self.raw!r})"


class QueryParams(Mapping[str, str]):
    """Query parameters (percent-decoded, '+' is a space): `q["a"]` is the first
    value of a; `getlist("a")` every value; `multi_items()` all pairs in order."""

    __slots__ = ("_items", "_map")

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items
        m: dict[str, str] = {}
        for k, v in items:
            m.setdefault(k, v)
        self._map = m

    def __getitem__(self, name: str) -> str:
        return self._map[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def getlist(self, name: str) -> list[str]:
        return [v for k, v in self._items if k == name]

    def multi_items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __repr__(self) -> str:
        return f"QueryParams({self._items!r})"


class _Ready:
    """An already-computed value that can be awaited (Request.json in async handlers)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Any:
        return self.value
        yield  # pragma: no cover  (makes this a generator)


_MISSING: Any = object()


async def _once(data: bytes) -> AsyncIterator[bytes]:
    if data:
        yield data


class Request:
    """The request a handler receives.

    Its data is borrowed from the native core until the request is answered;
    each attribute is copied into Python objects on first use, so what a handler
    read stays usable afterwards. Reading a new attribute after the answer
    raises ValueError.
    """

    __slots__ = ("_n", "_async", "_method", "_path", "_params", "_query", "_headers", "_body", "_json",
                 "_client", "state", "_streamed")

    def __init__(self, native: _native.NativeRequest, is_async: bool = False,
                 params: Optional[dict[str, str]] = None, streamed: Any = None) -> None:
        self._n = native
        self._async = is_async
        # stream=True routes: the body arrives while the handler runs (an
        # AsyncBody in async handlers, True in sync ones).
        self._streamed = streamed
        self._method: Optional[str] = None
        self._path: Optional[str] = None
        self._params = params
        self._query: Optional[QueryParams] = None
        self._headers: Optional[Headers] = None
        self._body: Optional[bytes] = None
        self._json: Any = _MISSING
        self._client: Optional[Address] = None
        self.state: dict[str, Any] = {}

    @property
    def method(self) -> str:
        if self._method is None:
            self._method = self._n.method()
        return self._method

    @property
    def path(self) -> str:
        """The path as sent (not percent-decoded), without the query."""
        if self._path is None:
            self._path = self._n.path()
        return self._path

    @property
    def url(self) -> str:
        """The raw request target (path and query)."""
        return self._n.target()

    @property
    def query_string(self) -> str:
        return self._n.query_string()

    @property
    def route(self) -> str:
        """The pattern of the matched route, e.g. "/hello/{name}"."""
        return self._n.route_pattern()

    @property
    def params(self) -> dict[str, str]:
        """Path parameters, percent-decoded."""
        if self._params is None:
            self._params = self._n.params()
        return self._params

    path_params = params

    @property
    def query(self) -> QueryParams:
        if self._query is None:
            self._query = QueryParams(self._n.query())
        return self._query

    query_params = query

    @property
    def headers(self) -> Headers:
        if self._headers is None:
            self._headers = Headers(self._n.headers())
        return self._headers

    def header(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """One header (case-insensitive), without copying the others."""
        if self._headers is not None:
            return self._headers.get(name, default)  # type: ignore[no-any-return]
        v = self._n.header(name)
        return default if v is None else v

    @property
    def body(self) -> bytes:
        if self._body is None:
            if self._streamed is not None:
                if self._async:
                    raise RuntimeError("quicklane: on a stream=True route, read the body in an async handler with "
                                       "`async for chunk in req.stream()` or `await req.json()`")
                self._body = self.stream().read()
            else:
                self._body = self._n.body()
        return self._body

    def stream(self) -> Any:
        """The body as it arrives. In ``async def``: an async iterator of bytes
        chunks (``async for chunk in req.stream()``, as Starlette). In ``def``:
        a file-like object (``read(n)``, ``readline()``), read on the handler's
        pool thread. On routes without stream=True the buffered body comes the
        same way. A client that leaves mid-body raises ClientDisconnect."""
        from ._body import body_file

        if self._streamed is not None:
            return self._streamed if self._async else body_file(self._n)
        data = self.body
        if self._async:
            return _once(data)
        import io

        return io.BytesIO(data)

    @property
    def client(self) -> Address:
        if self._client is None:
            self._client = Address(*self._n.client())
        return self._client

    @property
    def http_version(self) -> str:
        return "1.1" if self._n.http_minor() == 1 else "1.0"

    def json(self) -> Any:
        """The body parsed as JSON; invalid JSON raises HTTPError(400).

        In an ``async def`` handler, ``await req.json()`` (as in FastAPI); in a
        ``def`` handler, ``req.json()`` gives the value directly.
        """
        if self._json is _MISSING and self._streamed is not None and self._async and self._body is None:
            return self._read_json()
        if self._json is _MISSING:
            try:
                self._json = loads(self.body)
            except ValueError as e:
                raise HTTPError(400, f"invalid JSON body: {e}") from None
        return _Ready(self._json) if self._async else self._json

    async def _read_json(self) -> Any:
        self._body = await self._streamed.read()
        self._async = False
        try:
            return self.json()
        finally:
            self._async = True

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def answered(self) -> bool:
        return self._n.finished

    def __repr__(self) -> str:
        try:
            return f"<Request {self.method} {self.path}>"
        except ValueError:
            return "<Request (answered)>"


class StreamingResponse:
    """An answer streamed as it is produced (Starlette's name and shape).

    content: an async iterable (in ``async def`` handlers) or an iterable
    (generator) of bytes or str chunks. Chunked unless ``content_length`` is
    given. A client that stops reading pauses the producer (the core's buffer
    stays bounded); a client that leaves ends the iteration; an exception
    mid-stream cuts the answer so the client sees it broken, never complete.
    Returning a (async) generator from a handler streams it the same way.
    """

    __slots__ = ("content", "status_code", "headers", "media_type", "content_length")

    def __init__(self, content: Any, status: int = 200, headers: HeadersArg = None,
                 media_type: Optional[str] = None, content_length: Optional[int] = None) -> None:
        self.content = content
        self.status_code = status
        self.headers = _header_list(headers)
        self.media_type = media_type
        self.content_length = content_length


class ServerSentEvent:
    """One server-sent event: data (str, or anything JSON-able), event, id, retry (ms)."""

    __slots__ = ("data", "event", "id", "retry")

    def __init__(self, data: Any = "", event: Optional[str] = None, id: Optional[str] = None,
                 retry: Optional[int] = None) -> None:
        # A line break would start a second field: refused, as in every binding.
        if event is not None and ("\n" in event or "\r" in event):
            raise ValueError("an SSE event name must not contain a line break")
        if id is not None and ("\n" in id or "\r" in id or "\0" in id):
            raise ValueError("an SSE id must not contain a line break or NUL")
        self.data = data
        self.event = event
        self.id = id
        self.retry = retry

    def encode(self) -> bytes:
        data = self.data if isinstance(self.data, str) else dumps(self.data).decode()
        out = []
        if self.event is not None:
            out.append(f"event: {self.event}\n")
        if self.id is not None:
            out.append(f"id: {self.id}\n")
        if self.retry is not None:
            out.append(f"retry: {int(self.retry)}\n")
        # CRLF, CR and LF all end a line in text/event-stream: each becomes a data: line.
        for line in data.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
            out.append(f"data: {line}\n")
        out.append("\n")
        return "".join(out).encode()


KEEP_ALIVE_COMMENT = b": keep-alive\n\n"


class EventSourceResponse(StreamingResponse):
    """Server-sent events (text/event-stream) from an (async) iterable of
    ServerSentEvent, str or JSON-able items; a keep-alive comment goes out
    every `ping` seconds while the producer is quiet (async producers)."""

    __slots__ = ("ping",)

    def __init__(self, content: Any, status: int = 200, headers: HeadersArg = None, ping: float = 15.0) -> None:
        hs = _header_list(headers) or []
        if not any(k.lower() == "cache-control" for k, _ in hs):
            hs.append(("Cache-Control", "no-cache"))
        super().__init__(content, status, hs, "text/event-stream")
        self.ping = ping


def sse_encode(item: Any) -> bytes:
    if isinstance(item, ServerSentEvent):
        return item.encode()
    if isinstance(item, (bytes, bytearray)):
        return bytes(item)
    return ServerSentEvent(item).encode()
