"""The alarm: a missed check-in or a duress word reopens the incident and pages level 1 first,
`MISSED CHECK-IN #n` / `DURESS #n`."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, select

from routing.checkins.common import ACTIVE, ALARM_ENDS, ALARMS
from routing.datakeys import unseal
from routing.locks import lock_incident
from routing.masking import show_number
from routing.runtime import Runtime
from routing.tables import Acknowledgement, Checkin, Event, Incident, Message
from routing.texts import alarm_text, local_time
from routing.uow import UnitOfWork, unit_of_work

log = logging.getLogger(__name__)


def raise_alarm(
    uow: UnitOfWork, incident: Incident, kind: str, detail: str, *, schedule: bool = True
) -> str | None:
    """Record alarm `kind` ("checkin_missed" or "duress") on `incident` (locked in `uow`) and
    restart its escalation: resolved or acknowledged become open again, the cursor goes to
    step 0 due now, so level 1 is paged (with `alarm_page`'s text) and the chain runs as for
    a new incident. Returns the staff id of the taker it had, or None."""
    session, now = uow.session, uow.rt.clock()
    was, taker = incident.status, None
    session.add(Event(incident_id=incident.id, at=now, kind=kind, actor="system", detail=detail))
    if was == "acknowledged":
        taker = incident.acknowledged_by
        incident.acknowledged_at = incident.acknowledged_by = None
        # the next ACK takes it afresh: the Acknowledgement's key decides that race again
        session.exec(delete(Acknowledgement).where(Acknowledgement.incident_id == incident.id))
    if was == "resolved":
        incident.resolved_at = incident.resolved_by = None
    if was != "open":
        session.add(
            Event(
                incident_id=incident.id,
                at=now,
                kind="reopened",
                actor="system",
                detail=f"was {was}; {kind}",
            )
        )
    incident.status, incident.next_step, incident.next_step_at = "open", 0, now
    session.flush()
    if schedule:
        uow.schedule_step(incident.id, 0, now)
    return taker


def miss(rt: Runtime, checkin_id: int) -> bool:
    """Run check-in `checkin_id`'s deadline if it is active and due: it ends `missed` and its
    incident raises MISSED CHECK-IN. Returns True when this call did it, False when there was
    nothing to do (kept, off, moved on, already run, or not yet due). Idempotent."""
    now = rt.clock()
    with unit_of_work(rt) as uow:
        session = uow.session
        incident_id = session.exec(
            select(Checkin.incident_id).where(Checkin.id == checkin_id)
        ).first()
        if incident_id is None:
            return False
        incident = lock_incident(session, incident_id)  # first, as every writer of it does
        checkin = session.exec(
            select(Checkin).where(Checkin.id == checkin_id).with_for_update()
        ).first()
        if (
            checkin is None
            or checkin.status != ACTIVE
            or checkin.incident_id != incident_id
            or checkin.due_at > now
        ):
            return False
        checkin.status, checkin.ended_at = "missed", now
        last = incident.last_inbound_at
        detail = (
            f"due {checkin.due_at.isoformat()} (set by {checkin.set_by}); last contact "
            f"{last.isoformat() if last else 'none'}"
        )
        target = incident
        if incident.status == "resolved":
            # only one unresolved incident per person: raise it there (a contact moves a
            # check-in to its new incident, so this is the rare leftover case)
            other = session.exec(
                select(Incident)
                .where(
                    Incident.defender_hash == incident.defender_hash, Incident.status != "resolved"
                )
                .with_for_update()
            ).first()
            if other is not None:
                session.add(
                    Event(
                        incident_id=incident.id,
                        at=now,
                        kind="checkin_missed",
                        actor="system",
                        detail=f"{detail}; raised on #{other.id}",
                    )
                )
                target = other
        raise_alarm(uow, target, "checkin_missed", detail)
    log.warning("check-in %s of incident %s missed: paging", checkin_id, target.id)
    return True


def overdue(session: Session, now: datetime, grace: timedelta, limit: int) -> list[int]:
    """Active check-ins whose deadline passed more than `grace` ago, oldest first."""
    return list(
        session.exec(
            select(Checkin.id)
            .where(Checkin.status == ACTIVE, Checkin.due_at <= now - grace)
            .order_by(Checkin.due_at)
            .limit(limit)
        ).all()
    )


def alarms_standing(session: Session, incident_ids: list[int]) -> dict[int, str]:
    """The alarm (MISSED CHECK-IN `checkin_missed`, or `duress`) of each of `incident_ids` that
    has one nobody has taken yet, i.e. until someone acknowledges or resolves it. Their pages
    are alarms: never folded into a digest (routing.escalation), with the alarm's text."""
    rows = session.exec(
        select(Event.incident_id, Event.kind)
        .where(Event.incident_id.in_(incident_ids), Event.kind.in_(ALARMS + ALARM_ENDS))
        .order_by(Event.id)
    ).all()
    latest = dict(rows)  # in event order: each incident's last one wins
    return {incident_id: kind for incident_id, kind in latest.items() if kind in ALARMS}


def alarm_page(rt: Runtime, session: Session, incident: Incident, fallback: bool) -> str | None:
    """The page text while `incident`'s alarm stands (`alarms_standing`); None when there is
    none (a normal page)."""
    kind = alarms_standing(session, [incident.id]).get(incident.id)
    return None if kind is None else alarm_body(rt, session, incident, fallback, kind)


def alarm_body(
    rt: Runtime, session: Session, incident: Incident, fallback: bool, kind: str = "duress"
) -> str:
    sender = show_number(unseal(rt.vault, incident, "defender"), rt.settings.reveal_numbers)
    if kind == "duress":
        last = session.exec(
            select(Message)
            .where(Message.incident_id == incident.id, Message.direction == "in")
            .order_by(Message.id.desc())
            .limit(1)
        ).first()
        words = (unseal(rt.vault, last, "body") or "") if last else ""
        return alarm_text(
            "duress",
            incident.id,
            last.channel if last else incident.channel,
            sender,
            words=words,
            fallback=fallback,
        )
    seen = incident.last_inbound_at
    zone = rt.rota.current().timezone
    return alarm_text(
        "missed",
        incident.id,
        incident.channel,
        sender,
        fallback=fallback,
        last_contact=local_time(seen, rt.clock(), zone) if seen else "",
    )
