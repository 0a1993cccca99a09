"""A lean HTTP/1.1 POST client with keep-alive, on asyncio streams.

Webhook delivery needs one thing: POST a small JSON body, read the status, a few
headers and at most ``body_limit`` bytes of the answer, within a timeout. A general
client such as httpx costs several times the CPU per delivery of this one
(``bench/webhook_client.py`` compares them), so notify speaks HTTP/1.1 itself.
Connections are pooled per (scheme, host, port, address), and the caller picks the
address it has already checked (no second DNS lookup between the safety check and the
connection). TLS verifies the host name. Every read is bounded: the status line and
header lines by the stream's line limit and MAX_HEADER_*, the body by DRAIN_LIMIT and
``body_limit`` whatever its framing claims.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import defaultdict
from dataclasses import dataclass

MAX_HEADER_LINES = 100
MAX_HEADER_BYTES = 64 * 1024
# A body up to this size is read to its end, keeping the connection; a longer one
# (chunked included, whatever its chunk sizes say) is read only up to body_limit, then
# the connection is closed. Nothing beyond these bounds is ever buffered.
DRAIN_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int
    address: str


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class ProtocolError(Exception):
    pass


class StaleConnectionError(Exception):
    """The connection failed before any byte of the answer (a closed keep-alive)."""


class ConnectFailedError(ConnectionError):
    """No connection could be opened to the origin's address: another may be tried."""


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Http11Client:
    def __init__(self, *, body_limit: int, max_idle_per_origin: int = 64) -> None:
        self._idle: defaultdict[Origin, list[Stream]] = defaultdict(list)
        self._body_limit = body_limit
        self._max_idle = max_idle_per_origin
        self._tls = ssl.create_default_context()

    async def aclose(self) -> None:
        for streams in self._idle.values():
            for _, writer in streams:
                writer.close()
        self._idle.clear()

    async def _connect(self, origin: Origin, seconds: float | None) -> Stream:
        tls = origin.scheme == "https"
        try:
            async with asyncio.timeout(seconds):
                return await asyncio.open_connection(
                    origin.address,
                    origin.port,
                    ssl=self._tls if tls else None,
                    server_hostname=origin.host if tls else None,
                )
        except (OSError, TimeoutError) as exc:
            raise ConnectFailedError(f"{type(exc).__name__}: {exc}") from None

    async def post(
        self,
        origin: Origin,
        target: str,
        *,
        body: bytes,
        headers: dict[str, str],
        connect_timeout: float | None = None,
    ) -> Response:
        """POST; a kept-alive connection found closed before any answer is replaced once.
        Raises ConnectFailedError when no new connection opens within ``connect_timeout``."""
        idle = self._idle[origin]
        while idle:
            try:
                return await self._exchange(origin, idle.pop(), target, body, headers)
            except StaleConnectionError:
                continue
        stream = await self._connect(origin, connect_timeout)
        try:
            return await self._exchange(origin, stream, target, body, headers)
        except StaleConnectionError as exc:
            raise ConnectionError(str(exc)) from None

    async def _exchange(
        self, origin: Origin, stream: Stream, target: str, body: bytes, headers: dict[str, str]
    ) -> Response:
        reader, writer = stream
        default_port = 443 if origin.scheme == "https" else 80
        name = f"[{origin.host}]" if ":" in origin.host else origin.host
        host = name if origin.port == default_port else f"{name}:{origin.port}"
        lines = [f"POST {target} HTTP/1.1", f"host: {host}", f"content-length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        reusable = False
        try:
            try:
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
                await writer.drain()
                status_line = await reader.readline()
            except ConnectionError as exc:
                raise StaleConnectionError(f"connection lost before a response: {exc}") from None
            if not status_line:
                raise StaleConnectionError("connection closed before a response")
            response, reusable = await self._read_response(reader, status_line)
            return response
        finally:
            if reusable and len(self._idle[origin]) < self._max_idle:
                self._idle[origin].append(stream)
            else:
                writer.close()

    async def _read_response(
        self, reader: asyncio.StreamReader, status_line: bytes
    ) -> tuple[Response, bool]:
        parts = status_line.decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {status_line[:80]!r}")
        headers: dict[str, str] = {}
        for line in await self._read_fields(reader):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        keep = headers.get("connection", "").lower() != "close" and parts[0] == "HTTP/1.1"
        body, complete = await self._read_body(reader, headers)
        return Response(int(parts[1]), headers, body), keep and complete

    async def _read_fields(self, reader: asyncio.StreamReader) -> list[bytes]:
        """Header (or trailer) lines up to the blank line, within MAX_HEADER_* bounds."""
        lines: list[bytes] = []
        size = 0
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            size += len(line)
            if len(lines) >= MAX_HEADER_LINES or size > MAX_HEADER_BYTES:
                raise ProtocolError("too many header lines or bytes")
            lines.append(line)
        return lines

    async def _read_body(
        self, reader: asyncio.StreamReader, headers: dict[str, str]
    ) -> tuple[bytes, bool]:
        """(up to body_limit bytes of the body, whether the body was consumed entirely)."""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return await self._read_chunked(reader)
        if "content-length" in headers:
            length = int(headers["content-length"])
            if 0 <= length <= DRAIN_LIMIT:
                return (await reader.readexactly(length))[: self._body_limit], True
            return await reader.read(self._body_limit), False
        with contextlib.suppress(asyncio.IncompleteReadError):
            return await reader.read(self._body_limit), False
        return b"", False

    async def _read_chunked(self, reader: asyncio.StreamReader) -> tuple[bytes, bool]:
        """A chunked body read chunk by chunk within DRAIN_LIMIT: a chunk that would go
        past it (its size line is not trusted) is read only up to body_limit."""
        kept = bytearray()
        budget = DRAIN_LIMIT
        while True:
            size_line = (await reader.readline()).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size {size_line[:20]!r}") from None
            if size < 0:
                raise ProtocolError("bad chunk size")
            if size == 0:
                await self._read_fields(reader)
                return bytes(kept), True
            wanted = max(self._body_limit - len(kept), 0)
            if size > budget:
                kept += await reader.readexactly(min(size, wanted))
                return bytes(kept), False
            chunk = await reader.readexactly(size)
            budget -= size
            kept += chunk[:wanted]
            if await reader.readexactly(2) != b"\r\n":
                raise ProtocolError("a chunk does not end with CRLF")
