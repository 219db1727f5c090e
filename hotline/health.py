"""Health: database, Redis, rota and worker heartbeats.

`GET /healthz` is public and unauthenticated, so it reveals nothing: only
`{"ok": bool, "checks": {"database": "ok"|"down", "redis": "ok"|"down",
"rota": "ok"|"stale"|"missing", "worker": "ok"|"down"}}`, 200 when ok, else 503. No error
texts (a rota error quotes the rota, staff phones included), numbers, hashes or times.

The details (error class names, rota errors, hash and load time, queue depth, heartbeats) are
for operators: `hotline health [--json]`, or `/healthz` with
`Authorization: Bearer $HOTLINE_HEALTH_TOKEN` when that variable is set.
"""

from __future__ import annotations

import hmac
import json
from datetime import timedelta
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from sqlmodel import Session, select

from hotline.db import ping
from routing.jobqueue import DUE_LIST, SEND_LIST, THREADING_LIST
from routing.runtime import Runtime
from routing.tables import WorkerHeartbeat, utcnow

bp = Blueprint("health", __name__)
HEARTBEAT_MAX_AGE = timedelta(seconds=30)


def health_report(runtime: Runtime) -> dict[str, Any]:
    """The full report: `{"ok": bool, "checks": {name: {"state": ..., details...}}}`.

    `ok` is true when the database, Redis and a worker are up and a rota is live. A stale
    rota (a broken edit pending, the last valid rota serving) is reported but still ok: the
    hotline pages as before, and taking a web node out of service over a typo would not help.
    Never raises: a failing part is its answer.
    """
    checks: dict[str, dict[str, Any]] = {}
    try:
        ping(runtime.engine)
        checks["database"] = {"state": "ok"}
    except Exception as exc:
        checks["database"] = {"state": "down", "error": exc.__class__.__name__}
    try:
        connection = runtime.queue.connection
        connection.ping()
        # what waits for a worker: RQ jobs, steps and sends due now, messages busy webhooks
        # stored
        checks["redis"] = {
            "state": "ok",
            "queued": len(runtime.queue),
            "steps_due": connection.llen(DUE_LIST),
            "sends_due": connection.llen(SEND_LIST),
            "to_thread": connection.llen(THREADING_LIST),
        }
    except Exception as exc:
        checks["redis"] = {"state": "down", "error": exc.__class__.__name__}
    status = runtime.rota.status()
    checks["rota"] = {
        "state": "missing" if not status.ok else "stale" if status.stale else "ok",
        "errors": list(status.errors),
        "sha256": status.sha256,
        "loaded_at": status.loaded_at.isoformat() if status.loaded_at else None,
    }
    checks["worker"] = _worker_check(runtime.engine)
    ok = (
        all(checks[name]["state"] == "ok" for name in ("database", "redis", "worker"))
        and checks["rota"]["state"] != "missing"
    )
    return {"ok": ok, "checks": checks}


def public_view(report: dict[str, Any]) -> dict[str, Any]:
    """The public shape of a report: states only."""
    return {
        "ok": report["ok"],
        "checks": {name: check["state"] for name, check in report["checks"].items()},
    }


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


def _worker_check(engine) -> dict[str, Any]:  # noqa: ANN001
    try:
        with Session(engine) as session:
            beats = session.exec(select(WorkerHeartbeat)).all()
    except Exception as exc:
        return {"state": "down", "error": exc.__class__.__name__}
    now = utcnow()
    alive = [b.name for b in beats if now - b.at <= HEARTBEAT_MAX_AGE]
    newest = max((b.at for b in beats), default=None)
    return {
        "state": "ok" if alive else "down",
        "alive": len(alive),
        "last_heartbeat": newest.isoformat() if newest else None,
    }


def format_report(report: dict[str, Any]) -> str:
    """The report as lines for a terminal (operators only: it may quote the rota)."""
    from routing.display import clean_text

    lines = [f"hotline health: {'OK' if report['ok'] else 'NOT OK'}"]
    for name, check in report["checks"].items():
        details = {k: v for k, v in check.items() if k not in ("state", "errors")}
        extra = ", ".join(f"{k} {v}" for k, v in details.items() if v is not None)
        lines.append(f"  {name:<9} {check['state']:<8} {extra}".rstrip())
        for error in check.get("errors", []):
            lines.append(f"    {clean_text(error, one_line=True)}")
    return "\n".join(lines)


def run_health(settings, *, as_json: bool) -> int:  # noqa: ANN001
    """`hotline health`: print the full report; 0 when healthy, 1 when not."""
    from hotline.app import build_runtime

    runtime = build_runtime(settings)
    try:
        report = health_report(runtime)
    finally:
        runtime.engine.dispose()
    print(json.dumps(report, indent=2, ensure_ascii=False) if as_json else format_report(report))
    return 0 if report["ok"] else 1
