"""Streamed answers of native handlers (StreamingResponse, generators, SSE)
over ql_respond_start/write/end, with the core's drain notification as the
backpressure signal."""
from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from typing import Any, Optional

from . import _native
from ._http import EventSourceResponse, KEEP_ALIVE_COMMENT, StreamingResponse, sse_encode

logger = logging.getLogger("quicklane")


def as_stream(result: Any) -> Optional[StreamingResponse]:
    """The StreamingResponse a handler's return value stands for, or None."""
    if isinstance(result, StreamingResponse):
        return result
    if inspect.isasyncgen(result) or inspect.isgenerator(result):
        return StreamingResponse(result, media_type="application/octet-stream")
    return None


def _head(sr: StreamingResponse) -> list[tuple[str, str]]:
    hs = list(sr.headers or [])
    if sr.media_type and not any(k.lower() == "content-type" for k, _ in hs):
        hs.append(("Content-Type", sr.media_type))
    if sr.content_length is not None:
        hs.append(("Content-Length", str(sr.content_length)))
    return hs


def _bytes(chunk: Any, sse: bool) -> bytes:
    if sse:
        return sse_encode(chunk)
    if isinstance(chunk, str):
        return chunk.encode()
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        return bytes(chunk)
    raise TypeError(f"a streamed chunk must be bytes or str, not {type(chunk).__name__}")


_INTERNAL = b'{"detail":"Internal Server Error"}'


def _refuse(ev: _native.NativeRequest, where: str, what: str, e: BaseException) -> None:
    """The first chunk failed: nothing is sent yet, so a clean 500."""
    logger.error("quicklane: %s returned %s, which is not an answer (%s); sent 500", where, what, e,
                 exc_info=None if isinstance(e, TypeError) else (type(e), e, e.__traceback__))
    ev.respond(500, "application/json", None, _INTERNAL)


class Drains:
    """Waiters for QL_EVENT_DRAIN, by request id: futures on the asyncio loop,
    threading.Events for pool threads."""

    def __init__(self) -> None:
        self.futures: dict[int, asyncio.Future[None]] = {}
        self.events: dict[int, threading.Event] = {}

    def wake(self, rid: int) -> None:
        fut = self.futures.pop(rid, None)
        if fut is not None and not fut.done():
            fut.set_result(None)
        ev = self.events.pop(rid, None)
        if ev is not None:
            ev.set()

    async def wait_async(self, ev: _native.NativeRequest, loop: asyncio.AbstractEventLoop) -> bool:
        """Until the core holds at most DRAIN_LOW bytes; False once the client left."""
        while True:
            fut = self.futures[ev.id] = loop.create_future()
            try:
                await asyncio.wait_for(fut, 1.0)  # the event; a bounded re-check all the same
            except asyncio.TimeoutError:
                pass
            finally:
                if self.futures.get(ev.id) is fut:
                    del self.futures[ev.id]
            b = ev.stream_write(b"")
            if b < 0:
                return False
            if b <= _native.DRAIN_LOW:
                return True

    def wait_sync(self, ev: _native.NativeRequest) -> bool:
        while True:
            e = self.events[ev.id] = threading.Event()
            e.wait(0.05)  # pool threads may all be producing: re-check without the event too
            self.events.pop(ev.id, None)
            b = ev.stream_write(b"")
            if b < 0:
                return False
            if b <= _native.DRAIN_LOW:
                return True


def _start(ev: _native.NativeRequest, sr: StreamingResponse, first: bytes) -> bool:
    try:
        st = ev.stream_start(sr.status_code, _head(sr), first)
    except ValueError as e:
        logger.error("quicklane: invalid streamed response head: %s", e)
        ev.respond(500, "application/json", None, b'{"detail":"Internal Server Error"}')
        return False
    return st == _native.OK


async def send_async(ev: _native.NativeRequest, sr: StreamingResponse, drains: Drains,
                     loop: asyncio.AbstractEventLoop, where: str, what: str) -> None:
    sse = isinstance(sr, EventSourceResponse)
    content = sr.content
    it: Any = content.__aiter__() if hasattr(content, "__aiter__") else iter(content)
    is_async = hasattr(it, "__anext__")
    ping = sr.ping if isinstance(sr, EventSourceResponse) else 0.0
    started = False
    try:
        # The head goes out with the first chunk (SSE: at once), so a producer
        # that fails before it still gets a clean 500.
        first = b""
        if not sse:
            try:
                first = _bytes(await it.__anext__() if is_async else next(it), sse)
            except (StopAsyncIteration, StopIteration):
                pass
            except Exception as e:  # noqa: BLE001
                _refuse(ev, where, what, e)
                return
        started = True
        if not _start(ev, sr, first):
            return
        while True:
            if is_async:
                nxt = asyncio.ensure_future(it.__anext__())
                while ping > 0:
                    done, _ = await asyncio.wait({nxt}, timeout=ping)
                    if done:
                        break
                    if ev.stream_write(KEEP_ALIVE_COMMENT) < 0:
                        nxt.cancel()
                        return
                try:
                    chunk = await nxt
                except StopAsyncIteration:
                    break
            else:
                try:
                    chunk = next(it)
                except StopIteration:
                    break
            b = ev.stream_write(_bytes(chunk, sse))
            if b < 0:
                return  # the client left: stop producing
            if b > _native.DRAIN_HIGH and not await drains.wait_async(ev, loop):
                return
        ev.stream_end()
    except (Exception, asyncio.CancelledError) as e:
        if not isinstance(e, asyncio.CancelledError):
            logger.error("quicklane: exception while streaming %s; answer cut", where,
                         exc_info=(type(e), e, e.__traceback__))
        if started:
            ev.abort()
        if isinstance(e, asyncio.CancelledError):
            raise
    finally:
        close = getattr(it, "aclose", None) or getattr(it, "close", None)
        if close is not None:
            r = close()
            if inspect.isawaitable(r):
                await r


def send_sync(ev: _native.NativeRequest, sr: StreamingResponse, drains: Drains, where: str, what: str) -> None:
    sse = isinstance(sr, EventSourceResponse)
    it = iter(sr.content)
    try:
        first = b""
        if not sse:
            try:
                first = _bytes(next(it), sse)
            except StopIteration:
                pass
            except Exception as e:  # noqa: BLE001
                _refuse(ev, where, what, e)
                return
        if not _start(ev, sr, first):
            return
        for chunk in it:
            b = ev.stream_write(_bytes(chunk, sse))
            if b < 0:
                return
            if b > _native.DRAIN_HIGH and not drains.wait_sync(ev):
                return
        ev.stream_end()
    except Exception as e:  # noqa: BLE001
        logger.error("quicklane: exception while streaming %s; answer cut", where,
                     exc_info=(type(e), e, e.__traceback__))
        ev.abort()
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()
