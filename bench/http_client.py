"""A minimal HTTP/1.1 keep-alive client for the load generator (bench/load.py).

Why not httpx, as everywhere else: on the bench's two cores the load
generator shares the CPU with every system it measures, and httpx spent
~0.8 ms of CPU a request (a fifth of the machine's CPU during W4), which
slowed whichever system was measured and blurred the ratios. wrk would cost
less still, but the bench needs per-request bodies, an error check of every
answer, open-loop pacing and per-request records, which wrk's Lua cannot do
together. This client does only what the bench needs: POST over one
persistent connection, answers framed by Content-Length or chunked, and a
fresh connection when the server closes one; it runs on uvloop when present.
It speaks only to the bench's own servers on loopback.
"""
from __future__ import annotations

import asyncio
from urllib.parse import urlsplit


class HttpError(Exception):
    """The connection failed or the answer was not HTTP/1.1 as expected."""


class Http1Connection:
    """One keep-alive connection to one origin; one request at a time."""

    def __init__(self, url: str, headers: dict[str, str], *, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"only http:// URLs: {url}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.timeout = timeout
        fixed = {"host": f"{self.host}:{self.port}", "content-type": "application/json", **{
            k.strip().lower(): v.strip() for k, v in headers.items()}}
        self._head = (f"POST {self.path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fixed.items())).encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> tuple[int, bytes]:
        """(status, body) of one POST; raises HttpError."""
        try:
            return await asyncio.wait_for(self._exchange(body), self.timeout)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError,
                ValueError, IndexError) as exc:
            await self.close()
            raise HttpError(repr(exc)) from exc

    async def _exchange(self, body: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        self._writer.write(self._head + b"content-length: %d\r\n\r\n" % len(body) + body)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, _, header_block = head.partition(b"\r\n")
        version, status = status_line.split(b" ", 2)[:2]
        if not version.startswith(b"HTTP/1."):
            raise ValueError(f"not an HTTP/1 answer: {status_line[:80]!r}")
        fields = {}
        for line in header_block.split(b"\r\n"):
            name, sep, value = line.partition(b":")
            if sep:
                fields[name.strip().lower()] = value.strip()
        if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
            content = await self._read_chunks()
        else:
            content = await self._reader.readexactly(int(fields.get(b"content-length", b"0")))
        if fields.get(b"connection", b"").lower() == b"close" or version == b"HTTP/1.0":
            await self.close()
        return int(status), content

    async def _read_chunks(self) -> bytes:
        assert self._reader is not None
        parts = []
        while True:
            size_line = await self._reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while await self._reader.readuntil(b"\r\n") != b"\r\n":
                    pass  # trailer fields, if any, up to the closing empty line
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
