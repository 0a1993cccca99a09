"""Webhook egress: which targets notify calls, which it refuses, and what it says."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from reelpolicy_notify.adapters.webhook_client import WebhookHttpSender, check_url
from reelpolicy_notify.config import parse_ports
from reelpolicy_notify.domain.targets import UnsafeTargetError, is_public_address

PUBLIC = "93.184.215.14"
TEREDO_TO_10_0_0_1 = "2001:0:4136:e378:8000:63bf:f5ff:fffe"  # client 10.0.0.1 (obfuscated)

NON_PUBLIC = [
    "100.100.100.200",  # Alibaba Cloud metadata, in 100.64.0.0/10 (shared address space)
    "100.64.0.1",
    "::ffff:10.0.0.1",  # IPv4-mapped
    "::10.0.0.1",  # IPv4-compatible
    "2002:0a00:0001::",  # 6to4 of 10.0.0.1
    TEREDO_TO_10_0_0_1,
    "64:ff9b::10.0.0.1",  # NAT64 of 10.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2002:7f00:0001::",  # 6to4 of 127.0.0.1
    "ff02::1",
    "224.0.0.1",
    "127.0.0.1",
    "169.254.169.254",
]


def _spellings(address: str) -> set[str]:
    """Forms of ``address`` a message could name it by."""
    ip = ipaddress.ip_address(address)
    return {address, str(ip), ip.exploded}


def _url(address: str, port: int | None = None) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"https://{host}" + (f":{port}" if port else "") + "/hook"


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[str]]]:
    """Host name -> the addresses the resolver answers, in that order."""
    answers: dict[str, list[str]] = {}
    real = asyncio.base_events.BaseEventLoop.getaddrinfo

    async def getaddrinfo(self: Any, host: str, port: int, **kwargs: Any) -> list[Any]:
        if host not in answers:
            return await real(self, host, port, **kwargs)
        family = {False: socket.AF_INET, True: socket.AF_INET6}
        return [(family[":" in a], socket.SOCK_STREAM, 6, "", (a, port)) for a in answers[host]]

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "getaddrinfo", getaddrinfo)
    yield answers


@pytest.mark.parametrize("address", NON_PUBLIC)
async def test_non_public_addresses_are_refused_without_naming_them(
    address: str, resolver: dict[str, list[str]]
) -> None:
    assert not is_public_address(address)
    resolver["hooks.example.com"] = [address]
    for url in (_url(address), "https://hooks.example.com/hook"):
        with pytest.raises(UnsafeTargetError) as refused:
            await check_url(url, allow_private=False, allowed_hosts=frozenset())
        message = str(refused.value)
        assert "resolves to a non-public address" in message
        assert not any(form in message for form in _spellings(address)), message


@pytest.mark.parametrize("port", [22, 25, 6379, 5432, 9092, 65535])
async def test_ports_outside_the_allow_list_are_refused(port: int) -> None:
    with pytest.raises(UnsafeTargetError, match=f"port {port} is not allowed"):
        await check_url(_url(PUBLIC, port), allow_private=False, allowed_hosts=frozenset())
    with pytest.raises(UnsafeTargetError, match="not allowed"):  # a trusted host too
        await check_url(
            f"http://dev.internal:{port}/", allow_private=False, allowed_hosts={"dev.internal"}
        )


@pytest.mark.parametrize("port", [None, 80, 443, 8080, 8443])
async def test_a_public_address_on_an_allowed_port_is_accepted(
    port: int | None, resolver: dict[str, list[str]]
) -> None:
    await check_url(_url(PUBLIC, port), allow_private=False, allowed_hosts=frozenset())
    resolver["hooks.example.com"] = ["2606:4700::1111", PUBLIC]
    await check_url(
        "https://hooks.example.com" + (f":{port}" if port else "") + "/",
        allow_private=False,
        allowed_hosts=frozenset(),
    )
    assert is_public_address("2002:0808:0808::")  # 6to4 of a public address
    assert is_public_address("64:ff9b::8.8.8.8")


async def test_the_port_allow_list_is_configurable_and_private_targets_allow_any_port() -> None:
    assert parse_ports("80, 443,8080,8443") == frozenset({80, 443, 8080, 8443})
    assert parse_ports("9443") == frozenset({9443})
    for bad in ("http", "0", "70000", "-1"):
        with pytest.raises(ValueError, match="not a port"):
            parse_ports(bad)
    await check_url(
        _url(PUBLIC, 9443), allow_private=False, allowed_hosts=frozenset(), allowed_ports={9443}
    )
    with pytest.raises(UnsafeTargetError):
        await check_url(
            _url(PUBLIC), allow_private=False, allowed_hosts=frozenset(), allowed_ports={9443}
        )
    # make up and the tests: a loopback receiver on whatever port it got
    await check_url("http://127.0.0.1:6379/", allow_private=True, allowed_hosts=frozenset())


@pytest.mark.parametrize(
    "answer", [["10.0.0.1", PUBLIC], [PUBLIC, "10.0.0.1"], [PUBLIC, "::ffff:127.0.0.1"]]
)
async def test_a_host_with_any_non_public_address_is_refused(
    answer: list[str], resolver: dict[str, list[str]]
) -> None:
    resolver["mixed.example.com"] = answer
    sender = WebhookHttpSender(
        timeout=2, body_limit=8, allow_private=False, allowed_hosts=frozenset()
    )
    result = await sender.post("https://mixed.example.com/h", body=b"{}", headers={})
    assert result.refused
    assert result.error == "refused: the host resolves to a non-public address"


async def _server(host: str, port: int, hits: list[str]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        await reader.readexactly(2)
        hits.append(host)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, host, port)


async def test_addresses_are_tried_in_the_resolvers_order(
    resolver: dict[str, list[str]],
) -> None:
    hits: list[str] = []
    second = await _server("127.0.0.3", 0, hits)
    port = second.sockets[0].getsockname()[1]
    first = await _server("127.0.0.2", port, hits)
    sender = WebhookHttpSender(
        timeout=5, body_limit=8, allow_private=True, allowed_hosts=frozenset()
    )
    try:
        # the resolver's first answer first, not the first in string order
        resolver["both.test"] = ["127.0.0.3", "127.0.0.2"]
        result = await sender.post(f"http://both.test:{port}/h", body=b"{}", headers={})
        assert (result.status_code, hits) == (200, ["127.0.0.3"])
        # one that refuses the connection: the next is tried
        resolver["down-then-up.test"] = ["127.0.0.1", "127.0.0.2"]
        result = await sender.post(f"http://down-then-up.test:{port}/h", body=b"{}", headers={})
        assert (result.status_code, hits) == (200, ["127.0.0.3", "127.0.0.2"])
        # none answers: one failed attempt that says so
        resolver["down.test"] = ["127.0.0.1", "127.0.0.4"]
        result = await sender.post(f"http://down.test:{port}/h", body=b"{}", headers={})
        assert result.status_code is None
        assert result.error is not None
        assert result.error.startswith("no connection to any of 2 address(es)")
    finally:
        await sender.aclose()
        first.close()
        second.close()
