"""Twilio request signatures: every `/twilio/*` request is checked before anything else."""

from __future__ import annotations

import logging
from functools import wraps

from flask import Response, abort, current_app, request
from twilio.request_validator import RequestValidator

log = logging.getLogger(__name__)


def signed_url() -> str:
    """The URL Twilio signed: HOTLINE_PUBLIC_URL + path + query, else the request's own URL."""
    runtime = current_app.extensions["hotline"]
    base = runtime.settings.public_url
    if base is None:
        return request.url
    query = request.query_string.decode()
    return base + request.path + (f"?{query}" if query else "")


def twilio_signed(view):  # noqa: ANN001, ANN201
    """Reject (403) any request without a valid X-Twilio-Signature; nothing else runs."""

    @wraps(view)
    def checked(*args, **kwargs):  # noqa: ANN202
        runtime = current_app.extensions["hotline"]
        signature = request.headers.get("X-Twilio-Signature", "")
        validator = RequestValidator(runtime.settings.webhook_token)
        if not signature or not validator.validate(signed_url(), request.form, signature):
            log.warning("rejected unsigned or badly signed request to %s", request.path)
            abort(Response("invalid signature\n", status=403, mimetype="text/plain"))
        return view(*args, **kwargs)

    return checked
