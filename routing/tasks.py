"""RQ entry points. Jobs take ids, find the worker's runtime, and hand the work to its pool.

Named by their dotted path in routing.jobqueue, so nothing below imports this module.
"""

from __future__ import annotations

from routing import reminders
from routing import runtime as runtime_module
from routing.handover import checkin_soon, run_soon, send_soon


def run_step_job(incident_id: int, step: int) -> None:
    run_soon(runtime_module.current(), incident_id, step)


def send_job(kind: str, row_id: int, priority: int) -> None:
    send_soon(runtime_module.current(), kind, row_id, priority)


def reminder_job(reminder_id: int) -> None:
    reminders.send(runtime_module.current(), reminder_id)


def checkin_job(checkin_id: int) -> None:
    checkin_soon(runtime_module.current(), checkin_id)
