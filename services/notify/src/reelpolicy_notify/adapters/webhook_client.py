"""Outbound webhooks over httpx, refusing private targets after DNS resolution.

The URL is checked at subscription time and again here, against every address the
host resolves to, unless private targets are allowed. Redirects are not followed.
The response body is read up to a limit only. (A DNS answer that changes between
this check and httpx's own lookup is a known gap; pinning the address needs a
custom transport.)
"""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import UTC, datetime

import httpx

from reelpolicy_notify.domain.records import SendResult
from reelpolicy_notify.domain.retries import parse_retry_after
from reelpolicy_notify.domain.targets import (
    UnsafeTargetError,
    check_addresses,
    literal_address,
    parse_target,
)


async def resolve(host: str, port: int) -> list[str]:
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return []
    return sorted({str(info[4][0]) for info in infos})


async def check_url(url: str, *, allow_private: bool, allowed_hosts: frozenset[str]) -> None:
    """Raise UnsafeTargetError unless ``url`` may be called now."""
    host, port = parse_target(url)
    if allow_private or host in allowed_hosts:
        return
    check_addresses(
        host, await resolve(host, port), allow_private=False, allowed_hosts=allowed_hosts
    )


class HttpxWebhookSender:
    def __init__(
        self,
        *,
        timeout: float,
        body_limit: int,
        allow_private: bool,
        allowed_hosts: frozenset[str],
        max_connections: int = 100,
    ) -> None:
        self._client = httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={"user-agent": "reelpolicy-notify/0.1", "content-type": "application/json"},
        )
        self._body_limit = body_limit
        self._allow_private = allow_private
        self._allowed_hosts = allowed_hosts

    async def aclose(self) -> None:
        await self._client.aclose()

    async def post(self, url: str, *, body: bytes, headers: dict[str, str]) -> SendResult:
        started = time.perf_counter()

        def elapsed() -> int:
            return int((time.perf_counter() - started) * 1000)

        try:
            await check_url(
                url, allow_private=self._allow_private, allowed_hosts=self._allowed_hosts
            )
        except UnsafeTargetError as exc:
            return SendResult(None, elapsed(), error=f"refused: {exc}", refused=True)
        try:
            async with self._client.stream("POST", url, content=body, headers=headers) as response:
                excerpt = bytearray()
                async for chunk in response.aiter_bytes():
                    excerpt += chunk
                    if len(excerpt) >= self._body_limit:
                        break
                retry_after = parse_retry_after(
                    response.headers.get("retry-after"), now=datetime.now(UTC)
                )
                return SendResult(
                    response.status_code,
                    elapsed(),
                    response_body=bytes(excerpt[: self._body_limit]).decode(errors="replace"),
                    retry_after_seconds=retry_after,
                )
        except httpx.TimeoutException as exc:
            return SendResult(None, elapsed(), error=f"timeout: {type(exc).__name__}")
        except httpx.HTTPError as exc:
            return SendResult(None, elapsed(), error=f"{type(exc).__name__}: {exc}"[:500])
