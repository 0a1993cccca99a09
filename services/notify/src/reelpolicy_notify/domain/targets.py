"""Outbound safety: which webhook URLs, ports and addresses may be called (pure).

An address may be called only when it is globally routable (``ipaddress``'s
``is_global``) and so is every IPv4 address it carries: IPv4-mapped (``::ffff:a.b.c.d``),
IPv4-compatible (``::a.b.c.d``), 6to4 (``2002::/16``), Teredo (``2001::/32``, server and
client) and NAT64 (``64:ff9b::/96``). Refusals never name the address a host resolved
to: the message would tell a caller what lies inside the network.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

DEFAULT_ALLOWED_PORTS = frozenset({80, 443, 8080, 8443})

# Not globally reachable by IANA's registries, but ``is_global`` on Python 3.11 says so.
_NOT_GLOBAL = (
    ipaddress.ip_network("64:ff9b:1::/48"),  # local-use NAT64 (RFC 8215)
    ipaddress.ip_network("5f00::/16"),  # SRv6 SIDs
    ipaddress.ip_network("3fff::/20"),  # documentation
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeTargetError(ValueError):
    """A URL that is malformed, on a port not allowed, or whose host is not public."""


def parse_target(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL without credentials; raises UnsafeTargetError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeTargetError("the url must be http(s)://host/...")
    if parts.username or parts.password:
        raise UnsafeTargetError("the url must not carry credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeTargetError("invalid port") from None
    return parts.hostname.lower().rstrip("."), port


def embedded_ipv4(ip: Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, compatible, 6to4, Teredo, NAT64)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return []
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)
    if ip in _NAT64:
        return [low32]
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:  # not :: or ::1
        return [low32]
    return []


def _globally_routable(ip: Address) -> bool:
    # NAT64's well-known prefix lies in ::/8, which ``ipaddress`` calls reserved.
    reserved = ip.is_reserved and ip not in _NAT64
    return (
        ip.is_global
        and not (ip.is_multicast or reserved or ip.is_unspecified)
        and not any(ip in network for network in _NOT_GLOBAL)
    )


def is_public_address(address: str) -> bool:
    """True only for a globally routable address whose embedded IPv4 (if any) is too."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return _globally_routable(ip) and all(_globally_routable(v4) for v4 in embedded_ipv4(ip))


def literal_address(host: str) -> str | None:
    """The host itself when it is an IP literal, else None (it needs DNS)."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def check_port(port: int, *, allow_private: bool, allowed_ports: frozenset[int]) -> None:
    """Raise UnsafeTargetError unless ``port`` is allowed. ``allow_private`` (development
    and tests, whose receivers listen on any port) allows every port."""
    if allow_private or port in allowed_ports:
        return
    allowed = ", ".join(str(p) for p in sorted(allowed_ports)) or "none"
    raise UnsafeTargetError(f"port {port} is not allowed (allowed: {allowed})")


def check_addresses(
    host: str, addresses: list[str], *, allow_private: bool, allowed_hosts: frozenset[str]
) -> None:
    """Raise UnsafeTargetError unless every resolved address of ``host`` may be called.

    A host with any non-public address is refused even when others are public: the
    connection may go to any of them, and a mix is what DNS rebinding looks like.
    """
    if allow_private or host in allowed_hosts:
        return
    if not addresses:
        raise UnsafeTargetError("the host does not resolve")
    if not all(is_public_address(address) for address in addresses):
        raise UnsafeTargetError("the host resolves to a non-public address")
