"""Pseudonymous tokens and field encryption for identity data (UU PDP: NIK identifies a person).

- nik_token: HMAC-SHA256 of a normalised NIK with a ministry key: lookups and cross-system
  matching without a plaintext NIK index.
- FieldCipher: AES-256-GCM (the `cryptography` package) with a random nonce per value.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def nik_token(nik: str, key: str) -> str:
    return hmac.new(key.encode(), nik.strip().encode(), hashlib.sha256).hexdigest()


def mask_nik(nik: str) -> str:
    """Shows the region part and the last two digits only: 137101**********21."""
    return nik[:6] + "*" * (len(nik) - 8) + nik[-2:] if len(nik) >= 8 else "*" * len(nik)


class FieldCipher:
    VERSION = b"\x01"

    def __init__(self, key_b64: str) -> None:
        key = base64.b64decode(key_b64)
        if len(key) != 32:
            raise ValueError("field encryption key must be 32 bytes, base64-encoded")
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), None)
        return base64.b64encode(self.VERSION + nonce + sealed).decode()

    def decrypt(self, token: str) -> str:
        raw = base64.b64decode(token)
        if raw[:1] != self.VERSION:
            raise ValueError("unknown ciphertext version")
        return self._aead.decrypt(raw[1:13], raw[13:], None).decode()
