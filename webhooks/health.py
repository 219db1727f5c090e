"""GET /healthz: public and unauthenticated, so it reveals nothing: only
`{"ok": bool, "checks": {"database": "ok"|"down", "redis": "ok"|"down",
"rota": "ok"|"stale"|"missing", "worker": "ok"|"down"}}`, 200 when ok, else 503. No error
texts (a rota error quotes the rota, staff phones included), numbers, hashes or times.

The details (error class names, rota errors, hash and load time, queue depth, heartbeats) are
for operators: `hotline health [--json]`, or `/healthz` with
`Authorization: Bearer $HOTLINE_HEALTH_TOKEN` when that variable is set.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, current_app, jsonify, request

from routing.health import health_report, public_view

bp = Blueprint("health", __name__)


def _authorized(token: str | None) -> bool:
    if not token:
        return False
    given = request.headers.get("Authorization", "")
    # compare_digest on bytes: equal time whatever the guess, and no error on non-ASCII
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


@bp.get("/healthz")
def healthz():  # noqa: ANN201
    runtime = current_app.extensions["hotline"]
    report = health_report(runtime)
    body = report if _authorized(runtime.settings.health_token) else public_view(report)
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response, 200 if report["ok"] else 503
