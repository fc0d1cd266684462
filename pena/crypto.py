"""Pseudonymous tokens and field encryption for identity data (UU PDP: NIK identifies a person).

- nik_token: HMAC-SHA256 of a normalised NIK with a ministry key: lookups and cross-system
  matching without a plaintext NIK index.
- FieldCipher: AES-256-GCM (the `cryptography` package) with a random nonce per value.
"""

from __future__ import annotations

import base64
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def keyed_hex(key: str, message: bytes) -> str:
    """HMAC-SHA256 of `message` under `key`, as 64 hex digits: `hmac.digest` (one C call, OpenSSL's
    one-shot HMAC) gives the same bytes as `hmac.new(key, message, sha256).hexdigest()` without the
    HMAC object (tests/unit/test_crypto.py checks the two agree), so stored tokens still match."""
    return hmac.digest(key.encode(), message, "sha256").hex()


def nik_token(nik: str, key: str) -> str:
    return keyed_hex(key, nik.strip().encode())


def mask_nik(number: str) -> str:
    """A NIK or KK number as shown without participants:read_nik: the regency (first 4 digits) and
    the last 2, e.g. `1371**********01`. Digits 5-6 (district), 7-12 (the NIK's birth date, DD+40 for
    women; the KK's registration date) and 13-14 are hidden, so the mask adds nothing to what an
    answer shows anyway (region code, birth date, sex) except the last two digits, and the hidden part
    leaves thousands of candidates for a rate-limited lookup to confirm, not a hundred."""
    if len(number) < 8:
        return "*" * len(number)
    return number[:4] + "*" * (len(number) - 6) + number[-2:]


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
