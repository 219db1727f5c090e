"""The sweeper: runs from the database whatever the queue should have run by now.

Redis only carries jobs; a flushed queue, a Redis outage or a killed worker (whose scheduler
lock lives about a minute) would otherwise delay pages. Every worker sweeps every
SWEEP_INTERVAL; all work is claimed by conditional updates, so sweepers on many machines and
the queue never do a step twice.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from routing import checkins, intake, outbox, reminders, sending
from routing.escalation import STEPS_AT_ONCE, run_step, run_steps
from routing.runtime import Runtime
from routing.tables import UNTHREADED, Call, Checkin, Incident, Message

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 0.5
# A step is run by whichever comes first, its job or due-list item (routing.jobqueue) or a
# sweeper woken for its due time (hotline.worker): each claims it under the incident's lock,
# so it runs once.
STEP_GRACE = timedelta(0)
SEND_GRACE = timedelta(seconds=3)
ORPHAN_GRACE = timedelta(seconds=3)
BATCH = 200


@dataclass
class SweepReport:
    steps: int = 0
    sends: int = 0
    threaded: int = 0
    reminders: int = 0
    checkins: int = 0  # check-in deadlines run
    at: datetime | None = None  # the instant this pass looked: later work is not in it


def sweep(rt: Runtime, grace: timedelta | None = None) -> SweepReport:
    """One pass: thread stored-but-unrouted contacts, run overdue steps and check-in deadlines,
    send overdue rows.
    Returns how much overdue work this pass found. `grace` (default: each kind's own) is how
    long the queue gets to do the work first; zero runs everything that is due."""
    now = rt.clock()
    step_grace = STEP_GRACE if grace is None else grace
    send_grace = SEND_GRACE if grace is None else grace
    orphan_grace = ORPHAN_GRACE if grace is None else grace
    report = SweepReport(at=now)
    # first, so that the SMS a reminder writes is among this pass's sends
    report.reminders = _sweep_reminders(rt, now)
    with Session(rt.engine) as session:
        orphans = [
            ("message", i)
            for i in session.exec(
                select(Message.id)
                .where(
                    Message.direction == "in",
                    Message.purpose == "defender",
                    Message.status.in_(UNTHREADED),
                    Message.created_at <= now - orphan_grace,
                )
                .limit(BATCH)
            ).all()
        ] + [
            ("call", i)
            for i in session.exec(
                select(Call.id)
                .where(
                    Call.direction == "in",
                    Call.purpose == "defender",
                    Call.incident_id.is_(None),
                    Call.status == "ringing",
                    Call.created_at <= now - orphan_grace,
                )
                .limit(BATCH)
            ).all()
        ]
        steps = session.exec(
            select(Incident.id, Incident.next_step)
            .where(Incident.status == "open", Incident.next_step_at <= now - step_grace)
            .order_by(Incident.next_step_at)
            .limit(BATCH)
        ).all()
        sends = outbox.overdue(session, now, send_grace, BATCH)
        deadlines = checkins.overdue(session, now, step_grace, BATCH)
        session.rollback()  # release the (SQLite) lock before doing the work
    for kind, row_id in orphans:
        # in a worker, to its threader: a backlog of contacts to thread must not hold up
        # the due steps this pass hands over next
        report.threaded += thread_soon(rt, kind, row_id)
    for incident_id, step in steps:
        report.steps += 1
        run_soon(rt, incident_id, step)
    for checkin_id in deadlines:
        report.checkins += 1
        checkin_soon(rt, checkin_id)
    for kind, row_id, priority in sends:
        report.sends += 1
        send_soon(rt, kind, row_id, priority)
    if report.threaded:  # a contact stored but never routed: something failed on the way
        log.warning(
            "sweeper found %d contact(s) stored but not threaded; threading them", report.threaded
        )
    if report.steps:  # steps are the sweeper's own work too (STEP_GRACE): not a repair
        log.debug("sweeper handed over %d due step(s)", report.steps)
    if report.checkins:  # deadlines are the sweeper's own work too, like steps
        log.debug("sweeper handed over %d check-in deadline(s)", report.checkins)
    return report


def _sweep_reminders(rt: Runtime, now: datetime) -> int:
    """Plan shift reminders when the rota changed or the horizon moves on; send those due."""
    if rt.settings.reminder_before is None:
        return 0
    _guarded(reminders.plan_if_needed, rt)
    with Session(rt.engine) as session:
        due = reminders.due(session, now)
        session.rollback()
    return sum(bool(_guarded(reminders.send, rt, reminder_id)) for reminder_id in due)


# Between pages (outbox.PRIORITY 0) and everything else a worker sends (1 and up): a page
# already written leaves before the next due step runs, so in a burst of hundreds of steps
# the pages the first ones wrote are not held back behind the rest; and steps (which write
# pages) run before relays, stand-downs and digests.
STEP_PRIORITY = 0.5


def next_due(rt: Runtime, after: datetime | None = None) -> datetime | None:
    """The soonest time after `after` (default: now) at which an open incident's next step,
    a shift reminder or a check-in deadline falls due, or None. A sweeper passes the instant
    its last pass looked (`SweepReport.at`): what fell due by then was handed over, and what
    fell due while the pass ran is still to do (a time already past: sweep again at once)."""
    now = after or rt.clock()
    with Session(rt.engine) as session:
        due = session.exec(
            select(func.min(Incident.next_step_at)).where(
                Incident.status == "open", Incident.next_step_at > now
            )
        ).one()
        reminder = reminders.next_due(session, now)
        deadline = session.exec(
            select(func.min(Checkin.due_at)).where(
                Checkin.status == checkins.ACTIVE, Checkin.due_at > now
            )
        ).one()
        session.rollback()
    return min((t for t in (due, reminder, deadline) if t is not None), default=None)


def run_soon(rt: Runtime, incident_id: int, step: int) -> None:
    """Run an escalation step in the worker's pool, or here when there is none. In the pool,
    steps queued together run in batches (escalation.run_steps)."""
    if rt.pool is None:
        _guarded(run_step, rt, incident_id, step)
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
        return _guarded(intake.thread, rt, kind, row_id) is not None
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
        _guarded(checkins.miss, rt, checkin_id)
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
        _guarded(sending.deliver, rt, kind, row_id, claimed)
    else:
        rt.pool.submit(priority, (kind, row_id), lambda: sending.deliver(rt, kind, row_id, claimed))


def _guarded(func, *args):  # noqa: ANN001, ANN202
    try:
        return func(*args)
    except Exception:
        log.exception("sweeper: %s%s failed; will retry", func.__name__, args[1:])
        return None
