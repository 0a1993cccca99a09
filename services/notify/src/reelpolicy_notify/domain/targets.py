"""Outbound safety: which webhook URLs and addresses may be called (pure)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


class UnsafeTargetError(ValueError):
    """A URL that is malformed or points at a private, loopback or link-local address."""


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


def is_public_address(address: str) -> bool:
    """False for private, loopback, link-local, multicast, reserved or unspecified IPs."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def literal_address(host: str) -> str | None:
    """The host itself when it is an IP literal, else None (it needs DNS)."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def check_addresses(
    host: str, addresses: list[str], *, allow_private: bool, allowed_hosts: frozenset[str]
) -> None:
    """Raise UnsafeTargetError unless every resolved address of ``host`` may be called."""
    if allow_private or host in allowed_hosts:
        return
    if not addresses:
        raise UnsafeTargetError(f"{host} does not resolve")
    for address in addresses:
        if not is_public_address(address):
            raise UnsafeTargetError(f"{host} resolves to a non-public address {address}")
