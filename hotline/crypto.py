"""Personal data at rest: authenticated encryption and keyed hashes.

Every key in `HOTLINE_SECRET_KEY` (comma-separated, newest first) yields two sub-keys through
HKDF: a Fernet key (AES-128-CBC + HMAC-SHA256, authenticated) for values we must read back, and
an HMAC-SHA256 key for lookups (threading a defender's messages, blocklists) without storing the
number in clear. Rotation: put the new key first; old keys still decrypt and still match lookups
until `hotline rekey` has rewritten every row under the new key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"hotline-v1", info=purpose
    ).derive(secret.encode())


class Vault:
    """Encrypts and hashes personal data with the configured keys (first key is current)."""

    def __init__(self, keys: Sequence[str]):
        if not keys:
            raise ValueError("at least one key is required")
        self._fernets = [Fernet(base64.urlsafe_b64encode(_derive(k, b"encrypt"))) for k in keys]
        self._multi = MultiFernet(self._fernets)
        self._mac_keys = [_derive(k, b"lookup") for k in keys]

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
