"""When a snapshot event changes the projection (pure)."""

from __future__ import annotations


def is_newer(*, incoming: int, stored: int | None) -> bool:
    """Apply a snapshot only if its version is newer than the stored one."""
    return stored is None or incoming > stored


def policy_applies(*, incoming: int, stored: int | None, revoke: bool) -> bool:
    """A new version applies if newer; a revocation applies to the stored version too."""
    if stored is None:
        return not revoke
    return incoming >= stored if revoke else incoming > stored
