"""Personal data at rest: authenticated encryption and keyed hashes.

Every key in `HOTLINE_SECRET_KEY` (comma-separated, newest first) yields two sub-keys through
HKDF: a Fernet key (AES-128-CBC + HMAC-SHA256, authenticated) for values we must read back, and
an HMAC-SHA256 key for lookups (threading a defender's messages, blocklists) without storing the
number in clear. Rotation: put the new key first; old keys still decrypt and still match lookups
until `hotline rekey` has rewritten every row under the new key.

Data keys (crypto-shredding). What belongs to one incident (its number, its messages, calls,
recordings) is sealed under data keys of its own: random AES-256 keys, stored only wrapped
(AES-GCM) by a master sub-key, in the `data_key` table. A sealed value is AES-256-GCM with
associated data naming its table, column and key, so it opens only in its own column of a row
under its own key: a value copied to another incident's row does not open. Purging an incident
deletes its data keys: every copy of what they sealed, wherever it lies (the write-ahead log,
PostgreSQL's dead row versions, an old backup without those rows), stops opening at once.
Rotation rewraps the data keys, not the values. Values from before data keys (Fernet) still
open and `hotline rekey` reseals them.

Web form receipts get a third sub-key: the salt of a slow hash (scrypt). A receipt is 16
digits, so a fast hash of it could be brute-forced by whoever holds the key; scrypt makes each
guess cost tens of milliseconds and 16 MB. A receipt cannot be rehashed by `hotline rekey` (it
is never stored): it keeps matching while the key it was made under is configured.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# scrypt's cost: 2**14 x 8 x 128 bytes = 16 MB and ~50 ms per hash on a small server core
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024, "dklen": 32}
SEALED = "k1."  # a value sealed under a data key: SEALED + base64url(nonce | ciphertext)
WRAPPED = "w1."  # a data key wrapped under a master key, the same way
NONCE = 12
# unwrapped data keys a process keeps, and for how long: another process's purge deletes a key
# from the database, and this copy in memory goes at the latest this much later
CACHED_KEYS = 4096
CACHED_FOR_S = 300.0


class KeyDestroyed(InvalidToken):
    """The data key a value was sealed under is gone (purged): the value never opens again."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode())


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"hotline-v1", info=purpose).derive(
        secret.encode()
    )


class Vault:
    """Encrypts and hashes personal data with the configured keys (first key is current)."""

    def __init__(self, keys: Sequence[str]):
        if not keys:
            raise ValueError("at least one key is required")
        self._wrapping = [AESGCM(_derive(k, b"wrap")) for k in keys]
        self._keys: OrderedDict[str, tuple[AESGCM, float]] = OrderedDict()
        self._keys_lock = threading.Lock()
        self._load: Callable[[str], str | None] = lambda _key_id: None
        self._fernets = [Fernet(base64.urlsafe_b64encode(_derive(k, b"encrypt"))) for k in keys]
        self._multi = MultiFernet(self._fernets)
        self._mac_keys = [_derive(k, b"lookup") for k in keys]
        self._receipt_salts = [_derive(k, b"receipt") for k in keys]
        self._limit_key = _derive(keys[0], b"rate-limit")
        self._checks = [
            hmac.new(_derive(k, b"key-check"), b"hotline key check", hashlib.sha256).hexdigest()
            for k in keys
        ]

    # --- data keys -----------------------------------------------------------------------

    def attach(self, load_wrapped: Callable[[str], str | None]) -> None:
        """Where the wrapped data keys are read from (a key id -> its `wrapped`, or None when
        the key is gone): the `data_key` table, wired by the composition root."""
        self._load = load_wrapped

    def new_data_key(self) -> tuple[str, str]:
        """A new data key: (its id, itself wrapped under the current master key)."""
        key_id, key = secrets.token_hex(12), AESGCM.generate_key(bit_length=256)
        self._remember(key_id, AESGCM(key))
        return key_id, self._wrap(key_id, key)

    def rewrap(self, key_id: str, wrapped: str) -> str | None:
        """`wrapped` wrapped under the current master key instead; None when it already is.
        Raises InvalidToken when no configured key opens it."""
        nonce_and_key = _unb64(wrapped.removeprefix(WRAPPED))
        try:
            self._wrapping[0].decrypt(nonce_and_key[:NONCE], nonce_and_key[NONCE:], _aad(key_id))
            return None
        except InvalidTag:
            return self._wrap(key_id, self._unwrap(key_id, wrapped))

    def forget(self, key_ids: Iterable[str]) -> None:
        """Drop these (destroyed) data keys from this process's memory."""
        with self._keys_lock:
            for key_id in key_ids:
                self._keys.pop(key_id, None)

    def seal(self, key_id: str, where: str, plaintext: str | None) -> str | None:
        """`plaintext` sealed under data key `key_id` for column `where` ("message.body");
        None stays None."""
        if plaintext is None:
            return None
        nonce = os.urandom(NONCE)
        sealed = self._data_key(key_id).encrypt(nonce, plaintext.encode(), _aad(key_id, where))
        return SEALED + _b64(nonce + sealed)

    def open(self, key_id: str | None, where: str, token: str | None) -> str | None:
        """The plaintext of a value of column `where` in a row under data key `key_id`; a
        value from before data keys opens with the master keys. None stays None. Raises
        InvalidToken when it does not open there, KeyDestroyed when its key was purged."""
        if token is None:
            return None
        if not token.startswith(SEALED):
            return self.decrypt(token)
        if key_id is None:
            raise InvalidToken
        raw = _unb64(token.removeprefix(SEALED))
        try:
            plain = self._data_key(key_id).decrypt(raw[:NONCE], raw[NONCE:], _aad(key_id, where))
        except InvalidTag:
            raise InvalidToken from None
        return plain.decode()

    def _wrap(self, key_id: str, key: bytes) -> str:
        nonce = os.urandom(NONCE)
        return WRAPPED + _b64(nonce + self._wrapping[0].encrypt(nonce, key, _aad(key_id)))

    def _unwrap(self, key_id: str, wrapped: str) -> bytes:
        raw = _unb64(wrapped.removeprefix(WRAPPED))
        for wrapping in self._wrapping:
            try:
                return wrapping.decrypt(raw[:NONCE], raw[NONCE:], _aad(key_id))
            except InvalidTag:
                continue
        raise InvalidToken

    def _data_key(self, key_id: str) -> AESGCM:
        now = time.monotonic()
        with self._keys_lock:
            cached = self._keys.get(key_id)
            if cached is not None and now - cached[1] < CACHED_FOR_S:
                self._keys.move_to_end(key_id)
                return cached[0]
        wrapped = self._load(key_id)
        if wrapped is None:
            self.forget([key_id])
            raise KeyDestroyed
        key = AESGCM(self._unwrap(key_id, wrapped))
        self._remember(key_id, key)
        return key

    def _remember(self, key_id: str, key: AESGCM) -> None:
        with self._keys_lock:
            self._keys[key_id] = (key, time.monotonic())
            self._keys.move_to_end(key_id)
            while len(self._keys) > CACHED_KEYS:
                self._keys.popitem(last=False)

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

    def limit_hash(self, value: str) -> str:
        """A keyed hash of `value` for a rate limiter's key in Redis, under a sub-key used for
        nothing else: it matches no lookup hash in the database."""
        return hmac.new(self._limit_key, value.encode(), hashlib.sha256).hexdigest()

    def slow_hashes(self, value: str) -> list[str]:
        """Slow keyed hashes (scrypt, salted with a key-derived salt) of `value` under every
        configured key, current first: deterministic, for looking a receipt up, and costly to
        guess. Always computes every one, so its time does not depend on `value`."""
        return [
            hashlib.scrypt(value.encode(), salt=salt, **SCRYPT).hex()
            for salt in self._receipt_salts
        ]


def _aad(key_id: str, where: str = "data_key") -> bytes:
    """What a sealed value (or a wrapped key) is bound to: its column and its key."""
    return f"hotline:{where}:{key_id}".encode()
