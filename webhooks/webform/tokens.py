"""The form's token: proof that a submission comes from a form this hotline served lately.

`<issued unix time>.<keyed hash of it>` in a hidden field: no session, no cookie, nothing
stored. A token is good for TOKEN_LIFETIME after it was issued; a bot must fetch a fresh form
at least that often, and a form copied elsewhere goes stale.
"""

from __future__ import annotations

import hmac
from datetime import timedelta

from routing.runtime import Runtime

TOKEN_LIFETIME = timedelta(hours=2)
CLOCK_SKEW = timedelta(seconds=60)  # web nodes' clocks may differ a little


def issue(rt: Runtime) -> str:
    issued = int(rt.clock().timestamp())
    return f"{issued}.{rt.vault.lookup_hash(_what(issued))}"


def problem(rt: Runtime, token: str | None) -> str | None:
    """None for a good token; else "missing", "forged" or "expired"."""
    issued_text, _, mac = (token or "").partition(".")
    if not issued_text or not mac:
        return "missing"
    if not issued_text.isdigit() or len(issued_text) > 12:
        return "forged"
    issued = int(issued_text)
    # under every configured key: forms served just before a key rotation stay good
    if not any(hmac.compare_digest(mac, good) for good in rt.vault.lookup_hashes(_what(issued))):
        return "forged"
    age = rt.clock().timestamp() - issued
    if age > TOKEN_LIFETIME.total_seconds() or age < -CLOCK_SKEW.total_seconds():
        return "expired"
    return None


def _what(issued: int) -> str:
    return f"web-form-token:{issued}"
