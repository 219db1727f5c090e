"""The form's token: proof that a submission comes from a form this hotline served lately.

`<issued unix time>.<keyed hash of it>` in a hidden field: no session, no cookie. A token is
good for TOKEN_LIFETIME after it was issued; a bot must fetch a fresh form at least that often,
and a form copied elsewhere goes stale. It pays for one submission (`first_use`): Redis keeps a
keyed hash of each token used, as long as it could be used, and nothing else.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from datetime import timedelta

import redis

from routing.runtime import Runtime

log = logging.getLogger(__name__)
TOKEN_LIFETIME = timedelta(hours=2)
CLOCK_SKEW = timedelta(seconds=60)  # web nodes' clocks may differ a little


def issue(rt: Runtime) -> str:
    """A new form's token: `<issued>.<nonce>.<mac>`. The nonce makes each form's token its own
    (two forms served in one second must not share the one submission a token pays for)."""
    issued, nonce = int(rt.clock().timestamp()), secrets.token_hex(8)
    return f"{issued}.{nonce}.{rt.vault.lookup_hash(_what(issued, nonce))}"


def problem(rt: Runtime, token: str | None) -> str | None:
    """None for a good token; else "missing", "forged" or "expired"."""
    issued_text, _, rest = (token or "").partition(".")
    nonce, _, mac = rest.rpartition(".")
    if not issued_text or not mac:
        return "missing"
    # ASCII digits only: '²' and '١٧٩٦' are digits to str.isdigit, and no number to int()
    if not (issued_text.isascii() and issued_text.isdigit()) or len(issued_text) > 12:
        return "forged"
    issued = int(issued_text)
    # under every configured key: forms served just before a key rotation stay good; bytes,
    # since compare_digest refuses a str with non-ASCII characters
    given = mac.encode()
    if not any(
        hmac.compare_digest(given, good.encode())
        for good in rt.vault.lookup_hashes(_what(issued, nonce))
    ):
        return "forged"
    age = rt.clock().timestamp() - issued
    if age > TOKEN_LIFETIME.total_seconds() or age < -CLOCK_SKEW.total_seconds():
        return "expired"
    return None


def _what(issued: int, nonce: str) -> str:
    # a form served before tokens had a nonce (within TOKEN_LIFETIME of an upgrade) has none
    return f"web-form-token:{issued}:{nonce}" if nonce else f"web-form-token:{issued}"


def first_use(rt: Runtime, token: str) -> bool | None:
    """True the first time a good `token` pays for a submission, False when it already has;
    None when Redis cannot say (the submission goes through: a defender is never turned away
    because a counter is down)."""
    try:
        return bool(rt.queue.connection.set(_used_key(rt, token), b"", nx=True, ex=_REMEMBERED_S))
    except redis.RedisError as exc:
        log.warning("web form token not checked for reuse (%s); let through", type(exc).__name__)
        return None


def give_back(rt: Runtime, token: str) -> None:
    """The submission `token` paid for did not happen (the line's ceiling): it may try again."""
    try:
        rt.queue.connection.delete(_used_key(rt, token))
    except redis.RedisError:
        log.warning("web form token could not be given back")


# as long as a token could be used, and the clock skew it is allowed
_REMEMBERED_S = int((TOKEN_LIFETIME + 2 * CLOCK_SKEW).total_seconds())


def _used_key(rt: Runtime, token: str) -> str:
    # by its mac alone, which names one (issued, nonce): the same token written another way
    # (`issued..mac` for a form served before tokens had a nonce) is the same token
    mac = token.rpartition(".")[2]
    return "hotline:web-token-used:" + rt.vault.lookup_hash("web-form-token-used:" + mac)
