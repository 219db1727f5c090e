"""Handing work over to the worker: to its pool (steps, sends, check-in deadlines, most urgent
first) or its threader (stored contacts), or, in a process without them (a web process, a
test, the sweeper of `hotline run`'s tests), running it right here.

The RQ jobs (routing.tasks), the sweeper, and the worker's waker (hotline.worker) all hand
work over through these, so a step is batched and prioritised the same whichever found it.
"""

from __future__ import annotations

import logging
import time

from routing import checkins, intake, outbox, sending
from routing.escalation import STEPS_AT_ONCE, run_step, run_steps
from routing.runtime import Runtime

log = logging.getLogger(__name__)

# Between pages (outbox.PRIORITY 0) and everything else a worker sends (1 and up): a page
# already written leaves before the next due step runs, so in a burst of hundreds of steps
# the pages the first ones wrote are not held back behind the rest; and steps (which write
# pages) run before relays, stand-downs and digests.
STEP_PRIORITY = 0.5


def run_soon(rt: Runtime, incident_id: int, step: int) -> None:
    """Run an escalation step in the worker's pool, or here when there is none. In the pool,
    steps queued together run in batches (escalation.run_steps)."""
    if rt.pool is None:
        guarded(run_step, rt, incident_id, step)
    else:
        rt.pool.submit_batch(
            STEP_PRIORITY,
            ("step", incident_id, step),
            "steps",
            lambda keys: run_steps(rt, [(i, s) for _, i, s in keys]),
            STEPS_AT_ONCE,
        )


# How many stored contacts a worker's threader threads in one transaction
# (intake.thread_batch), and on SQLite, where the web and the worker share one write lock:
# a batch holds it about 10 ms a contact, so the threader takes two at a time and then leaves
# the lock free for a moment. Measured in a 10,000-message surge, batches of 10 held it for
# 100 ms and more at a time: the webhooks' stores waited behind each one, so their threads
# were all taken and the answers queued for seconds.
THREADS_AT_ONCE = 10
SQLITE_THREADS_AT_ONCE = 2
SQLITE_YIELD_S = 0.005


def thread_soon(rt: Runtime, kind: str, row_id: int) -> bool:
    """Thread a stored contact by the worker's threader (hotline.worker), which threads one
    batch at a time beside the pool, or here when there is none. False when threading it here
    failed (logged; the next sweep tries again)."""
    if rt.thread_later is None:
        return guarded(intake.thread, rt, kind, row_id) is not None
    rt.thread_later(kind, row_id)
    return True


def thread_backlog(rt: Runtime, keys: list[tuple[str, int]]) -> None:
    """A threader's batch: thread `keys` in one transaction; on SQLite, two at a time, each
    followed by a pause with the write lock free."""
    if rt.engine.dialect.name != "sqlite":
        intake.thread_batch(rt, keys)
        return
    for start in range(0, len(keys), SQLITE_THREADS_AT_ONCE):
        intake.thread_batch(rt, keys[start : start + SQLITE_THREADS_AT_ONCE])
        time.sleep(SQLITE_YIELD_S)


def checkin_soon(rt: Runtime, checkin_id: int) -> None:
    """Run a check-in's deadline (routing.checkins.miss) in the worker's pool, or here. It
    goes first, like a step: a miss is a page waiting to be written."""
    if rt.pool is None:
        guarded(checkins.miss, rt, checkin_id)
    else:
        rt.pool.submit(
            STEP_PRIORITY, ("checkin", checkin_id), lambda: checkins.miss(rt, checkin_id)
        )


def send_soon(
    rt: Runtime, kind: str, row_id: int, priority: int, claimed: outbox.Claimed | None = None
) -> None:
    """Send an outbox row through the worker's pool, or here when there is none
    (`claimed`: as sending.deliver)."""
    if rt.pool is None:
        guarded(sending.deliver, rt, kind, row_id, claimed)
    else:
        rt.pool.submit(priority, (kind, row_id), lambda: sending.deliver(rt, kind, row_id, claimed))


def guarded(func, *args):  # noqa: ANN001, ANN202
    try:
        return func(*args)
    except Exception:
        log.exception("%s%s failed; the sweeper will retry", func.__name__, args[1:])
        return None
