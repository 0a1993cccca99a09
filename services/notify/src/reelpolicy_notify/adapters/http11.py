"""A lean HTTP/1.1 POST client with keep-alive, on asyncio streams.

Webhook delivery needs one thing: POST a small JSON body, read the status, a few
headers and at most ``body_limit`` bytes of the answer, within a timeout. httpx's
connection pool cost about a millisecond of CPU per request at high concurrency, so
notify speaks HTTP/1.1 itself (measured while ``sniffio`` was missing, which made
httpcore pay a failed import per request; worth measuring httpx again). Connections are pooled per (scheme, host, port,
address), and the caller picks the address it has already checked (no second DNS
lookup between the safety check and the connection). TLS verifies the host name.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import defaultdict
from dataclasses import dataclass

MAX_HEADER_LINES = 100
DRAIN_LIMIT = 64 * 1024  # read a longer answer only up to body_limit, then close


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

    async def _connect(self, origin: Origin) -> Stream:
        if origin.scheme == "https":
            return await asyncio.open_connection(
                origin.address, origin.port, ssl=self._tls, server_hostname=origin.host
            )
        return await asyncio.open_connection(origin.address, origin.port)

    async def post(
        self, origin: Origin, target: str, *, body: bytes, headers: dict[str, str]
    ) -> Response:
        """POST; a kept-alive connection found closed before any answer is replaced once."""
        idle = self._idle[origin]
        while idle:
            try:
                return await self._exchange(origin, idle.pop(), target, body, headers)
            except StaleConnectionError:
                continue
        try:
            return await self._exchange(origin, await self._connect(origin), target, body, headers)
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
        for _ in range(MAX_HEADER_LINES):
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        else:
            raise ProtocolError("too many header lines")
        keep = headers.get("connection", "").lower() != "close" and parts[0] == "HTTP/1.1"
        body, complete = await self._read_body(reader, headers)
        return Response(int(parts[1]), headers, body), keep and complete

    async def _read_body(
        self, reader: asyncio.StreamReader, headers: dict[str, str]
    ) -> tuple[bytes, bool]:
        """(up to body_limit bytes of the body, whether the body was consumed entirely)."""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            data = bytearray()
            while len(data) <= DRAIN_LIMIT:
                size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data[: self._body_limit]), True
                data += await reader.readexactly(size)
                await reader.readexactly(2)
            return bytes(data[: self._body_limit]), False
        if "content-length" in headers:
            length = int(headers["content-length"])
            if length <= DRAIN_LIMIT:
                return (await reader.readexactly(length))[: self._body_limit], True
            return await reader.read(self._body_limit), False
        with contextlib.suppress(asyncio.IncompleteReadError):
            return await reader.read(self._body_limit), False
        return b"", False
