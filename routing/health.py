"""Health: the database, Redis, the rota and the workers' heartbeats, as one report.

`GET /healthz` (webhooks.health) shows its public view, states only; `hotline health`
(hotline.health) and `/healthz` with the operator's token show all of it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, select

from routing.jobqueue import DUE_LIST, SEND_LIST, THREADING_LIST
from routing.runtime import Runtime
from routing.tables import WorkerHeartbeat, utcnow

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
        with runtime.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
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
