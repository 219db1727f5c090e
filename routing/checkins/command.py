"""`CHECKIN n <when>` and `CHECKIN n OFF`: staff set, move and end a check-in."""

from __future__ import annotations

import logging

from sqlmodel import Session, select

from oncall import Staff, format_duration
from routing import jobqueue, outbox
from routing.checkins.common import ACTIVE, Refused
from routing.checkins.deadline import deadline
from routing.directory import staff_name, staff_phone
from routing.locks import lock_incident
from routing.parse_commands import Command
from routing.runtime import Runtime
from routing.tables import Checkin, Event, Incident
from routing.texts import local_time
from routing.uow import UnitOfWork, unit_of_work

log = logging.getLogger(__name__)


def checkin_command(rt: Runtime, staff: Staff, command: Command) -> str:
    """Set, replace or cancel (OFF) the check-in of incident `command.incident`. Returns the
    one confirming SMS, or the reason nothing was set."""
    number, spec = command.incident, command.checkin
    now, zone = rt.clock(), rt.rota.current().timezone
    if spec.off:
        return _off(rt, staff, number)
    try:
        due = deadline(spec, now, zone)
    except Refused as exc:
        return f"#{number}: no check-in set: {exc}. E.g. CHECKIN {number} 18:00 or 2h."
    with unit_of_work(rt) as uow:
        session = uow.session
        incident = lock_incident(session, number)
        refused = _cannot_check_in(session, incident, number)
        if refused:
            return refused
        previous = active_checkin(session, number)
        if previous is not None:
            previous.status, previous.ended_at = "replaced", now
            session.flush()  # one active check-in per incident: end the old one first
            drop_job(uow, previous)
        checkin = Checkin(
            incident_id=number,
            set_by=staff.id,
            notify=spec.notify,
            due_at=due,
            every_s=int(spec.every.total_seconds()) if spec.every else None,
            created_at=now,
        )
        session.add(checkin)
        session.flush()
        kind = f"every {format_duration(spec.every)}, first" if spec.every else "one-off"
        session.add(
            Event(
                incident_id=number,
                at=now,
                kind="checkin_set",
                actor=staff.id,
                detail=f"{kind} by {due.isoformat()}" + (", notify" if spec.notify else ""),
            )
        )
        uow.after_commit(lambda: jobqueue.schedule_checkin(rt, checkin.id, due))
        resolved = incident.status == "resolved"
        when = local_time(due, now, zone)
        _tell_taker_of(uow, incident, staff.id, f"set a check-in by {when}")
    text = (
        f"#{number}: standing check-in every {format_duration(spec.every)}, next by {when};"
        " each contact moves it."
        if spec.every
        else f"#{number}: check-in by {when}."
    )
    text += f" Missed: #{number} {'reopens and ' if resolved else ''}pages level 1."
    if spec.notify:
        text += " You get a note at each contact."
    if previous is not None:
        text += f" Replaces the one due {local_time(previous.due_at, now, zone)}."
    return text + f" CHECKIN {number} OFF cancels."


def _cannot_check_in(session: Session, incident: Incident | None, number: int) -> str | None:
    """Why no check-in can be set on `incident`, or None."""
    if incident is None:
        return f"No incident #{number}. STATUS lists open ones."
    if incident.purged_at is not None:
        return (
            f"#{number}: its personal data was erased, so no contact can be matched to "
            "the defender. No check-in set."
        )
    if incident.defender_enc is None:
        return (
            f"#{number}: the defender's number was withheld, so no contact can be matched "
            "to them. No check-in set."
        )
    if incident.status == "resolved":
        other = session.exec(
            select(Incident.id).where(
                Incident.defender_hash == incident.defender_hash, Incident.status != "resolved"
            )
        ).first()
        if other is not None:
            return (
                f"#{number} is resolved; the defender's open incident is #{other}: "
                f"CHECKIN {other} ... instead."
            )
    return None


def _off(rt: Runtime, staff: Staff, number: int) -> str:
    now, zone = rt.clock(), rt.rota.current().timezone
    with unit_of_work(rt) as uow:
        incident = lock_incident(uow.session, number)
        if incident is None:
            return f"No incident #{number}. STATUS lists open ones."
        checkin = active_checkin(uow.session, number)
        if checkin is None:
            return f"#{number} has no check-in. CHECKIN {number} 2h sets one."
        checkin.status, checkin.ended_at = "off", now
        drop_job(uow, checkin)
        uow.session.add(
            Event(
                incident_id=number,
                at=now,
                kind="checkin_off",
                actor=staff.id,
                detail=f"was due {checkin.due_at.isoformat()}",
            )
        )
        _tell_taker_of(uow, incident, staff.id, "switched its check-in off")
    return f"#{number}: check-in off (it was due {local_time(checkin.due_at, now, zone)})."


def _tell_taker_of(uow: UnitOfWork, incident: Incident, actor: str, what: str) -> None:
    """Whoever took `incident` hears that `actor`, someone else, did `what` (as for every
    command on a taken incident: routing.incidents.tell_taker, a sibling module)."""
    taker = incident.acknowledged_by
    phone = staff_phone(uow.rt, taker) if incident.status == "acknowledged" else None
    if phone and taker != actor:
        outbox.add_message(
            uow,
            to=phone,
            purpose="alert",
            incident_id=incident.id,
            staff_id=taker,
            body=f"#{incident.id}: {staff_name(uow.rt, actor)} {what}.",
        )


def active_checkin(session: Session, incident_id: int) -> Checkin | None:
    return session.exec(
        select(Checkin)
        .where(Checkin.incident_id == incident_id, Checkin.status == ACTIVE)
        .with_for_update()
    ).first()


def drop_job(uow: UnitOfWork, checkin: Checkin) -> None:
    """After the commit, drop the job of `checkin`'s deadline, which no longer stands."""
    rt, checkin_id, due = uow.rt, checkin.id, checkin.due_at
    uow.after_commit(lambda: jobqueue.unschedule_checkin(rt, checkin_id, due))
