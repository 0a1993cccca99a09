"""A/B: notify's own HTTP/1.1 client against httpx, delivering webhooks to a local receiver.

    .venv/bin/python bench/webhook_client.py [--rate 1000 --seconds 10 --rounds 5]

Each run is a fresh process on uvloop (as ``reelpolicy-notify serve``) that POSTs a
signed-size JSON body to a raw asyncio receiver (its own process) at a fixed ``--rate``
for ``--seconds``, at most ``--concurrency`` at a time (the worker's default, 64), after
a warm-up. Both senders do the same egress checks and keep at most 1 KiB of the answer:
A is ``WebhookHttpSender`` (``adapters/http11.py``); B is httpx connecting to the
checked address with the URL's Host header and ``sni_hostname``, reading the answer by
streaming up to the cap. Runs alternate A, B, A, B... (the machine is shared and noisy);
the medians over the rounds and their ratio are printed. CPU is the sender process's
user+system time per delivery over the measured window; latency is from the moment a
delivery was due to its answer.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import statistics
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

BODY = b'{"type":"eligibility.changed","timestamp":"2026-12-02T10:00:00Z","data":' + (
    b'{"summary":"' + b"x" * 480 + b'"}}'
)
HEADERS = {
    "webhook-id": "0193a0b2-7c1e-7d2a-9c4b-1f2e3d4c5b6a",
    "webhook-timestamp": "1796205600",
    "webhook-signature": "v1," + "A" * 44,
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
}
ANSWER = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


def receiver_main(port_out: Any) -> None:
    import uvloop

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readline():
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                writer.write(ANSWER)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=1024)
        port_out.send(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    uvloop.run(main())


class HttpxSender:
    """What notify's sender would be on httpx: the same checks, then httpx to the address."""

    def __init__(self, *, timeout: float, body_limit: int, concurrency: int) -> None:
        import httpx

        self._httpx = httpx
        self._client = httpx.AsyncClient(
            timeout=timeout,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=concurrency),
            follow_redirects=False,
            trust_env=False,
        )
        self._limit = body_limit

    async def aclose(self) -> None:
        await self._client.aclose()

    async def post(self, url: str, *, body: bytes, headers: dict[str, str]) -> Any:
        from reelpolicy_notify.adapters.webhook_client import checked_addresses
        from reelpolicy_notify.domain.attempt_outcomes import storable
        from reelpolicy_notify.domain.records import SendResult
        from reelpolicy_notify.domain.targets import parse_target

        addresses = await checked_addresses(url, allow_private=True, allowed_hosts=frozenset())
        parts = urlsplit(url)
        host, port = parse_target(url)
        for address in addresses:
            netloc = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
            try:
                async with self._client.stream(
                    "POST",
                    urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")),
                    content=body,
                    headers={
                        "host": parts.netloc,
                        "content-type": "application/json",
                        "user-agent": "reelpolicy-notify/0.1",
                        **headers,
                    },
                    extensions={"sni_hostname": host},
                ) as response:
                    kept = bytearray()
                    async for piece in response.aiter_raw():
                        kept += piece[: self._limit - len(kept)]
                        if len(kept) >= self._limit:
                            break
                    return SendResult(
                        response.status_code,
                        0,
                        response_body=storable(kept.decode(errors="replace")),
                    )
            except self._httpx.ConnectError:
                continue
        return SendResult(None, 0, error="no connection")


def cpu_now() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_main(mode: str, port: int, rate: float, seconds: float, concurrency: int, out: Any) -> None:
    import uvloop

    from reelpolicy_notify.adapters.webhook_client import WebhookHttpSender

    url = f"http://127.0.0.1:{port}/hooks/bench?token=t"

    async def main() -> tuple[float, list[float]]:
        sender: Any = (
            WebhookHttpSender(
                timeout=15, body_limit=1024, allow_private=True, allowed_hosts=frozenset()
            )
            if mode == "A"
            else HttpxSender(timeout=15, body_limit=1024, concurrency=concurrency)
        )
        gate = asyncio.Semaphore(concurrency)
        latencies: list[float] = []

        async def deliver(due: float, record: bool) -> None:
            async with gate:
                result = await sender.post(url, body=BODY, headers=HEADERS)
            assert result.status_code == 200, result
            if record:
                latencies.append(time.perf_counter() - due)

        async def offer(count: int, record: bool) -> None:
            start = time.perf_counter()
            tasks: list[asyncio.Task[None]] = []
            sent = 0
            while sent < count:
                now = time.perf_counter()
                due_count = min(count, int((now - start) * rate) + 1)
                for n in range(sent, due_count):
                    tasks.append(asyncio.create_task(deliver(start + n / rate, record)))
                sent = due_count
                await asyncio.sleep(0.005)
            await asyncio.gather(*tasks)

        await offer(int(rate), record=False)  # warm-up: connections, imports, caches
        cpu = cpu_now()
        await offer(int(rate * seconds), record=True)
        cpu = cpu_now() - cpu
        await sender.aclose()
        return cpu / len(latencies), latencies

    cpu_per, latencies = uvloop.run(main())
    latencies.sort()
    out.send((cpu_per, latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    ctx = multiprocessing.get_context("spawn")
    port_in, port_out = ctx.Pipe(duplex=False)
    receiver = ctx.Process(target=receiver_main, args=(port_out,), daemon=True)
    receiver.start()
    port = port_in.recv()
    runs: dict[str, list[tuple[float, float, float]]] = {"A": [], "B": []}
    try:
        for round_ in range(args.rounds):
            for mode in ("A", "B"):
                result_in, result_out = ctx.Pipe(duplex=False)
                run = ctx.Process(
                    target=run_main,
                    args=(mode, port, args.rate, args.seconds, args.concurrency, result_out),
                )
                run.start()
                cpu_per, p50, p99 = result_in.recv()
                run.join()
                runs[mode].append((cpu_per, p50, p99))
                print(
                    f"round {round_ + 1} {mode}: {cpu_per * 1e3:.3f} ms CPU/delivery,"
                    f" p50 {p50 * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms",
                    flush=True,
                )
    finally:
        receiver.kill()
    names = {"A": "http11 (notify's own)", "B": "httpx 0.28 (+sniffio)"}
    medians = {
        mode: tuple(statistics.median(r[i] for r in rows) for i in range(3))
        for mode, rows in runs.items()
    }
    for mode, (cpu_per, p50, p99) in medians.items():
        print(
            f"median {names[mode]}: {cpu_per * 1e3:.3f} ms CPU/delivery,"
            f" p50 {p50 * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms"
        )
    print(f"CPU per delivery, httpx / http11: {medians['B'][0] / medians['A'][0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
