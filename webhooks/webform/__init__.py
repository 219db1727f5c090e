"""The secure web form at `/help`: the hotline's third door, for defenders with no safe phone.

Plain HTML that works with scripts disabled (Tor Browser's "Safest"): no JavaScript, no
resource from anywhere else, no cookie. What is written here goes through routing.webform (the
one intake) and reaches the on-call person like an SMS. Mounted only when
`web_form.enabled: true`.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask

HERE = Path(__file__).resolve().parent
TRANSLATIONS = HERE / "translations"


def register(app: Flask) -> None:
    """Mount `/help` on `app` when the settings enable it: the blueprint, its message
    catalogues (Flask-Babel), its rate limits (Flask-Limiter, on the hotline's Redis) and its
    privacy guards (no client address or user agent reaches the app or its request log)."""
    runtime = app.extensions["hotline"]
    if not runtime.settings.web_form.enabled:
        return
    from flask_babel import Babel
    from flask_limiter import Limiter

    from webhooks.webform.languages import current_language
    from webhooks.webform.privacy import forget_the_client, protect
    from webhooks.webform.views import bp

    Babel(app, locale_selector=current_language, default_translation_directories=str(TRANSLATIONS))
    connection = getattr(runtime.queue, "connection", None)
    app.extensions["hotline_web_limiter"] = Limiter(
        key_func=lambda: "web-form",
        app=app,
        storage_uri="redis://" if connection is not None else "memory://",
        storage_options={"connection_pool": connection.connection_pool} if connection else {},
        strategy="fixed-window",
        headers_enabled=False,
        swallow_errors=True,
    )
    app.register_blueprint(bp)
    app.after_request(protect)
    app.wsgi_app = forget_the_client(app.wsgi_app)  # type: ignore[method-assign]
