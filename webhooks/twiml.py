"""TwiML responses."""

from __future__ import annotations

from flask import Response


def twiml(response) -> Response:  # noqa: ANN001
    return Response(str(response), status=200, mimetype="application/xml")
