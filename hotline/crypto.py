"""Personal data at rest: authenticated encryption and keyed hashes.

Every key in `HOTLINE_SECRET_KEY` (comma-separated, newest first) yields two sub-keys through
HKDF: a Fernet key (AES-128-CBC + HMAC-SHA256, authenticated) for values we must read back, and
an HMAC-SHA256 key for lookups (threading a defender's messages, blocklists) without storing the
number in clear. Rotation: put the new key first; old keys still decrypt and still match lookups
until `hotline rekey` has rewritten every row under the new key.

Web form receipts get a third sub-key: the salt of a slow hash (scrypt). A receipt is 16
digits, so a fast hash of it could be brute-forced by whoever holds the key; scrypt makes each
guess cost tens of milliseconds and 16 MB. A receipt cannot be rehashed by `hotline rekey` (it
is never stored): it keeps matching while the key it was made under is configured.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# scrypt's cost: 2**14 x 8 x 128 bytes = 16 MB and ~50 ms per hash on a small server core
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024, "dklen": 32}


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"hotline-v1", info=purpose).derive(
        secret.encode()
    )


class Vault:
    """Encrypts and hashes personal data with the configured keys (first key is current)."""

    def __init__(self, keys: Sequence[str]):
        if not keys:
            raise ValueError("at least one key is required")
        self._fernets = [Fernet(base64.urlsafe_b64encode(_derive(k, b"encrypt"))) for k in keys]
        self._multi = MultiFernet(self._fernets)
        self._mac_keys = [_derive(k, b"lookup") for k in keys]
        self._receipt_salts = [_derive(k, b"receipt") for k in keys]
        self._checks = [
            hmac.new(_derive(k, b"key-check"), b"hotline key check", hashlib.sha256).hexdigest()
            for k in keys
        ]

    def check_values(self) -> list[str]:
        """Each configured key's check value (hotline.keycheck), current first: they name the
        key without revealing it."""
        return list(self._checks)

    def encrypt(self, plaintext: str | None) -> str | None:
        """Ciphertext (URL-safe text) of `plaintext`; None stays None."""
        if plaintext is None:
            return None
        return self._multi.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str | None) -> str | None:
        """Plaintext of a token made with any configured key; None stays None.

        Raises cryptography.fernet.InvalidToken when no configured key opens it.
        """
        if token is None:
            return None
        return self._multi.decrypt(token.encode()).decode()

    def rotate(self, token: str | None) -> str | None:
        """The same plaintext re-encrypted under the current key."""
        if token is None:
            return None
        return self._multi.rotate(token.encode()).decode()

    def is_current(self, token: str) -> bool:
        """True when the current key opens `token` (no rotation needed)."""
        try:
            self._fernets[0].decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def lookup_hash(self, value: str) -> str:
        """Keyed hash of `value` under the current key, for equality lookups."""
        return self.lookup_hashes(value)[0]

    def lookup_hashes(self, value: str) -> list[str]:
        """Keyed hashes of `value` under every configured key, current first."""
        return [hmac.new(k, value.encode(), hashlib.sha256).hexdigest() for k in self._mac_keys]

    def slow_hashes(self, value: str) -> list[str]:
        """Slow keyed hashes (scrypt, salted with a key-derived salt) of `value` under every
        configured key, current first: deterministic, for looking a receipt up, and costly to
        guess. Always computes every one, so its time does not depend on `value`."""
        return [
            hashlib.scrypt(value.encode(), salt=salt, **SCRYPT).hex()
            for salt in self._receipt_salts
        ]
