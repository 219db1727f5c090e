"""`GET /healthz`: database, Redis, rota and worker heartbeat, as JSON (200 only when all fine)."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, jsonify
from sqlmodel import Session, select

from hotline.db import ping
from routing.tables import WorkerHeartbeat, utcnow

bp = Blueprint("health", __name__)
HEARTBEAT_MAX_AGE = timedelta(seconds=30)


@bp.get("/healthz")
def healthz():  # noqa: ANN201
    runtime = current_app.extensions["hotline"]
    checks: dict[str, dict] = {}
    try:
        ping(runtime.engine)
        checks["database"] = {"ok": True}
    except Exception as exc:  # any failure is the answer, not a crash
        checks["database"] = {"ok": False, "error": exc.__class__.__name__}
    try:
        runtime.queue.connection.ping()
        checks["redis"] = {"ok": True, "queued": len(runtime.queue)}
    except Exception as exc:
        checks["redis"] = {"ok": False, "error": exc.__class__.__name__}
    status = runtime.rota.status()
    checks["rota"] = {
        # a broken edit leaves the last valid rota live: still serving, but flagged stale
        "ok": status.ok,
        "stale": status.stale,
        "errors": list(status.errors),
        "sha256": status.sha256,
        "loaded_at": status.loaded_at.isoformat() if status.loaded_at else None,
    }
    checks["worker"] = _worker_check(runtime.engine)
    healthy = all(check["ok"] for check in checks.values())
    return jsonify(status="ok" if healthy else "degraded", checks=checks), 200 if healthy else 503


def _worker_check(engine) -> dict:  # noqa: ANN001
    try:
        with Session(engine) as session:
            beats = session.exec(select(WorkerHeartbeat)).all()
    except Exception as exc:
        return {"ok": False, "error": exc.__class__.__name__}
    now = utcnow()
    alive = [b.name for b in beats if now - b.at <= HEARTBEAT_MAX_AGE]
    newest = max((b.at for b in beats), default=None)
    return {
        "ok": bool(alive),
        "alive": len(alive),
        "last_heartbeat": newest.isoformat() if newest else None,
    }
