"""Outbound webhooks, refusing private targets after DNS resolution.

The URL is checked when a subscription is created or changed and again before every
attempt: its port must be allowed, and every address the host resolves to must be
public (unless private targets are allowed); one non-public address refuses the host.
The connection then goes to an address that passed, so a DNS answer that changes in
between cannot redirect it: the addresses are tried in the resolver's order, the next
one only when a connection to the previous could not be opened (each gets an equal
share of the timeout to connect). Redirects are not followed. At most ``body_limit``
bytes of the answer are kept, as text PostgreSQL stores (a NUL byte would make it
refuse the whole batch of outcomes).
"""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

from reelpolicy_notify.adapters.http11 import (
    ConnectFailedError,
    Http11Client,
    Origin,
    ProtocolError,
)
from reelpolicy_notify.domain.attempt_outcomes import storable
from reelpolicy_notify.domain.records import SendResult
from reelpolicy_notify.domain.retries import parse_retry_after
from reelpolicy_notify.domain.targets import (
    DEFAULT_ALLOWED_PORTS,
    UnsafeTargetError,
    check_addresses,
    check_port,
    literal_address,
    parse_target,
)


async def resolve(host: str, port: int) -> list[str]:
    """The host's addresses in the resolver's order (duplicates dropped)."""
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def checked_addresses(
    url: str,
    *,
    allow_private: bool,
    allowed_hosts: frozenset[str],
    allowed_ports: frozenset[int] = DEFAULT_ALLOWED_PORTS,
) -> list[str]:
    """The addresses ``url`` may be called at, in the resolver's order; raises
    UnsafeTargetError. A host in ``allowed_hosts`` may resolve anywhere, but its port
    must still be allowed; ``allow_private`` lifts both checks (development, tests)."""
    host, port = parse_target(url)
    check_port(port, allow_private=allow_private, allowed_ports=allowed_ports)
    addresses = await resolve(host, port)
    check_addresses(host, addresses, allow_private=allow_private, allowed_hosts=allowed_hosts)
    if not addresses:
        raise UnsafeTargetError("the host does not resolve")
    return addresses


async def check_url(
    url: str,
    *,
    allow_private: bool,
    allowed_hosts: frozenset[str],
    allowed_ports: frozenset[int] = DEFAULT_ALLOWED_PORTS,
) -> None:
    """Raise UnsafeTargetError unless ``url`` may be called now."""
    await checked_addresses(
        url, allow_private=allow_private, allowed_hosts=allowed_hosts, allowed_ports=allowed_ports
    )


class WebhookHttpSender:
    def __init__(
        self,
        *,
        timeout: float,
        body_limit: int,
        allow_private: bool,
        allowed_hosts: frozenset[str],
        allowed_ports: frozenset[int] = DEFAULT_ALLOWED_PORTS,
    ) -> None:
        self._client = Http11Client(body_limit=body_limit)
        self._timeout = timeout
        self._allow_private = allow_private
        self._allowed_hosts = allowed_hosts
        self._allowed_ports = allowed_ports

    async def aclose(self) -> None:
        await self._client.aclose()

    async def post(self, url: str, *, body: bytes, headers: dict[str, str]) -> SendResult:
        started = time.perf_counter()

        def elapsed() -> int:
            return int((time.perf_counter() - started) * 1000)

        try:
            addresses = await checked_addresses(
                url,
                allow_private=self._allow_private,
                allowed_hosts=self._allowed_hosts,
                allowed_ports=self._allowed_ports,
            )
        except UnsafeTargetError as exc:
            return SendResult(None, elapsed(), error=f"refused: {exc}", refused=True)
        parts = urlsplit(url)
        host, port = parse_target(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        request_headers = {
            "content-type": "application/json",
            "user-agent": "reelpolicy-notify/0.1",
            **headers,
        }
        connect_timeout = self._timeout / len(addresses)
        try:
            async with asyncio.timeout(self._timeout):
                for address in addresses:
                    try:
                        response = await self._client.post(
                            Origin(parts.scheme, host, port, address),
                            target,
                            body=body,
                            headers=request_headers,
                            connect_timeout=connect_timeout,
                        )
                        break
                    except ConnectFailedError as exc:
                        failure = exc
                else:
                    error = f"no connection to any of {len(addresses)} address(es): {failure}"
                    return SendResult(None, elapsed(), error=storable(error[:500]))
        except TimeoutError:
            return SendResult(None, elapsed(), error=f"timeout after {self._timeout:g}s")
        except (OSError, asyncio.IncompleteReadError, ProtocolError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            return SendResult(None, elapsed(), error=storable(error))
        return SendResult(
            response.status,
            elapsed(),
            response_body=storable(response.body.decode(errors="replace")),
            retry_after_seconds=parse_retry_after(
                response.headers.get("retry-after"), now=datetime.now(UTC)
            ),
        )
