"""The hotline's HTTP: thin Flask blueprints that parse a request, call routing once and render
the answer. Twilio's webhooks (TwiML), the secure web form, /healthz and the rota feeds."""

from __future__ import annotations

from flask import Flask, Response

from webhooks.busy import IN_FLIGHT, InFlight
from webhooks.forms import BadWebhook


def register(app: Flask, *, console_only: bool = False) -> None:
    """Mount the hotline's routes on `app`; `console_only`: the staff console alone (`hotline
    serve --console-only`, for an address Twilio never reaches: a VPN, an onion service)."""
    from webhooks.console import register as register_console
    from webhooks.fallback import bp as fallback_bp
    from webhooks.feeds import bp as feeds_bp
    from webhooks.health import bp as health_bp
    from webhooks.messages import bp as messages_bp
    from webhooks.voice import bp as voice_bp
    from webhooks.webform import register as register_webform

    if console_only:
        register_console(app)
        return
    app.extensions[IN_FLIGHT] = InFlight()
    app.register_blueprint(messages_bp)
    app.register_blueprint(voice_bp)
    app.register_blueprint(fallback_bp)
    register_webform(app)  # /help, when web_form.enabled
    app.register_blueprint(health_bp)
    register_console(app)  # /console, when console.enabled
    app.register_blueprint(feeds_bp)  # GET /rota/<token>.ics: 404 unless rota_feeds: true

    @app.errorhandler(BadWebhook)
    def _bad_webhook(exc: BadWebhook) -> Response:
        # domain errors map to HTTP here, once: a form Twilio would never send
        return Response(f"bad request: {exc}\n", status=400, mimetype="text/plain")
