"""A defender's contact under a check-in (the intake's hook): kept, moved, or a duress alarm."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, tzinfo

from sqlmodel import Session, select

import oncall
from routing import jobqueue, outbox
from routing.checkins.alarm import alarm_body, raise_alarm
from routing.checkins.command import active_checkin, drop_job
from routing.checkins.common import ACTIVE
from routing.checkins.deadline import has_duress_word
from routing.directory import staff_phone
from routing.tables import Checkin, Event, Incident, Message
from routing.texts import CHANNEL_LABEL, local_time
from routing.uow import UnitOfWork

log = logging.getLogger(__name__)
NOTE_EVERY = timedelta(minutes=10)  # at most one check-in note per incident and person


def on_contact(
    uow: UnitOfWork,
    incident: Incident,
    hashes: list[str],
    *,
    kind: str,
    channel: str,
    body: str,
    opened: bool,
    schedule: bool = True,
) -> None:
    """A contact of the person behind `hashes` joined `incident` (in `uow`, its row locked).

    `schedule` False keeps Redis out of it, as for the intake (the sweeper runs what is due).
    Their active check-ins follow them to `incident` when it is a new one. A message holding
    a duress word raises the DURESS alarm on `incident` and leaves the deadlines as they are;
    any other contact before a deadline keeps that check-in (a one-off ends, a standing one
    moves), records `checkin_kept` and, when asked for, notes it to whoever set it. A contact
    after the deadline keeps nothing: the miss stands.
    """
    rt, session = uow.rt, uow.session
    now = incident.last_inbound_at or rt.clock()  # the contact's own instant
    with session.no_autoflush:  # what is pending (events, the contact's row) is not asked
        rows = session.exec(
            select(Checkin)
            .join(Incident, Incident.id == Checkin.incident_id)
            .where(Checkin.status == ACTIVE, Incident.defender_hash.in_(hashes))
            .order_by(Checkin.id)
            .with_for_update(of=Checkin)
        ).all()
    if not rows:
        return
    how = f"{channel} {'message' if kind == 'message' else 'call'}"
    for checkin in rows:
        if checkin.incident_id != incident.id:
            _move(session, checkin, incident.id, now)
    if kind == "message" and has_duress_word(body, rt.settings.duress_words):
        taker = raise_alarm(
            uow, incident, "duress", f"a duress word in an {how}", schedule=schedule and not opened
        )
        if taker is not None:
            _tell_taker(uow, incident, taker)
        return
    zone = rt.rota.current().timezone
    for checkin in rows:
        if checkin.status == ACTIVE and checkin.due_at > now:  # else `miss` runs it soon
            _keep(uow, checkin, how, channel, now, zone, schedule)


def _keep(
    uow: UnitOfWork,
    checkin: Checkin,
    how: str,
    channel: str,
    now: datetime,
    zone: tzinfo,
    schedule: bool,
) -> None:
    """A contact before the deadline keeps `checkin`: a one-off ends, a standing one moves its
    deadline on; logged, and noted to whoever set it when they asked (`notify`)."""
    rt = uow.rt
    drop_job(uow, checkin)  # the deadline it had no longer stands
    if checkin.every_s:
        checkin.due_at = now + timedelta(seconds=checkin.every_s)
        detail, note = (
            f"{how}; next by {checkin.due_at.isoformat()}",
            f"Next by {local_time(checkin.due_at, now, zone)}.",
        )
        if schedule:  # else Redis is kept out of it (the fallback URL): the sweeper runs it
            due, checkin_id = checkin.due_at, checkin.id
            uow.after_commit(lambda: jobqueue.schedule_checkin(rt, checkin_id, due))
    else:
        checkin.status, checkin.ended_at = "kept", now
        detail, note = f"{how}; check-in done", "Check-in done."
    uow.session.add(
        Event(
            incident_id=checkin.incident_id,
            at=now,
            kind="checkin_kept",
            actor="defender",
            detail=detail,
        )
    )
    phone = staff_phone(rt, checkin.set_by) if checkin.notify else None
    if phone and not _noted_lately(uow.session, checkin, now):
        label = CHANNEL_LABEL.get(channel, channel)
        outbox.add_message(
            uow,
            to=phone,
            purpose="note",
            incident_id=checkin.incident_id,
            staff_id=checkin.set_by,
            body=f"#{checkin.incident_id}: the defender checked in "
            f"({label}, {local_time(now, now, zone)}). {note}",
        )


def _move(session: Session, checkin: Checkin, to: int, now: datetime) -> None:
    """A contact opened a new incident (theirs was resolved): the check-in goes with them, so
    a miss reopens the incident they are in, never a second one."""
    old = checkin.incident_id
    if active_checkin(session, to) is not None:
        checkin.status, checkin.ended_at = "replaced", now
        session.add(
            Event(
                incident_id=old,
                at=now,
                kind="checkin_off",
                actor="system",
                detail=f"#{to} has its own check-in",
            )
        )
        return
    checkin.incident_id = to
    session.add(
        Event(
            incident_id=old,
            at=now,
            kind="checkin_moved",
            actor="system",
            detail=f"to #{to}, the defender's new incident",
        )
    )
    session.add(
        Event(
            incident_id=to,
            at=now,
            kind="checkin_moved",
            actor="system",
            detail=f"from #{old}; due {checkin.due_at.isoformat()}",
        )
    )


def _tell_taker(uow: UnitOfWork, incident: Incident, taker: str) -> None:
    """The taker of an incident that raised DURESS hears of it at once, unless level 1's page
    reaches them anyway."""
    rt = uow.rt
    level1 = oncall.escalation_step(rt.rota.current(), rt.clock(), 0, incident.language)
    phone = staff_phone(rt, taker)
    if phone and taker not in {person.id for person in (level1.staff if level1 else ())}:
        outbox.add_message(
            uow,
            to=phone,
            purpose="alert",
            incident_id=incident.id,
            staff_id=taker,
            body=alarm_body(rt, uow.session, incident, False),
        )


def _noted_lately(session: Session, checkin: Checkin, now: datetime) -> bool:
    """Whether whoever set `checkin` had a check-in note on its incident within NOTE_EVERY: a
    defender writing 300 times a minute makes one note, not 300 (every contact is logged)."""
    with session.no_autoflush:
        return (
            session.exec(
                select(Message.id).where(
                    Message.purpose == "note",
                    Message.incident_id == checkin.incident_id,
                    Message.staff_id == checkin.set_by,
                    Message.created_at > now - NOTE_EVERY,
                )
            ).first()
            is not None
        )
