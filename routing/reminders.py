"""Shift reminders: one SMS to each staff member before each of their shifts, and one when a
rota change moves their next shift.

Reminders are deadlines like escalation steps, kept in the database (`ShiftReminder`):

- `plan` looks HORIZON ahead in the live rota (oncall.timeline) and writes a row per shift
  (unique per kind, staff, rotation and shift start: planned once, however many workers plan).
  A shift it has not seen that starts before the previous plan's reach (`ReminderPlan`) is
  one the rota changed: when it moves someone's next shift, a "change" row tells them once
  (a "cancel" row when their next shift went and none replaces it). Shifts that went away are
  cancelled before their reminder leaves.
- `send_due` claims each due row with a conditional update and writes its SMS to the outbox
  in the same transaction. The RQ job `routing.tasks.reminder_job` does it at the due time;
  the sweeper does whatever the queue lost. At send time the shift must still be in the live
  rota, the person must not have `remind: false`, nor have texted STOP
  (routing.staffstate.opted_out).

One module over 300 lines on purpose: planning, sending and the change notices share the rows
they claim and the rule that a shift must still be live.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

import oncall
from oncall.timeline import Shift, shifts_starting
from routing import jobqueue, outbox
from routing.runtime import Runtime
from routing.staffstate import opted_out
from routing.tables import ReminderPlan, ShiftReminder
from routing.uow import UnitOfWork, unit_of_work

log = logging.getLogger(__name__)

HORIZON = timedelta(days=7)  # a change this far ahead is told; reminders are planned this far
REPLAN_EVERY = timedelta(minutes=10)  # between rota changes, how often the horizon moves on
REMINDER_JOB = "routing.tasks.reminder_job"
PLAN_ID = 1
BATCH = 200


@dataclass(frozen=True)
class PlanReport:
    planned: int = 0
    cancelled: int = 0
    told: int = 0  # change and cancel notices written


def fingerprint(rota: oncall.Rota) -> str:
    """A digest of everything the rota says (its repr is plain values), to notice a change."""
    return hashlib.sha256(repr(rota).encode()).hexdigest()[:32]


def plan_if_needed(rt: Runtime) -> PlanReport | None:
    """Plan when the rota changed or the horizon is due to move on; None when nothing was
    needed. Cheap otherwise: one small read."""
    if rt.settings.reminder_before is None:
        return None
    rota, now = rt.rota.current(), rt.clock()
    with Session(rt.engine) as session:
        row = session.exec(
            select(ReminderPlan.rota_fingerprint, ReminderPlan.planned_to).where(
                ReminderPlan.id == PLAN_ID
            )
        ).first()
        session.rollback()
    if row is not None and row[0] == fingerprint(rota) and row[1] >= now + HORIZON - REPLAN_EVERY:
        return None
    return plan(rt)


def plan(rt: Runtime) -> PlanReport:
    """Bring the planned reminders in line with the live rota for the next HORIZON.

    Serialised on the `ReminderPlan` row, so planners on many machines take turns; the unique
    key catches anything else. Jobs for the new rows are queued after the commit.
    """
    rota, before = rt.rota.current(), rt.settings.reminder_before
    with unit_of_work(rt) as uow:
        session, now = uow.session, rt.clock()
        mark = _lock_plan(session, now)
        reach = mark.planned_to if mark.rota_fingerprint else None  # None: the first plan
        wanted = {_key("reminder", s): s for s in shifts_starting(rota, now, now + HORIZON)}
        rows = session.exec(
            select(ShiftReminder)
            .where(ShiftReminder.kind == "reminder", ShiftReminder.shift_start > now)
            .with_for_update()
        ).all()
        have = {_row_key(r): r for r in rows}
        next_before = _earliest(
            (r.staff_id, r.rotation, r.shift_start, r)
            for r in rows
            if r.status != "cancelled" and _within(r.shift_start, reach)
        )
        next_after = _earliest(
            (s.staff, s.rotation, s.start, s) for s in wanted.values() if _within(s.start, reach)
        )
        planned = cancelled = 0
        fresh: list[ShiftReminder] = []
        for key, shift in wanted.items():
            row = have.get(key)
            if row is None:
                row = _row("reminder", shift, shift.start - before, now)
                session.add(row)
                fresh.append(row)
                planned += 1
            elif row.status in ("planned", "cancelled"):
                row.status, row.updated_at = "planned", now
                row.shift_end, row.handover = shift.end, shift.handover
        for key, row in have.items():
            if key not in wanted and row.status == "planned":
                row.status, row.updated_at = "cancelled", now
                cancelled += 1
        session.flush()
        if reach is not None:
            fresh += _tell_changes(uow, next_before, next_after, now)
        mark.planned_to, mark.planned_at = now + HORIZON, now
        mark.rota_fingerprint = fingerprint(rota)
        for row in fresh:
            if row.status == "planned":
                uow.after_commit(lambda i=row.id, at=row.due_at: schedule(rt, i, at))
        told = len(fresh) - planned
    if planned or cancelled or told:
        log.info(
            "reminders planned: %d new, %d cancelled, %d change notices", planned, cancelled, told
        )
    return PlanReport(planned, cancelled, told)


def schedule(rt: Runtime, reminder_id: int, at: datetime) -> bool:
    """Queue the reminder's job for its due time (once per reminder)."""
    return jobqueue.enqueue(
        rt,
        REMINDER_JOB,
        reminder_id,
        at=at,
        job_id=f"reminder-{reminder_id}" if at > rt.clock() else None,
    )


def send(rt: Runtime, reminder_id: int) -> bool:
    """Send reminder `reminder_id` if it is planned and due: its SMS goes into the outbox in
    the transaction that marks it sent. Returns True when this call sent it; False when there
    was nothing to do (not due, already done, cancelled, skipped or expired). Idempotent."""
    rota = rt.rota.current()
    with unit_of_work(rt) as uow:
        session, now = uow.session, rt.clock()
        row = session.exec(
            select(ShiftReminder).where(ShiftReminder.id == reminder_id).with_for_update()
        ).first()
        if row is None or row.status != "planned" or row.due_at > now:
            return False
        person = rota.staff.get(row.staff_id)
        outcome = _blocked(session, rota, row, person, now)
        row.updated_at = now
        if outcome is not None:
            row.status = outcome
            return False
        message = outbox.add_message(
            uow,
            to=person.phone,
            body=reminder_text(rota, row),
            purpose="reminder",
            staff_id=row.staff_id,
        )
        row.status, row.message_id = "sent", message.id
    return True


def due(session: Session, now: datetime, limit: int = BATCH) -> list[int]:
    """Planned reminders due by `now`, oldest first: what the sweeper sends."""
    return list(
        session.exec(
            select(ShiftReminder.id)
            .where(ShiftReminder.status == "planned", ShiftReminder.due_at <= now)
            .order_by(ShiftReminder.due_at)
            .limit(limit)
        ).all()
    )


def next_due(session: Session, now: datetime) -> datetime | None:
    """The soonest due time still to come of a planned reminder, or None."""
    return session.exec(
        select(func.min(ShiftReminder.due_at)).where(
            ShiftReminder.status == "planned", ShiftReminder.due_at > now
        )
    ).one()


def reminder_text(rota: oncall.Rota, row: ShiftReminder) -> str:
    """The SMS: which rotation, from when to when in the rota's zone, who hands over."""
    zone = rota.timezone
    start, end = row.shift_start.astimezone(zone), row.shift_end.astimezone(zone)
    span = f"{start:%a %d %b %H:%M} to {end:%a %d %b %H:%M} ({zone})"
    handover = rota.staff.get(row.handover or "")
    taking = f", taking over from {handover.name}" if handover else ""
    if row.kind == "cancel":
        return (
            f"Hotline rota change: your {row.rotation} shift {span} is off. No other "
            f"shift for you in the next {HORIZON.days} days."
        )
    if row.kind == "change":
        text = f"Hotline rota change: your next shift is {row.rotation}, {span}{taking}"
    else:
        text = f"Hotline: you are on call for {row.rotation} {span}{taking}"
    return text if text.endswith(".") else text + "."  # "Ben O." ends the sentence already


# --- inside ---------------------------------------------------------------------------------


def _lock_plan(session: Session, now: datetime) -> ReminderPlan:
    query = select(ReminderPlan).where(ReminderPlan.id == PLAN_ID).with_for_update()
    mark = session.exec(query).first()
    if mark is None:
        try:
            with session.begin_nested():
                # an empty fingerprint marks the first plan: nothing to compare with yet
                session.add(
                    ReminderPlan(id=PLAN_ID, planned_to=now, rota_fingerprint="", planned_at=now)
                )
        except IntegrityError:
            pass  # another planner made it first
        mark = session.exec(query).one()
    return mark


def _key(kind: str, shift: Shift) -> tuple[str, str, str, datetime]:
    return kind, shift.staff, shift.rotation, shift.start


def _row_key(row: ShiftReminder) -> tuple[str, str, str, datetime]:
    return row.kind, row.staff_id, row.rotation, row.shift_start


def _within(start: datetime, reach: datetime | None) -> bool:
    """Shifts the previous plan already covered: only among them is a difference a change."""
    return reach is not None and start < reach


def _earliest(items) -> dict[str, tuple]:  # noqa: ANN001
    """Per staff id, the (rotation, start, item) of their earliest shift."""
    found: dict[str, tuple] = {}
    for staff, rotation, start, item in items:
        if staff not in found or (start, rotation) < (found[staff][1], found[staff][0]):
            found[staff] = (rotation, start, item)
    return found


def _row(kind: str, shift: Shift, due_at: datetime, now: datetime) -> ShiftReminder:
    return ShiftReminder(
        kind=kind,
        staff_id=shift.staff,
        rotation=shift.rotation,
        shift_start=shift.start,
        shift_end=shift.end,
        handover=shift.handover,
        due_at=due_at,
        created_at=now,
        updated_at=now,
    )


def _tell_changes(
    uow: UnitOfWork, before: dict[str, tuple], after: dict[str, tuple], now: datetime
) -> list[ShiftReminder]:
    """A notice for each person whose next shift moved. Returns the notices written."""
    session, told = uow.session, []
    for staff in sorted(set(before) | set(after)):
        old, new = before.get(staff), after.get(staff)
        if old is not None and new is not None and old[:2] == new[:2]:
            continue
        if new is not None:
            shift: Shift = new[2]
            notice = _row("change", shift, now, now)
            reminder = session.exec(
                select(ShiftReminder).where(
                    ShiftReminder.kind == "reminder",
                    ShiftReminder.staff_id == staff,
                    ShiftReminder.rotation == shift.rotation,
                    ShiftReminder.shift_start == shift.start,
                )
            ).first()
        else:
            gone: ShiftReminder = old[2]
            notice = ShiftReminder(
                kind="cancel",
                staff_id=staff,
                rotation=gone.rotation,
                shift_start=gone.shift_start,
                shift_end=gone.shift_end,
                due_at=now,
                created_at=now,
                updated_at=now,
            )
            reminder = None
        try:
            with session.begin_nested():
                session.add(notice)
        except IntegrityError:
            continue  # told already: the same change was planned before
        told.append(notice)
        if reminder is not None and reminder.status == "planned" and reminder.due_at <= now:
            # the notice says all a reminder would, at the same moment: one SMS, not two
            reminder.status, reminder.updated_at = "folded", now
    return told


def _blocked(
    session: Session,
    rota: oncall.Rota,
    row: ShiftReminder,
    person: oncall.Staff | None,
    now: datetime,
) -> str | None:
    """Why the row must not be sent now (its new status), or None to send it."""
    if now >= row.shift_end:
        return "expired"
    if row.kind == "reminder" and (
        row.rotation not in rota.rotations
        or oncall.on_call(rota, row.rotation, row.shift_start) != row.staff_id
    ):
        return "cancelled"  # the rota changed since planning; the next plan tells them
    if person is None or not person.remind:
        return "skipped"
    if opted_out(session, [row.staff_id]):
        return "skipped"  # STOP: the carrier refuses our SMS, and they asked for none
    return None
