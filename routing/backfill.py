"""After an outage: what reached Twilio while this server was down, taken in as if it had come.

While our server is down, Twilio keeps every message and call it took for our numbers (and
the fallback flow answers them: `hotline twilio fallback publish`). A backfill lists them
from Twilio's API for the gap, and stores each one we do not have, by its sid (so running it
twice changes nothing): a defender's through the intake (`intake.take_late`: their incident
is marked "arrived while the server was down" and paged with that mark), a staff member's
command only for the log (it is not carried out hours later). A call a staff phone answered
through the fallback flow is recorded with who answered, from the call's <Dial> legs.

Listing is network work and runs before, and outside, any transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, select

from routing import intake
from routing.identity import party
from routing.intake import TextMessage, VoiceCall
from routing.messages import staff_sender
from routing.notifier import Arrival
from routing.runtime import Runtime
from routing.tables import Call, Event, Message
from routing.uow import unit_of_work

log = logging.getLogger(__name__)
ANSWERED_IN_FALLBACK = "answered_in_fallback"


@dataclass
class Backfilled:
    """What one backfill found and did."""

    listed: int = 0  # messages and calls Twilio took for our numbers in the window
    known: int = 0  # of those, already stored
    stored: list[str] = field(default_factory=list)  # sids taken in now
    incidents: set[int] = field(default_factory=set)  # incidents they opened or joined
    failed: int = 0  # could not be stored (logged; the next backfill tries them again)


def backfill(rt: Runtime, since: datetime, until: datetime | None = None) -> Backfilled:
    """Take in every message and call that reached our numbers from `since` to `until`
    (default: now) and is not stored yet. Raises routing.notifier.SendError when Twilio
    cannot be asked."""
    report = Backfilled()
    numbers = [rt.settings.number] + ([rt.settings.whatsapp] if rt.settings.whatsapp else [])
    arrivals = [
        a
        for number in numbers
        for a in rt.notifier.arrivals(to=number, since=since)
        if until is None or a.at < until
    ]
    report.listed = len(arrivals)
    known = _stored_sids(rt, [a.sid for a in arrivals])
    for arrival in sorted(arrivals, key=lambda a: a.at):
        if arrival.sid in known:
            report.known += 1
            continue
        try:
            incident_id = _take(rt, arrival)
        except Exception:
            log.exception(
                "backfill: %s %s not stored; the next one retries", arrival.kind, arrival.sid
            )
            report.failed += 1
            continue
        report.stored.append(arrival.sid)
        if incident_id is not None:
            report.incidents.add(incident_id)
    if report.stored:
        log.warning(
            "backfill: %d message(s) and call(s) that reached Twilio while this server was "
            "down taken in (%d incident(s))",
            len(report.stored),
            len(report.incidents),
        )
    return report


def _stored_sids(rt: Runtime, sids: list[str]) -> set[str]:
    if not sids:
        return set()
    with Session(rt.engine) as session:
        return set(session.exec(select(Message.sid).where(Message.sid.in_(sids))).all()) | set(
            session.exec(select(Call.sid).where(Call.sid.in_(sids))).all()
        )


def _take(rt: Runtime, arrival: Arrival) -> int | None:
    """Store one arrival; the incident it went to, if any."""
    if arrival.kind == "call":
        received = intake.take_late(rt, VoiceCall(sid=arrival.sid, sender=arrival.sender))
        if arrival.answered_by and received.incident_id is not None:
            _answered(rt, received.incident_id, arrival)
        return received.incident_id
    message = TextMessage(sid=arrival.sid, sender=arrival.sender, body=arrival.body)
    who = party(message.sender, message.channel, message.sid)
    staff = staff_sender(rt, who)
    if staff is not None:  # kept for the log; a command hours old is not carried out
        intake.store_command(rt, message, who, staff.id)
        return None
    return intake.take_late(rt, message).incident_id


def _answered(rt: Runtime, incident_id: int, arrival: Arrival) -> None:
    """The fallback flow rang staff phones and one picked up: say who, in the audit trail."""
    person = rt.rota.current().staff_by_phone(arrival.answered_by)
    with unit_of_work(rt) as uow:
        uow.session.add(
            Event(
                incident_id=incident_id,
                at=rt.clock(),
                kind=ANSWERED_IN_FALLBACK,
                actor=person.id if person else "system",
                detail="" if person else "a number not in the rota",
            )
        )
