"""RQ entry points and the one way routing puts work on the queue.

Jobs take ids, never objects, and are idempotent: each reloads its rows and claims its work with
a conditional update, so a job that runs twice, late, or after the sweeper did its work changes
nothing. Enqueueing happens only after the database commit; if Redis is down the enqueue is
skipped with a warning and the sweeper (routing.sweeper) runs the work from the database.
"""

from __future__ import annotations

import logging
from datetime import datetime

from redis.exceptions import RedisError
from rq.exceptions import DuplicateJobError

from routing import runtime as runtime_module
from routing.runtime import Runtime

log = logging.getLogger(__name__)
JOB_TIMEOUT_S = 60


def run_step_job(incident_id: int, step: int) -> None:
    from routing.escalation import run_step

    run_step(runtime_module.current(), incident_id, step)


def deliver_job(message_id: int) -> None:
    from routing.delivery import deliver_message

    deliver_message(runtime_module.current(), message_id)


def enqueue(rt: Runtime, func, *args, at: datetime | None = None,  # noqa: ANN001
            job_id: str | None = None) -> bool:
    """Queue `func(*args)` now, or at `at`. Returns False (and logs) when Redis is unavailable.

    With `job_id`, a job already scheduled under that id is kept (not duplicated).
    """
    if rt.queue is None:
        return False
    options = {"job_id": job_id, "unique": job_id is not None, "job_timeout": JOB_TIMEOUT_S,
               "result_ttl": 60, "failure_ttl": 7 * 86400}
    try:
        if at is not None and at > rt.clock():
            rt.queue.enqueue_at(at, func, *args, **options)
        else:
            rt.queue.enqueue(func, *args, **options)
    except DuplicateJobError:
        return True
    except (RedisError, OSError) as exc:
        log.warning("Redis unavailable (%s): %s will be run by the sweeper",
                    exc.__class__.__name__, getattr(func, "__name__", func))
        return False
    return True


def schedule_step(rt: Runtime, incident_id: int, step: int, at: datetime) -> bool:
    """Schedule escalation step `step` of an incident for `at` (once per incident and step)."""
    if at <= rt.clock():
        return enqueue(rt, run_step_job, incident_id, step)
    return enqueue(rt, run_step_job, incident_id, step, at=at, job_id=f"step-{incident_id}-{step}")


def schedule_delivery(rt: Runtime, message_id: int, at: datetime | None = None) -> bool:
    return enqueue(rt, deliver_job, message_id, at=at)
