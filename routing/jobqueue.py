"""Putting work on Redis: by the job's dotted name, so nothing here imports what it runs.

Jobs take ids, never objects, and are idempotent (each reloads its rows and claims its work
with a conditional update), so a job that runs twice, late, or after the sweeper did its work
changes nothing. Routing enqueues only after a commit, through its unit of work
(routing.uow); if Redis is down the enqueue is skipped with a warning and the sweeper
(routing.sweeper) runs the work from the database. Two kinds of work skip RQ for plain lists
a worker thread blocks on (below): steps due now, and messages left to thread.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

from redis.exceptions import RedisError
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.registry import ScheduledJobRegistry

from routing.runtime import Runtime

log = logging.getLogger(__name__)

JOB_TIMEOUT_S = 60
STEP_JOB = "routing.tasks.run_step_job"
SEND_JOB = "routing.tasks.send_job"
CHECKIN_JOB = "routing.tasks.checkin_job"


def enqueue(
    rt: Runtime, job: str, *args: object, at: datetime | None = None, job_id: str | None = None
) -> bool:
    """Queue the job named `job` with `args` now, or at `at`. Returns False (and logs) when
    there is no queue or Redis is unavailable. With `job_id`, a job already scheduled under
    that id is kept, not duplicated."""
    if rt.queue is None:
        return False
    options = {
        "job_id": job_id,
        "unique": job_id is not None,
        "job_timeout": JOB_TIMEOUT_S,
        "result_ttl": 60,
        "failure_ttl": 7 * 86400,
    }
    try:
        if at is not None and at > rt.clock():
            rt.queue.enqueue_at(at, job, *args, **options)
        else:
            rt.queue.enqueue(job, *args, **options)
    except DuplicateJobError:
        return True
    except (RedisError, OSError) as exc:
        log.warning(
            "Redis unavailable (%s): %s will be run by the sweeper",
            exc.__class__.__name__,
            job.rsplit(".", 1)[-1],
        )
        return False
    return True


def schedule_step(rt: Runtime, incident_id: int, step: int, at: datetime) -> bool:
    """Schedule escalation step `step` of an incident for `at` (once per incident and step):
    an RQ job for its scheduler when `at` is ahead, or, when it is due now, an item on
    DUE_LIST that a worker's waker takes at once."""
    if at <= rt.clock():
        return _push(rt, DUE_LIST, [f"{incident_id}:{step}"])
    return enqueue(rt, STEP_JOB, incident_id, step, at=at, job_id=f"step-{incident_id}-{step}")


def schedule_send(
    rt: Runtime, kind: str, row_id: int, priority: int, at: datetime | None = None
) -> bool:
    """Ask a worker to send outbox row `row_id` of `kind` ("message" or "call"); `priority`
    orders the worker's sends (0 first: pages). Due now: an item on SEND_LIST that a
    worker's waker takes at once; later (a retry, a held digest): an RQ scheduled job."""
    if at is None or at <= rt.clock():
        return _push(rt, SEND_LIST, [f"{kind}:{row_id}:{priority}"])
    return enqueue(rt, SEND_JOB, kind, row_id, priority, at=at)


def schedule_checkin(rt: Runtime, checkin_id: int, at: datetime) -> bool:
    """Schedule check-in `checkin_id`'s deadline `at` (once per check-in and deadline: a
    standing check-in moved by a contact gets a new job, and `unschedule_checkin` drops the
    old one)."""
    return enqueue(rt, CHECKIN_JOB, checkin_id, at=at, job_id=_checkin_job_id(checkin_id, at))


def unschedule_checkin(rt: Runtime, checkin_id: int, at: datetime) -> None:
    """Drop the job of a deadline that no longer stands (the check-in was kept, moved,
    replaced or switched off): it would find nothing to do, but a thousand CHECKINs would
    leave a thousand such jobs in Redis for up to a week. Failing soft: a job left behind
    still does nothing when it runs."""
    if rt.queue is None:
        return
    job_id = _checkin_job_id(checkin_id, at)
    try:
        ScheduledJobRegistry(queue=rt.queue).remove(job_id, delete_job=True)
    except (RedisError, OSError, NoSuchJobError) as exc:
        log.debug("check-in job %s not dropped (%s)", job_id, exc.__class__.__name__)


def _checkin_job_id(checkin_id: int, at: datetime) -> str:
    return f"checkin-{checkin_id}-{int(at.timestamp() * 1000)}"


# Work asked of a worker on plain Redis lists instead of RQ jobs, where the wait matters: an
# RQ enqueue costs a webhook about four times the round trip of an RPUSH (0.66 vs 0.18 ms
# here), and RQ's worker loop took 4-10 ms (p50-p90) more before the job's function ran.
# Items name rows only; the work they ask for checks the database first, so an item that is
# repeated, stale or lost changes nothing (the sweeper does what a lost item asked for).
#
# Contacts a busy webhook stored and left for a worker to thread (routing.intake `defer`),
# as "kind:id": a worker's threader takes them in batches.
THREADING_LIST = "hotline:threading"
THREADING_ITEM = re.compile(r"(message|call):([0-9]{1,18})")
# Escalation steps due now (a new incident's first page, PASS, a caller's hold released), as
# "incident:step": a worker's waker hands them to its pool at once.
DUE_LIST = "hotline:due"
DUE_ITEM = re.compile(r"([0-9]{1,18}):([0-9]{1,6})")
# Outbox rows due now that a web process wrote (a stand-down, a relay, a confirmation), as
# "kind:id:priority": the same waker hands them to its pool, after the due steps it took.
SEND_LIST = "hotline:send"
SEND_ITEM = re.compile(r"(message|call):([0-9]{1,18}):([0-9])")


def wake_threading(rt: Runtime, kind: str, *row_ids: int) -> bool:
    """Ask a worker to thread stored contacts `row_ids`. False (logged) without Redis: the
    sweeper threads them after its grace."""
    return _push(rt, THREADING_LIST, [f"{kind}:{i}" for i in row_ids])


def _push(rt: Runtime, key: str, items: list[str]) -> bool:
    if rt.queue is None:
        return False
    try:
        rt.queue.connection.rpush(key, *items)
    except (RedisError, OSError) as exc:
        log.warning(
            "Redis unavailable (%s): the sweeper will see to %s %s",
            exc.__class__.__name__,
            key,
            " ".join(items),
        )
        return False
    return True


def take_threading(connection, wait_s: float, most: int) -> list[tuple[str, int]]:  # noqa: ANN001
    """Up to `most` contacts to thread, waiting up to `wait_s` for the first (0: not at all).
    Whoever can write to Redis can at most ask for a stored contact to be threaded, which
    the sweeper would do anyway."""
    raw = _pop(connection, [THREADING_LIST], wait_s, most)
    return [
        (kind, int(row_id))
        for kind, row_id in _parse(THREADING_LIST, THREADING_ITEM, raw[THREADING_LIST])
    ]


def take_now(
    connection,
    wait_s: float,  # noqa: ANN001
    most: int,
) -> tuple[list[tuple[int, int]], list[tuple[str, int, int]]]:
    """Up to `most` due steps `(incident_id, step)` and up to `most` sends due now
    `(kind, row_id, priority)`, waiting up to `wait_s` for the first of either (steps first:
    a page waits on its step). A step is run only when it is its open incident's due step
    (escalation.run_steps), a row sent only when its claim holds (outbox.claim)."""
    raw = _pop(connection, [DUE_LIST, SEND_LIST], wait_s, most)
    return (
        [
            (int(incident_id), int(step))
            for incident_id, step in _parse(DUE_LIST, DUE_ITEM, raw[DUE_LIST])
        ],
        [
            (kind, int(row_id), int(priority))
            for kind, row_id, priority in _parse(SEND_LIST, SEND_ITEM, raw[SEND_LIST])
        ],
    )


def _pop(connection, keys: list[str], wait_s: float, most: int) -> dict[str, list]:  # noqa: ANN001
    """Up to `most` raw items of each list in `keys`, waiting up to `wait_s` (0: not at
    all) for the first item of any of them (BLPOP looks at the lists in order)."""
    raw: dict[str, list] = {key: [] for key in keys}
    if wait_s > 0:
        first = connection.blpop(keys, timeout=wait_s)
        if first is None:
            return raw
        key = first[0].decode() if isinstance(first[0], bytes) else first[0]
        raw[key].append(first[1])
    pipe = connection.pipeline(transaction=False)
    wanted = [(key, most - len(items)) for key, items in raw.items() if most > len(items)]
    for key, count in wanted:
        pipe.lpop(key, count)
    for (key, _count), more in zip(wanted, pipe.execute(), strict=True):
        raw[key] += more or []
    return raw


def _parse(key: str, item: re.Pattern, raw: list) -> list[tuple[str, ...]]:
    """The groups of the items of list `key` that match `item`; items that are not ours
    are dropped with a warning."""
    items = []
    for value in raw:
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
        match = item.fullmatch(text)
        if match is None:
            log.warning("ignored an item of %s that is not ours: %r", key, text[:40])
            continue
        items.append(match.groups())
    return items
