"""The sweeper: runs from the database whatever the queue should have run by now.

Redis only carries jobs; a flushed queue, a Redis outage or a killed worker (whose scheduler
lock lives about a minute) would otherwise delay pages. Every worker sweeps every
SWEEP_INTERVAL; all work is claimed by conditional updates, so sweepers on many machines and
the queue never do a step twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from routing import checkins, outbox, reminders
from routing.handover import checkin_soon, guarded, run_soon, send_soon, thread_soon
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
        orphans = _orphans(session, now - orphan_grace)
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


def _orphans(session: Session, before: datetime) -> list[tuple[str, int]]:
    """Defender contacts stored before `before` and never threaded: messages, and calls whose
    answer never came back (a failure on the way, or a worker that died holding them)."""
    messages = session.exec(
        select(Message.id)
        .where(
            Message.direction == "in",
            Message.purpose == "defender",
            Message.status.in_(UNTHREADED),
            Message.created_at <= before,
        )
        .limit(BATCH)
    ).all()
    calls = session.exec(
        select(Call.id)
        .where(
            Call.direction == "in",
            Call.purpose == "defender",
            Call.incident_id.is_(None),
            Call.status == "ringing",
            Call.created_at <= before,
        )
        .limit(BATCH)
    ).all()
    return [("message", i) for i in messages] + [("call", i) for i in calls]


def _sweep_reminders(rt: Runtime, now: datetime) -> int:
    """Plan shift reminders when the rota changed or the horizon moves on; send those due."""
    if rt.settings.reminder_before is None:
        return 0
    guarded(reminders.plan_if_needed, rt)
    with Session(rt.engine) as session:
        due = reminders.due(session, now)
        session.rollback()
    return sum(bool(guarded(reminders.send, rt, reminder_id)) for reminder_id in due)


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
