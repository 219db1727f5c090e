"""Putting work on Redis: by the job's dotted name, so nothing here imports what it runs.

Jobs take ids, never objects, and are idempotent (each reloads its rows and claims its work
with a conditional update), so a job that runs twice, late, or after the sweeper did its work
changes nothing. Routing enqueues only after a commit, through its unit of work
(routing.uow); if Redis is down the enqueue is skipped with a warning and the sweeper
(routing.sweeper) runs the work from the database.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

from redis.exceptions import RedisError
from rq.exceptions import DuplicateJobError

from routing.runtime import Runtime

log = logging.getLogger(__name__)

JOB_TIMEOUT_S = 60
STEP_JOB = "routing.tasks.run_step_job"
SEND_JOB = "routing.tasks.send_job"
CHECKIN_JOB = "routing.tasks.checkin_job"


def enqueue(rt: Runtime, job: str, *args: object, at: datetime | None = None,
            job_id: str | None = None) -> bool:
    """Queue the job named `job` with `args` now, or at `at`. Returns False (and logs) when
    there is no queue or Redis is unavailable. With `job_id`, a job already scheduled under
    that id is kept, not duplicated."""
    if rt.queue is None:
        return False
    options = {"job_id": job_id, "unique": job_id is not None, "job_timeout": JOB_TIMEOUT_S,
               "result_ttl": 60, "failure_ttl": 7 * 86400}
    try:
        if at is not None and at > rt.clock():
            rt.queue.enqueue_at(at, job, *args, **options)
        else:
            rt.queue.enqueue(job, *args, **options)
    except DuplicateJobError:
        return True
    except (RedisError, OSError) as exc:
        log.warning("Redis unavailable (%s): %s will be run by the sweeper",
                    exc.__class__.__name__, job.rsplit(".", 1)[-1])
        return False
    return True


def schedule_step(rt: Runtime, incident_id: int, step: int, at: datetime) -> bool:
    """Schedule escalation step `step` of an incident for `at` (once per incident and step)."""
    if at <= rt.clock():
        return enqueue(rt, STEP_JOB, incident_id, step)
    return enqueue(rt, STEP_JOB, incident_id, step, at=at, job_id=f"step-{incident_id}-{step}")


def schedule_send(rt: Runtime, kind: str, row_id: int, priority: int,
                  at: datetime | None = None) -> bool:
    """Ask a worker to send outbox row `row_id` of `kind` ("message" or "call"); `priority`
    orders the worker's sends (0 first: pages)."""
    return enqueue(rt, SEND_JOB, kind, row_id, priority, at=at)


def schedule_checkin(rt: Runtime, checkin_id: int, at: datetime) -> bool:
    """Schedule check-in `checkin_id`'s deadline `at` (once per check-in and deadline: a
    standing check-in moved by a contact gets a new job; the old one finds nothing to do)."""
    job_id = f"checkin-{checkin_id}-{int(at.timestamp() * 1000)}"
    return enqueue(rt, CHECKIN_JOB, checkin_id, at=at, job_id=job_id)


# Contacts a busy webhook stored and left for a worker to thread (routing.intake `defer`):
# a plain list of "kind:id", not RQ jobs, so the webhook pays one round trip (an RQ enqueue
# costs about four times as much), and a worker takes them in batches.
THREADING_LIST = "hotline:threading"
THREADING_ITEM = re.compile(r"(message|call):([0-9]{1,18})")


def wake_threading(rt: Runtime, kind: str, *row_ids: int) -> bool:
    """Ask a worker to thread stored contacts `row_ids`. False (logged) without Redis: the
    sweeper threads them after its grace."""
    if rt.queue is None:
        return False
    try:
        rt.queue.connection.rpush(THREADING_LIST, *(f"{kind}:{i}" for i in row_ids))
    except (RedisError, OSError) as exc:
        log.warning("Redis unavailable (%s): the sweeper will thread %s %s",
                    exc.__class__.__name__, kind, ", ".join(map(str, row_ids)))
        return False
    return True


def take_threading(connection, wait_s: float, most: int) -> list[tuple[str, int]]:  # noqa: ANN001
    """Up to `most` contacts to thread, waiting up to `wait_s` for the first (0: not at all).
    Items that are not ours ("kind:id") are dropped with a warning: whoever can write to
    Redis can at most ask for a stored contact to be threaded, which the sweeper would do
    anyway."""
    if wait_s > 0:
        first = connection.blpop([THREADING_LIST], timeout=wait_s)
        if first is None:
            return []
        more = connection.lpop(THREADING_LIST, most - 1) if most > 1 else None
        raw = [first[1], *(more or [])]
    else:
        raw = connection.lpop(THREADING_LIST, most) or []
    items = []
    for value in raw:
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
        match = THREADING_ITEM.fullmatch(text)
        if match is None:
            log.warning("ignored a threading item that is not ours: %r", text[:40])
            continue
        items.append((match[1], int(match[2])))
    return items
