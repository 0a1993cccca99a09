"""Webhook signing secrets sealed at rest: AES-256-GCM under a key ring with key ids.

The ring (``NOTIFY_SEALING_KEYS``) is comma-separated ``<kid>:<base64url of 32 random
bytes>`` entries: the first key seals, every key opens. It belongs to notify alone,
apart from ``REELPOLICY_SECRET_KEY`` (which hashes API keys), so each rotates on its
own. Sealed form: ``v2.<kid>.<base64url(nonce | ciphertext and tag)>``, with the kid
and a purpose string as associated data, so a value cannot pass for one sealed under
another key id or for another purpose.

Rotation (``deploy/runbook.md``): put a new key first in the ring, restart notify,
run ``reelpolicy-notify secrets reseal`` (:mod:`reelpolicy_notify.adapters.reseal`),
then drop the old key.

Values sealed before key rings (``v1.``: a hand-made cipher keyed by
``REELPOLICY_SECRET_KEY``) open only when that old secret is given as
``NOTIFY_LEGACY_SECRET_KEY``, and only so that ``secrets reseal`` can move them to
``v2``; nothing is ever sealed as ``v1`` again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
KID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_NONCE_BYTES = 12
_TAG_BYTES = 16
_PURPOSE = b"reelpolicy-notify/webhook-signing-secret/v2/"
# 32 random bytes hold about 30 distinct values; fewer than this is typed, not random.
_MIN_DISTINCT_BYTES = 16


class SecretBoxError(ValueError):
    """A sealed value that does not open: unknown key id, wrong key, tampered, malformed."""


@dataclass(frozen=True)
class SealingKey:
    kid: str
    key: bytes = field(repr=False)


def _b64decode(text: str) -> bytes:
    """Strict base64url, padding optional."""
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def new_sealing_key(kid: str) -> str:
    """A fresh ring entry ``<kid>:<base64url of 32 random bytes>``."""
    if not KID.fullmatch(kid):
        raise ValueError("a key id is 1-32 letters, digits, '-' or '_'")
    return f"{kid}:{_b64encode(os.urandom(KEY_BYTES))}"


def parse_key_ring(text: str) -> tuple[SealingKey, ...]:
    """The ring's keys, the sealing one first; ``ValueError`` names the bad entry.

    The messages name entries by position and key id, never their key material.
    """
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]
    if not entries:
        raise ValueError("the sealing key ring is empty: give <kid>:<base64url of 32 bytes>")
    ring: list[SealingKey] = []
    for position, entry in enumerate(entries, start=1):
        kid, colon, encoded = entry.partition(":")
        if not colon or not KID.fullmatch(kid):
            raise ValueError(
                f"sealing key {position}: an entry is <kid>:<base64url of 32 random bytes>,"
                " the kid 1-32 letters, digits, '-' or '_'"
            )
        try:
            key = _b64decode(encoded)
        except (binascii.Error, ValueError):
            raise ValueError(f"sealing key {kid!r} is not base64url") from None
        if len(key) != KEY_BYTES:
            raise ValueError(f"sealing key {kid!r} has {len(key)} bytes; it needs {KEY_BYTES}")
        if len(set(key)) < _MIN_DISTINCT_BYTES:
            raise ValueError(f"sealing key {kid!r} is a placeholder, not random bytes")
        if any(existing.kid == kid for existing in ring):
            raise ValueError(f"sealing key id {kid!r} appears twice")
        ring.append(SealingKey(kid, key))
    return tuple(ring)


def _associated_data(kid: str) -> bytes:
    return _PURPOSE + kid.encode()


class SecretBox:
    """Seals under the ring's first key; opens under any key of the ring."""

    def __init__(self, ring: Sequence[SealingKey], *, legacy_secret: str | None = None) -> None:
        if not ring:
            raise ValueError("a SecretBox needs at least one sealing key")
        self._sealing_kid = ring[0].kid
        self._ciphers = {k.kid: AESGCM(k.key) for k in ring}
        self._legacy = None if legacy_secret is None else _LegacyV1(legacy_secret)

    @property
    def sealing_kid(self) -> str:
        return self._sealing_kid

    def seal(self, plain: str) -> str:
        kid = self._sealing_kid
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[kid].encrypt(nonce, plain.encode(), _associated_data(kid))
        return f"v2.{kid}.{_b64encode(nonce + sealed)}"

    def is_current(self, sealed: str) -> bool:
        """Whether ``sealed`` is sealed under the sealing key already (nothing to reseal)."""
        return sealed.startswith(f"v2.{self._sealing_kid}.")

    def open(self, sealed: str) -> str:
        form, _, rest = sealed.partition(".")
        if form == "v2":
            return self._open_v2(rest)
        if form == "v1":
            if self._legacy is None:
                raise SecretBoxError(
                    "secret sealed in the legacy v1 form: set NOTIFY_LEGACY_SECRET_KEY to the"
                    " REELPOLICY_SECRET_KEY that sealed it and run `reelpolicy-notify secrets"
                    " reseal`"
                )
            return self._legacy.open(rest)
        raise SecretBoxError("unknown sealed form (expected v2.<kid>.<data>)")

    def _open_v2(self, rest: str) -> str:
        kid, dot, encoded = rest.partition(".")
        if not dot:
            raise SecretBoxError("malformed sealed secret (expected v2.<kid>.<data>)")
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise SecretBoxError(
                f"secret sealed under key id {kid!r}, which is not in the sealing key ring"
                f" (NOTIFY_SEALING_KEYS holds {', '.join(map(repr, self._ciphers))})"
            )
        try:
            raw = _b64decode(encoded)
        except (binascii.Error, ValueError):
            raise SecretBoxError(f"malformed sealed secret under key id {kid!r}") from None
        if len(raw) < _NONCE_BYTES + _TAG_BYTES:
            raise SecretBoxError(f"malformed sealed secret under key id {kid!r}")
        try:
            plain = cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _associated_data(kid))
        except InvalidTag:
            raise SecretBoxError(
                f"sealed secret failed authentication under key id {kid!r}"
                " (altered, or the ring's key of that id is not the one that sealed it)"
            ) from None
        return plain.decode()


class _LegacyV1:
    """Opens (never seals) the v1 form: an HMAC-SHA256 counter-mode keystream with an
    HMAC-SHA256 tag over nonce and ciphertext, keys derived from the old server secret."""

    def __init__(self, master: str) -> None:
        self._enc = self._derive(master, b"enc")
        self._mac = self._derive(master, b"mac")

    @staticmethod
    def _derive(master: str, label: bytes) -> bytes:
        return hmac.new(master.encode(), b"reelpolicy-notify/" + label, hashlib.sha256).digest()

    def open(self, encoded: str) -> str:
        try:
            raw = base64.urlsafe_b64decode(encoded.encode())
        except (binascii.Error, ValueError):
            raise SecretBoxError("malformed legacy v1 sealed secret") from None
        nonce, tag, cipher = raw[:16], raw[16:48], raw[48:]
        expected = hmac.new(self._mac, nonce + cipher, hashlib.sha256).digest()
        if not hmac.compare_digest(tag, expected):
            raise SecretBoxError(
                "legacy v1 sealed secret failed authentication"
                " (NOTIFY_LEGACY_SECRET_KEY is not the secret that sealed it?)"
            )
        blocks = (len(cipher) + 31) // 32
        stream = b"".join(
            hmac.new(self._enc, nonce + i.to_bytes(4, "big"), hashlib.sha256).digest()
            for i in range(blocks)
        )
        try:
            return bytes(a ^ b for a, b in zip(cipher, stream, strict=False)).decode()
        except UnicodeDecodeError:
            raise SecretBoxError("legacy v1 sealed secret does not decode") from None
