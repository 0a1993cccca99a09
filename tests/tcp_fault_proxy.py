"""A TCP proxy that injects connection faults (there is no toxiproxy on these machines).

It listens on 127.0.0.1 and forwards each connection to an upstream, a TCP address
or a unix socket (the embedded PostgreSQL listens only on one). It runs its own
event loop in a thread, so a test or the chaos run can drive it from anywhere and a
busy test loop does not slow the traffic it forwards. Faults:

- :meth:`cut`: close every open connection at once (new ones are accepted);
- :meth:`blackhole`: accept and hold connections but forward nothing, as a dead
  network path does, until :meth:`heal`; open connections stall too;
- :meth:`refuse`: close each new connection as soon as it is accepted;
- :meth:`delay`: add latency to every chunk forwarded, both ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qs, urlsplit

Mode = Literal["pass", "blackhole", "refuse"]


@dataclass(eq=False)
class _Link:
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    def close(self) -> None:
        for writer in self.writers:
            with contextlib.suppress(Exception):
                transport = writer.transport
                sock = transport.get_extra_info("socket")
                if sock is not None:  # a reset, not a polite FIN: what a cut path looks like
                    with contextlib.suppress(OSError):
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                        )
                transport.abort()


class FaultProxy:
    """``FaultProxy(upstream=("127.0.0.1", 9092))`` or ``FaultProxy(unix_path=...)``."""

    def __init__(
        self,
        *,
        upstream: tuple[str, int] | None = None,
        unix_path: str | None = None,
        port: int = 0,
        name: str = "proxy",
    ) -> None:
        if (upstream is None) == (unix_path is None):
            raise ValueError("give exactly one of upstream and unix_path")
        self.name = name
        self._upstream = upstream
        self._unix_path = unix_path
        self._wanted_port = port
        self.port = 0
        self.mode: Mode = "pass"
        self.latency = 0.0
        self.connections_seen = 0
        self._links: set[_Link] = set()
        self._open: asyncio.Event | None = None  # set while traffic flows (made in the loop)
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)

    # life cycle -------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for link in list(self._links):
                link.close()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    # faults -------------------------------------------------------------------------------
    def cut(self) -> None:
        """Reset every open connection (new connections still go through)."""
        self._call(self._cut_all)

    def blackhole(self) -> None:
        """Forward nothing until :meth:`heal` (connections are accepted and held)."""
        self._set_mode("blackhole")

    def refuse(self) -> None:
        """Close every new connection at once until :meth:`heal`."""
        self._set_mode("refuse")

    def delay(self, seconds: float) -> None:
        self.latency = max(0.0, seconds)

    def heal(self) -> None:
        self.latency = 0.0
        self._set_mode("pass")

    # internals ----------------------------------------------------------------------------
    def _set_mode(self, mode: Mode) -> None:
        self.mode = mode
        self._loop.call_soon_threadsafe(self._gate().set if mode == "pass" else self._gate().clear)

    def _gate(self) -> asyncio.Event:
        assert self._open is not None, "the proxy is not started"
        return self._open

    def _call(self, fn: Callable[[], object]) -> None:
        self._loop.call_soon_threadsafe(fn)

    def _cut_all(self) -> None:
        for link in list(self._links):
            link.close()
        self._links.clear()

    async def _listen(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self._wanted_port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._unix_path is not None:
            return await asyncio.open_unix_connection(self._unix_path)
        assert self._upstream is not None
        return await asyncio.open_connection(*self._upstream)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_seen += 1
        link = _Link([writer])
        self._links.add(link)
        try:
            if self.mode == "refuse":
                return
            await self._gate().wait()  # a black hole holds new connections too
            try:
                up_reader, up_writer = await self._open_upstream()
            except OSError:
                return
            link.writers.append(up_writer)
            await asyncio.gather(
                self._pump(reader, up_writer), self._pump(up_reader, writer), return_exceptions=True
            )
        finally:
            link.close()
            self._links.discard(link)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                await self._gate().wait()
                if self.latency:
                    await asyncio.sleep(self.latency)
                writer.write(data)
                await writer.drain()
        finally:
            with contextlib.suppress(Exception):
                writer.close()


def postgres_proxy(dsn: str, *, name: str = "pg-proxy") -> FaultProxy:
    """A started proxy in front of the unix socket of the embedded server ``dsn`` names
    (its DSN carries ``?host=<socket dir>``)."""
    socket_dir = parse_qs(urlsplit(dsn).query)["host"][0]
    return FaultProxy(unix_path=f"{socket_dir}/.s.PGSQL.5432", name=name).start()


def through(proxy: FaultProxy, dsn: str) -> str:
    """``dsn`` (same user and database) over TCP through ``proxy``."""
    parts = urlsplit(dsn)
    userinfo = parts.netloc.rpartition("@")[0]
    return f"postgresql://{userinfo}@{proxy.address}{parts.path}"
