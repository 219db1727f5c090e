"""The console's locks: who is signed in, the CSRF token, the sign-in rate limit, and the
headers every `/console` answer carries.

The session lives in the database (routing.access); the browser holds only a random token in
a `__Host-` cookie (Secure, HttpOnly, SameSite=Strict, path /). The CSRF token of a session
is an HMAC of its cookie token under the secret key, so it is never stored and a page of one
session is useless to another. A POST also refuses an `Origin` of another site.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from functools import wraps
from urllib.parse import urlsplit

from flask import Response, abort, current_app, g, redirect, request, url_for
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from routing import access

log = logging.getLogger(__name__)
COOKIE = "__Host-hotline-console"
PREFIX = "/console"
HEADERS = {
    # the one script is our own (passkey.js, for WebAuthn); nothing from anywhere else
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
LIMITER = "hotline_console_limiter"


def rt():  # noqa: ANN201
    return current_app.extensions["hotline"]


def relying_party() -> access.RelyingParty:
    """The console's address as passkeys know it: console.url, else the public URL, else
    (`hotline run` on this machine) the address the browser used."""
    url = rt().settings.console_url or request.host_url
    parts = urlsplit(url)
    return access.RelyingParty(
        id=parts.hostname or "localhost", origin=f"{parts.scheme}://{parts.netloc}"
    )


def csrf_token(token: str) -> str:
    key = rt().settings.secret_keys[0].encode()
    return hmac.new(key, b"console-csrf:" + token.encode(), hashlib.sha256).hexdigest()


def _refused(status: int, text: str) -> None:
    abort(Response(f"{text}\n", status=status, mimetype="text/plain"))


def refuse_cross_site() -> None:
    """403 for a POST another site made this browser send (a forged sign-in would sign the
    victim in as the forger)."""
    if _cross_site():
        _refused(403, "refused: posted from another site")


def _cross_site() -> bool:
    if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        return True
    origin = request.headers.get("Origin", "")
    if not origin or origin == "null":
        return False
    return urlsplit(origin).netloc.lower() != request.host.lower()


def signed_in(view: Callable) -> Callable:
    """The view runs only for a live session (else: to the sign-in page for a GET, 401 for
    a POST), and a POST only with the session's CSRF token, from this site (403)."""

    @wraps(view)
    def guarded(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        token = request.cookies.get(COOKIE, "")
        # the board's own refresh (?auto=1) is not someone at work: it keeps no session alive
        who = access.current(rt(), token, touch=request.args.get("auto") != "1")
        if who is None:
            if request.method == "GET":
                return redirect(url_for("console.signin_page"))
            _refused(401, "refused: not signed in (or the session ended); sign in again")
        if request.method == "POST":
            refuse_cross_site()
            sent = request.form.get("csrf", "")
            if not hmac.compare_digest(sent.encode(), csrf_token(token).encode()):
                _refused(403, "refused: the form's token is missing or wrong; reload the page")
        g.who, g.csrf = who, csrf_token(token)
        return view(*args, **kwargs)

    return guarded


def coordinators_only(view: Callable) -> Callable:
    @wraps(view)
    def checked(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if not g.who.coordinator:
            _refused(403, "refused: for coordinators only (coordinators: in the rota)")
        return view(*args, **kwargs)

    return checked


def limited() -> bool:
    """Count one passkey answer against console.signin_limit, for everyone together (no
    address is kept or used). True when over the limit. A Redis outage lets it through."""
    try:
        return not current_app.extensions[LIMITER].hit(
            parse(rt().settings.console.signin_limit), "hotline-console", "signin"
        )
    except Exception:
        log.warning("console sign-in rate limit unavailable (Redis?); answer let through")
        return False


def make_limiter(runtime) -> FixedWindowRateLimiter:  # noqa: ANN001
    connection = getattr(runtime.queue, "connection", None)
    if connection is None:
        return FixedWindowRateLimiter(storage_from_string("memory://"))
    return FixedWindowRateLimiter(
        storage_from_string("redis://", connection_pool=connection.connection_pool)
    )


def set_session_cookie(response: Response, token: str) -> Response:
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(access.ABSOLUTE.total_seconds()),
        path="/",
        secure=True,
        httponly=True,
        samesite="Strict",
    )
    return response


def protect(response: Response) -> Response:
    """Flask after_request: the headers above on every `/console` answer."""
    if request.path == PREFIX or request.path.startswith(PREFIX + "/"):
        own = response.headers.get("Content-Security-Policy")  # the report's, stricter in kind
        response.headers.update(HEADERS)
        if own:
            response.headers["Content-Security-Policy"] = own
    return response
