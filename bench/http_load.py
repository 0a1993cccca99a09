"""A light HTTP/1.1 load client for the benchmarks: pre-encoded requests on keep-alive
connections.

httpx costs about 1 ms of CPU a request on these 2 cores, and with 64 pooled
connections its pool bookkeeping (every request scans every connection) made the load
generator itself the bottleneck at 200 requests/s (measured 2026-12-03: the generator
at 91% of a core, the registry at 44%). This costs a fraction of that.
"""

from __future__ import annotations

import asyncio


class Connection:
    """One keep-alive HTTP/1.1 connection for the load: requests go out pre-encoded."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, url: str) -> Connection:
        host, port = url.removeprefix("http://").split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    async def request(self, head: bytes, body: bytes) -> int:
        """Send ``head`` (the request line and headers, without Content-Length) and
        ``body``; returns the status code once the whole response is read."""
        self.writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
            elif name.lower() == b"transfer-encoding":
                raise RuntimeError("chunked responses are not expected here")
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()
