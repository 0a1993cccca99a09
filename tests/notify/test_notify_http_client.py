"""The webhook HTTP client against local raw servers: keep-alive, stale connections, bodies."""

from __future__ import annotations

import asyncio
import tracemalloc

from reelpolicy_notify.adapters.http11 import Http11Client, Origin
from reelpolicy_notify.adapters.webhook_client import WebhookHttpSender


async def serve(
    answers: list[bytes], *, close_after_each: bool
) -> tuple[asyncio.Server, list[bytes]]:
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            length = 0
            while (h := await reader.readline()) not in (b"\r\n", b""):
                if h.lower().startswith(b"content-length:"):
                    length = int(h.split(b":")[1])
            seen.append(line + await reader.readexactly(length))
            writer.write(
                answers.pop(0) if answers else b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
            )
            await writer.drain()
            if close_after_each:
                break
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0), seen


async def test_a_closed_keep_alive_connection_is_replaced() -> None:
    server, seen = await serve([], close_after_each=True)
    port = server.sockets[0].getsockname()[1]
    client = Http11Client(body_limit=10)
    origin = Origin("http", "127.0.0.1", port, "127.0.0.1")
    try:
        for _ in range(3):
            response = await client.post(origin, "/hook", body=b"{}", headers={})
            assert response.status == 200
            await asyncio.sleep(0.05)  # let the server's close arrive
        assert len(seen) == 3
    finally:
        await client.aclose()
        server.close()


async def test_chunked_and_long_bodies_are_truncated_and_retry_after_read() -> None:
    chunked = b"HTTP/1.1 503 Busy\r\ntransfer-encoding: chunked\r\nretry-after: 7\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    long = b"HTTP/1.1 500 X\r\ncontent-length: 3000\r\n\r\n" + b"x" * 3000
    server, _ = await serve([chunked, long], close_after_each=False)
    port = server.sockets[0].getsockname()[1]
    sender = WebhookHttpSender(
        timeout=5, body_limit=8, allow_private=True, allowed_hosts=frozenset()
    )
    try:
        first = await sender.post(f"http://127.0.0.1:{port}/h", body=b"{}", headers={})
        assert (first.status_code, first.response_body, first.retry_after_seconds) == (
            503,
            "hello wo",
            7.0,
        )
        second = await sender.post(f"http://127.0.0.1:{port}/h", body=b"{}", headers={})
        assert (second.status_code, second.response_body) == (500, "x" * 8)
        refused = await WebhookHttpSender(
            timeout=5, body_limit=8, allow_private=False, allowed_hosts=frozenset()
        ).post(f"http://127.0.0.1:{port}/h", body=b"{}", headers={})
        assert refused.refused
        assert refused.status_code is None
    finally:
        await sender.aclose()
        server.close()


async def test_timeouts_and_connection_errors_become_results() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sender = WebhookHttpSender(
        timeout=0.2, body_limit=8, allow_private=True, allowed_hosts=frozenset()
    )
    try:
        slow = await sender.post(f"http://127.0.0.1:{port}/h", body=b"{}", headers={})
        assert slow.status_code is None
        assert slow.error is not None
        assert "timeout" in slow.error
        server.close()
        await server.wait_closed()
        down = await sender.post("http://127.0.0.1:9/h", body=b"{}", headers={})
        assert down.status_code is None
        assert down.error
    finally:
        await sender.aclose()


async def _answer_once(answer: bytes) -> tuple[asyncio.Server, list[int]]:
    """A server that answers one request with ``answer``, 64 KiB per write (so that it
    buffers little itself), and counts the bytes the client took."""
    sent = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        await reader.readexactly(2)
        view = memoryview(answer)
        try:
            for start in range(0, len(answer), 64 * 1024):
                writer.write(view[start : start + 64 * 1024])
                await writer.drain()
                sent[0] = start
        except ConnectionError:
            pass
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0), sent


async def test_a_huge_chunk_is_read_only_up_to_the_limit() -> None:
    """The chunk size line is not trusted: a 1 GiB chunk (32 MiB of it sent) must not be
    buffered; the client keeps body_limit bytes and closes the connection."""
    body = b"y" * (32 * 1024 * 1024)
    answer = b"HTTP/1.1 500 Big\r\ntransfer-encoding: chunked\r\n\r\n40000000\r\n" + body
    server, sent = await _answer_once(answer)
    port = server.sockets[0].getsockname()[1]
    client = Http11Client(body_limit=8)
    tracemalloc.start()
    try:
        response = await client.post(
            Origin("http", "127.0.0.1", port, "127.0.0.1"), "/h", body=b"{}", headers={}
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await client.aclose()
        server.close()
    assert (response.status, response.body) == (500, b"y" * 8)
    assert peak < 2 * 1024 * 1024, f"buffered {peak} bytes"
    await asyncio.sleep(0.1)
    assert sent[0] < len(body) // 2  # the client closed instead of reading on


async def test_many_small_chunks_stop_at_the_drain_limit() -> None:
    chunk = b"400\r\n" + b"z" * 1024 + b"\r\n"
    answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + chunk * 32 * 1024
    server, _ = await _answer_once(answer)
    port = server.sockets[0].getsockname()[1]
    client = Http11Client(body_limit=4)
    tracemalloc.start()
    try:
        origin = Origin("http", "127.0.0.1", port, "127.0.0.1")
        response = await client.post(origin, "/h", body=b"{}", headers={})
        _, peak = tracemalloc.get_traced_memory()
        assert not client._idle[origin]  # not drained to the end: not kept alive
    finally:
        tracemalloc.stop()
        await client.aclose()
        server.close()
    assert response.body == b"zzzz"
    assert peak < 2 * 1024 * 1024, f"buffered {peak} bytes"


async def test_a_bad_chunk_size_is_a_failed_attempt() -> None:
    answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nnot-hex\r\n"
    server, _ = await _answer_once(answer)
    port = server.sockets[0].getsockname()[1]
    sender = WebhookHttpSender(
        timeout=5, body_limit=8, allow_private=True, allowed_hosts=frozenset()
    )
    try:
        result = await sender.post(f"http://127.0.0.1:{port}/h", body=b"{}", headers={})
    finally:
        await sender.aclose()
        server.close()
    assert result.status_code is None
    assert result.error is not None
    assert "chunk size" in result.error


async def test_a_response_body_with_nul_is_kept_as_storable_text() -> None:
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nok\x00\xff\xfe!!!"
    server, _ = await _answer_once(answer)
    port = server.sockets[0].getsockname()[1]
    sender = WebhookHttpSender(
        timeout=5, body_limit=64, allow_private=True, allowed_hosts=frozenset()
    )
    try:
        result = await sender.post(f"http://127.0.0.1:{port}/h", body=b"{}", headers={})
    finally:
        await sender.aclose()
        server.close()
    assert result.response_body == "ok\ufffd\ufffd\ufffd!!!"
