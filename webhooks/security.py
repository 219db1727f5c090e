"""Twilio request signatures: every `/twilio/*` request is checked before anything else.

The order is cheapest first, so a made-up request costs next to nothing: the signature
header's shape (403), the body's size (413) and its number of fields counted in the raw bytes
(400) are checked before the form is parsed; then the signature (403); then the shape of
Twilio's fields (400, see webhooks.fields). Only then does the view run.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from functools import wraps
from urllib.parse import urlparse

from flask import Response, abort, current_app, request
from twilio.request_validator import RequestValidator, add_port, compare, remove_port

from webhooks.fields import BadForm, check_twilio_form

log = logging.getLogger(__name__)

# Base64 of an HMAC-SHA1 (20 bytes: 28 characters), or of an HMAC-SHA256 (32 bytes: 44), the
# variant Twilio signs with when a webhook shared key is configured.
SIGNATURE_SHAPE = re.compile(r"[A-Za-z0-9+/]{27}=|[A-Za-z0-9+/]{43}=")
# Twilio's largest form is an inbound WhatsApp text: 4,096 characters, up to 12 bytes each
# once form-encoded (a 4-byte character is %XX%XX%XX%XX), plus about 1 KB of other fields.
MAX_BODY_BYTES = 64 * 1024
# An MMS with 10 media, the most Twilio sends, has about 50 fields.
MAX_FIELDS = 100


def signed_url() -> str:
    """The URL Twilio signed: HOTLINE_PUBLIC_URL + path + query, else the request's own URL
    (console mode only: settings refuse to start without HOTLINE_PUBLIC_URL otherwise)."""
    runtime = current_app.extensions["hotline"]
    base = runtime.settings.public_url
    if base is None:
        return request.url
    query = request.query_string.decode()
    return base + request.path + (f"?{query}" if query else "")


def signature_matches(
    validator: RequestValidator, url: str, form: Mapping[str, str], signature: str
) -> bool:
    """`RequestValidator.validate` for a form post: Twilio signs the URL without its port or
    with its default port, and the SDK computes both HMACs for every request; here the
    second is computed only when the first does not match."""
    parsed = urlparse(url)
    return any(
        compare(validator.compute_signature(signed, form), signature)
        for signed in (remove_port(parsed), add_port(parsed))
    )


def _refuse(status: int, text: str) -> None:
    log.warning("refused request to %s: %s", request.path, text)
    abort(Response(f"{text}\n", status=status, mimetype="text/plain"))


def refuse_cheap_fakes() -> None:
    """Abort (403, 413 or 400) before any parsing when the request cannot be Twilio's."""
    if not SIGNATURE_SHAPE.fullmatch(request.headers.get("X-Twilio-Signature", "")):
        _refuse(403, "invalid signature")
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        _refuse(413, "request too large")
    # a chunked body without a length stops at the same limit (werkzeug raises 413)
    request.max_content_length = MAX_BODY_BYTES
    body = request.get_data(cache=True)  # the form is parsed later from these cached bytes
    if body.count(b"&") + 1 > MAX_FIELDS:
        _refuse(400, "too many fields")


def twilio_signed(view):  # noqa: ANN001, ANN201
    """Reject any request that is not Twilio's (403 bad signature, 413 too large, 400 too many
    or malformed fields); nothing else runs, nothing changes."""

    @wraps(view)
    def checked(*args, **kwargs):  # noqa: ANN202
        refuse_cheap_fakes()
        runtime = current_app.extensions["hotline"]
        signature = request.headers["X-Twilio-Signature"]
        if not signature_matches(
            RequestValidator(runtime.settings.webhook_token), signed_url(), request.form, signature
        ):
            _refuse(403, "invalid signature")
        try:
            check_twilio_form(request.form, runtime.settings.twilio_account_sid)
        except BadForm as exc:
            _refuse(400, f"bad request: {exc}")
        return view(*args, **kwargs)

    return checked
