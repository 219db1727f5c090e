"""The staff console at `/console`: staff work a case in a browser, signed in with a passkey.

Server-rendered HTML with one script of our own (passkey.js, which WebAuthn needs); every
other page works with scripts off. Mounted only when `console.enabled: true`; `hotline serve
--console-only` serves it alone (README "The staff console").
"""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    runtime = app.extensions["hotline"]
    if not runtime.settings.console.enabled:
        return
    from webhooks.console import coordinators, signin, views  # noqa: F401  (their routes)
    from webhooks.console.blueprint import bp
    from webhooks.console.guard import LIMITER, make_limiter, protect
    from webhooks.webform.privacy import forget_the_client

    app.extensions[LIMITER] = make_limiter(runtime)
    app.register_blueprint(bp)
    app.after_request(protect)
    app.wsgi_app = forget_the_client(app.wsgi_app, prefix="/console")  # type: ignore[method-assign]
