"""Nothing about the client survives a `/help` request: no address, no user agent.

`forget_the_client` wraps the WSGI app: before the app (and the request log of whatever server
runs it, which reads the WSGI environ) sees a `/help` request, its client address, forwarding
headers and user agent are blanked. werkzeug's development server logs REMOTE_ADDR from the
environ it handed the app, so it logs `-`; waitress keeps no access log. `protect` puts the
README's headers ("The secure web form") on every `/help` answer, errors and the
stylesheet included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Response, request

PREFIX = "/help"
FORGET = (
    "HTTP_USER_AGENT",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_REAL_IP",
    "HTTP_FORWARDED",
    "HTTP_REFERER",
    "HTTP_CLIENT_IP",
    "HTTP_TRUE_CLIENT_IP",
    "HTTP_CF_CONNECTING_IP",
    "HTTP_VIA",
)
HEADERS = {
    # no script, no frame, no plugin, nothing from elsewhere: the stylesheet from here only
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
}

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def is_help(path: str, prefix: str = PREFIX) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def forget_the_client(app: WSGIApp, prefix: str = PREFIX) -> WSGIApp:
    """`app`, with the client forgotten on every request under `prefix` (/help; the staff
    console wraps /console the same way)."""

    def scrubbed(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if is_help(environ.get("PATH_INFO", ""), prefix):
            # the same dict the server logs from: change it in place, never copy it
            environ["REMOTE_ADDR"] = "-"
            environ["REMOTE_PORT"] = "0"
            for key in FORGET:
                environ.pop(key, None)
        return app(environ, start_response)

    return scrubbed


def protect(response: Response) -> Response:
    """Flask after_request: the README's headers on every `/help` answer; no cookie, ever."""
    if is_help(request.path):
        response.headers.update(HEADERS)
        response.headers.pop("Set-Cookie", None)
    return response
