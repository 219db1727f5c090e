"""The sweeper: runs from the database whatever the queue should have run by now.

Redis only carries jobs; a flushed queue, a Redis outage or a killed worker (whose scheduler
lock lives about a minute) would otherwise delay pages. Every worker sweeps every
SWEEP_INTERVAL; all work is claimed by conditional updates, so sweepers on many machines and
the queue never do a step twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, select

from routing.calls import due_calls, place_call
from routing.delivery import deliver_message, due_messages
from routing.escalation import run_step
from routing.incidents import thread_message
from routing.runtime import Runtime
from routing.tables import Incident, Message

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 0.5
STEP_GRACE = timedelta(seconds=0.3)  # the scheduled job normally runs it first
MESSAGE_GRACE = timedelta(seconds=3)
ORPHAN_GRACE = timedelta(seconds=3)


@dataclass
class SweepReport:
    steps: int = 0
    messages: int = 0
    threaded: int = 0


def sweep(rt: Runtime) -> SweepReport:
    """One pass. Returns how much overdue work this pass did itself."""
    now = rt.clock()
    report = SweepReport()
    with Session(rt.engine) as session:
        orphans = session.exec(
            select(Message.id).where(Message.direction == "in", Message.purpose == "defender",
                                     Message.status == "received",
                                     Message.created_at <= now - ORPHAN_GRACE).limit(200)
        ).all()
        steps = session.exec(
            select(Incident.id, Incident.next_step).where(
                Incident.status == "open", Incident.next_step_at <= now - STEP_GRACE
            ).order_by(Incident.next_step_at).limit(200)
        ).all()
        messages = due_messages(session, rt, MESSAGE_GRACE)
        calls = due_calls(session, rt, MESSAGE_GRACE)
        session.rollback()  # release the (SQLite) lock before doing the work
    for message_id in orphans:
        report.threaded += _guarded(thread_message, rt, message_id) is not None
    for incident_id, step in steps:
        report.steps += bool(_guarded(run_step, rt, incident_id, step))
    for message_id in messages:
        _guarded(deliver_message, rt, message_id)
        report.messages += 1
    for call_id in calls:  # notification calls and CALL bridges the queue lost
        _guarded(place_call, rt, call_id)
    if report.steps or report.threaded:
        log.warning("sweeper ran %d overdue step(s), threaded %d message(s)", report.steps,
                    report.threaded)
    return report


def _guarded(func, *args):  # noqa: ANN001, ANN202
    try:
        return func(*args)
    except Exception:
        log.exception("sweeper: %s%s failed; will retry", func.__name__, args[1:])
        return None
