"""Streamed request bodies (routes with stream=True, and mounted ASGI/WSGI apps).

The core dispatches such a request once its head is complete and keeps at most
a window of unread body bytes (then it stops reading the socket): memory stays
bounded whatever the upload's size. Sync code reads with blocking calls on its
pool thread (the GIL released); async code awaits the queue's BODY event.
"""
from __future__ import annotations

import asyncio
import io
from typing import Any, AsyncIterator, Optional

from . import _native
from ._http import HTTPError

# Bytes asked for per read: the core hands over what it holds, up to this.
CHUNK = 256 * 1024
# A blocking read wakes this often (ms) so a stopping server is never waited on forever.
_WAIT_MS = 1000


class ClientDisconnect(Exception):
    """The client left before the request body ended (Starlette's name)."""


def checked(res: Any) -> Optional[bytes]:
    """A native read's result: bytes (b"" at the end) or None (nothing yet);
    a failure raises."""
    if isinstance(res, int):
        if res == _native.E_TOO_LARGE:
            raise HTTPError(413, "request body too large")
        if res == _native.E_INVALID:
            raise HTTPError(400, "malformed request body")
        raise ClientDisconnect("the client left before the request body ended")
    return res  # type: ignore[no-any-return]


class _RawBody(io.RawIOBase):
    """Blocking reads of a streamed body, for sync code on a pool thread."""

    def __init__(self, native: _native.NativeRequest, prefix: bytes = b"") -> None:
        super().__init__()
        self._n = native
        self._done = False
        self._prefix = memoryview(prefix)  # bytes read ahead, handed out first

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._prefix:
            n = min(len(b), len(self._prefix))
            b[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        if self._done:
            return 0
        want = min(len(b), CHUNK) or 1
        while True:
            data = checked(self._n.body_read(want, _WAIT_MS))
            if data is None:
                continue  # nothing within the wait: wait again
            if not data:
                self._done = True
                return 0
            n = len(data)
            b[:n] = data
            return n


def body_file(native: _native.NativeRequest, prefix: bytes = b"") -> io.BufferedReader:
    """A file-like reader of the body: read(n), readline(), iteration by line
    (wsgi.input, and req.stream() in def handlers). `prefix`: bytes already
    read from it."""
    return io.BufferedReader(_RawBody(native, prefix), CHUNK)


def read_up_to(native: _native.NativeRequest, limit: int) -> tuple[bytes, bool]:
    """Reads the body until its end or past `limit` bytes: (bytes, ended)."""
    parts: list[bytes] = []
    got = 0
    while got <= limit:
        data = checked(native.body_read(CHUNK, _WAIT_MS))
        if data is None:
            continue
        if not data:
            return b"".join(parts), True
        parts.append(data)
        got += len(data)
    return b"".join(parts), False


class AsyncBody:
    """Non-blocking reads of a streamed body on the engine's asyncio loop."""

    __slots__ = ("_n", "_waiters", "_loop", "done", "received")

    def __init__(self, native: _native.NativeRequest, waiters: dict[int, "asyncio.Future[None]"],
                 loop: asyncio.AbstractEventLoop) -> None:
        self._n = native
        self._waiters = waiters
        self._loop = loop
        self.done = False
        self.received = 0

    async def chunk(self) -> bytes:
        """The next bytes; b"" once the body has ended. Raises ClientDisconnect
        (or HTTPError 413/400 when the core refused the body)."""
        if self.done:
            return b""
        while True:
            data = checked(self._n.body_read(CHUNK, 0))
            if data is not None:
                break
            # The core sends a BODY event (or the abort) on the route's queue.
            fut = self._waiters[self._n.id] = self._loop.create_future()
            try:
                await fut
            finally:
                if self._waiters.get(self._n.id) is fut:
                    del self._waiters[self._n.id]
        if not data:
            self.done = True
        self.received += len(data)
        return data

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[bytes]:
        while True:
            data = await self.chunk()
            if not data:
                return
            yield data

    async def read(self) -> bytes:
        parts: list[bytes] = []
        while True:
            data = await self.chunk()
            if not data:
                return b"".join(parts)
            parts.append(data)


def wake(waiters: dict[int, "asyncio.Future[None]"], rid: int) -> None:
    """A BODY event or an abort for request rid: its reader reads again."""
    fut = waiters.pop(rid, None)
    if fut is not None and not fut.done():
        fut.set_result(None)
