"""Signing secrets sealed at rest with a key derived from ``REELPOLICY_SECRET_KEY``.

Encrypt-then-MAC with the standard library only: the keystream is HMAC-SHA256 in
counter mode over a random 16-byte nonce (a PRF-based stream cipher), and an
HMAC-SHA256 tag covers nonce and ciphertext. Sealed form: ``v1.<base64url>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


class SecretBoxError(ValueError):
    pass


def _derive(master: str, label: bytes) -> bytes:
    return hmac.new(master.encode(), b"reelpolicy-notify/" + label, hashlib.sha256).digest()


class SecretBox:
    def __init__(self, master_key: str) -> None:
        self._enc = _derive(master_key, b"enc")
        self._mac = _derive(master_key, b"mac")

    def _keystream(self, nonce: bytes, length: int) -> bytes:
        blocks = (length + 31) // 32
        return b"".join(
            hmac.new(self._enc, nonce + i.to_bytes(4, "big"), hashlib.sha256).digest()
            for i in range(blocks)
        )[:length]

    def seal(self, plain: str) -> str:
        data = plain.encode()
        nonce = secrets.token_bytes(16)
        cipher = bytes(a ^ b for a, b in zip(data, self._keystream(nonce, len(data)), strict=True))
        tag = hmac.new(self._mac, nonce + cipher, hashlib.sha256).digest()
        return "v1." + base64.urlsafe_b64encode(nonce + tag + cipher).decode()

    def open(self, sealed: str) -> str:
        if not sealed.startswith("v1."):
            raise SecretBoxError("unknown sealed format")
        raw = base64.urlsafe_b64decode(sealed[3:].encode())
        nonce, tag, cipher = raw[:16], raw[16:48], raw[48:]
        expected = hmac.new(self._mac, nonce + cipher, hashlib.sha256).digest()
        if not hmac.compare_digest(tag, expected):
            raise SecretBoxError("sealed secret failed authentication (wrong key?)")
        stream = self._keystream(nonce, len(cipher))
        return bytes(a ^ b for a, b in zip(cipher, stream, strict=True)).decode()
