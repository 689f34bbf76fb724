"""A lean keep-alive HTTP/1.1 client for the load generator's hot path.

Profiling the generator at 500 req/s put ~80 % of its CPU in aiohttp's request machinery
(headers, cookies, tracing, response objects) — work a load generator does not need. Here
each request is a pre-encoded byte string written to a pooled keep-alive connection
(``asyncio.Protocol``), and the response is parsed only as far as its status line and
length (Content-Length or chunked). Anything unexpected closes the connection; the next
request opens a new one. Only for talking to servers we load-test (loopback or the lab's
own network), never a general-purpose client.
"""

from __future__ import annotations

import asyncio
from ssl import SSLContext, create_default_context
from typing import cast
from urllib.parse import urlsplit


class HttpError(Exception):
    """The connection failed or the response could not be read (counted as an error)."""


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's is not a subclass of asyncio.Transport)
        self.transport = cast(asyncio.Transport, transport)
        self.open = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(HttpError(f"connection lost: {exc or 'closed by peer'}"))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is None or self.waiter.done():
            return
        try:
            status = self._complete()
        except (ValueError, IndexError) as exc:
            self.waiter.set_exception(HttpError(f"bad response: {exc}"))
            self.close()
            return
        if status is not None:
            self.waiter.set_result(status)

    def _complete(self) -> int | None:
        """The status once a whole response is buffered (and consumed), else None."""
        buf = self.buf
        head_end = buf.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        head = bytes(buf[:head_end]).lower()
        status = int(head[9:12])
        start = head_end + 4
        i = head.find(b"\r\ncontent-length:")
        if i >= 0:
            j = head.find(b"\r\n", i + 2)
            end = start + int(head[i + 17:j if j > 0 else None])
            if len(buf) < end:
                return None
        elif b"\r\ntransfer-encoding: chunked" in head:
            k = buf.find(b"0\r\n\r\n", start)
            if k < 0:
                return None
            end = k + 5
        else:
            end = start  # no body (204/304)
        del buf[:end]
        return status

    def close(self) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.close()


class FastHttp:
    """``users`` keep-alive connections to one origin; ``request`` returns the status."""

    def __init__(self, base_url: str, users: int, timeout_s: float = 10.0,
                 ssl: SSLContext | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https"):
            raise ValueError("FastHttp speaks http:// and https:// only")
        if parts.scheme == "https" and ssl is None:
            ssl = create_default_context()
        self.ssl = ssl if parts.scheme == "https" else None
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.ssl else 80)
        self.host_header = parts.netloc.encode()
        self.timeout_s = timeout_s
        self._idle: asyncio.Queue[_Conn | None] = asyncio.Queue()
        for _ in range(users):
            self._idle.put_nowait(None)  # a slot; connected on first use

    def encode(self, method: str, path: str, headers: dict[str, str],
               body: bytes = b"") -> bytes:
        """A complete request, built once and sent many times."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host_header.decode()}",
                 *(f"{k}: {v}" for k, v in headers.items())]
        if body or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    async def request(self, raw: bytes) -> int:
        conn = await self._idle.get()
        try:
            if conn is None or not conn.open:
                conn = await self._connect()
            loop = asyncio.get_running_loop()
            fut: asyncio.Future[int] = loop.create_future()
            conn.waiter = fut
            assert conn.transport is not None
            conn.transport.write(raw)
            timer = loop.call_later(self.timeout_s, _expire, fut, self.timeout_s)
            try:
                return await fut
            finally:
                timer.cancel()
                conn.waiter = None
        except BaseException:
            if conn is not None:
                conn.close()  # never reuse a connection in an unknown state
            conn = None
            raise
        finally:
            self._idle.put_nowait(conn)

    async def _connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(_Conn, self.host, self.port, ssl=self.ssl,
                                       server_hostname=self.host if self.ssl else None),
                self.timeout_s)
        except (OSError, TimeoutError) as exc:
            raise HttpError(f"connect {self.host}:{self.port}: {exc}") from exc
        return conn

    async def close(self) -> None:
        while not self._idle.empty():
            conn = self._idle.get_nowait()
            if conn is not None:
                conn.close()


def _expire(fut: asyncio.Future[int], timeout_s: float) -> None:
    if not fut.done():
        fut.set_exception(HttpError(f"no response within {timeout_s:g} s"))
