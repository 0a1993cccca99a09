"""Which event applies and in what order (pure): a snapshot event changes the projection
only if its version is newer; a batch is applied in rounds that keep each key's order."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

T = TypeVar("T")


def is_newer(*, incoming: int, stored: int | None) -> bool:
    """Apply a snapshot only if its version is newer than the stored one."""
    return stored is None or incoming > stored


def policy_applies(*, incoming: int, stored: int | None, revoke: bool) -> bool:
    """A new version applies if newer; a revocation applies to the stored version too."""
    if stored is None:
        return not revoke
    return incoming >= stored if revoke else incoming > stored


def rounds(items: Sequence[T], *, key: Callable[[T], Hashable]) -> list[list[T]]:
    """Round n holds the n-th item of each key (in first-seen key order).

    Each key's items keep their order and no round holds a key twice, so the rounds
    can be applied one after the other, each as a set.
    """
    out: list[list[T]] = []
    seen: dict[Hashable, int] = {}
    for item in items:
        k = key(item)
        n = seen.get(k, 0)
        seen[k] = n + 1
        if n == len(out):
            out.append([])
        out[n].append(item)
    return out
