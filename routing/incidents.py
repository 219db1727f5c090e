"""Taking and closing incidents: acknowledged by one staff member, resolved.

The incident's status is the one truth the outbox checks when it claims a page (see
routing.outbox), so an ACK touches no outbound row: pages not yet handed to Twilio are
cancelled when their claim finds the incident taken; everyone whose page did go out gets a
one-line stand-down.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from routing import outbox
from routing.directory import staff_name, staff_phone
from routing.locks import lock_incident
from routing.runtime import Runtime
from routing.tables import Acknowledgement, Event, Incident, Page
from routing.uow import UnitOfWork, unit_of_work

# page statuses of pages that never reached their person (or reached them as a digest)
NOT_OUT = frozenset(
    {"pending", "retrying", "cancelled", "skipped", "failed", "undelivered", "bundled"}
)


@dataclass(frozen=True)
class AckOutcome:
    result: str  # acked | already_yours | taken | resolved | not_found
    incident_id: int
    by: str | None = None


def acknowledge(rt: Runtime, incident_id: int, staff_id: str, via: str) -> AckOutcome:
    """Take an incident. Exactly one staff member wins; escalation stops at the commit and
    everyone else whose page went out is told who took it."""
    for _attempt in range(3):
        try:
            return _acknowledge_once(rt, incident_id, staff_id, via)
        except IntegrityError:  # lost an ack race on a database without row locks: look again
            continue
    raise RuntimeError(f"could not acknowledge incident {incident_id}")


def _acknowledge_once(rt: Runtime, incident_id: int, staff_id: str, via: str) -> AckOutcome:
    now = rt.clock()
    with unit_of_work(rt) as uow:
        incident, closed = _lock_unresolved(uow.session, incident_id)
        if closed is not None:
            return closed
        if incident.status == "acknowledged":
            same = incident.acknowledged_by == staff_id
            return AckOutcome(
                "already_yours" if same else "taken", incident_id, incident.acknowledged_by
            )
        incident.status, incident.acknowledged_at = "acknowledged", now
        incident.acknowledged_by = staff_id
        incident.next_step = incident.next_step_at = None
        uow.session.add(
            Acknowledgement(incident_id=incident_id, staff_id=staff_id, via=via, at=now)
        )
        uow.session.add(
            Event(
                incident_id=incident_id,
                at=now,
                kind="acknowledged",
                actor=staff_id,
                detail=f"via {via}",
            )
        )
        stand_down(
            uow,
            incident_id,
            staff_id,
            f"#{incident_id} taken by {staff_name(rt, staff_id)}. No action needed.",
        )
        uow.session.flush()  # the Acknowledgement's primary key decides a race here
    return AckOutcome("acked", incident_id, staff_id)


def _lock_unresolved(
    session: Session, incident_id: int
) -> tuple[Incident | None, AckOutcome | None]:
    """The incident under its row lock, or the outcome to answer when it is missing or closed."""
    incident = lock_incident(session, incident_id)
    if incident is None:
        return None, AckOutcome("not_found", incident_id)
    if incident.status == "resolved":
        return incident, AckOutcome("resolved", incident_id, incident.resolved_by)
    return incident, None


def resolve(rt: Runtime, incident_id: int, staff_id: str) -> AckOutcome:
    """Close an incident; staff still being paged for it are stood down."""
    now = rt.clock()
    with unit_of_work(rt) as uow:
        incident, closed = _lock_unresolved(uow.session, incident_id)
        if closed is not None:
            return closed
        was_open = incident.status == "open"
        tell_taker(uow, incident, staff_id, "resolved it")
        incident.status, incident.resolved_at, incident.resolved_by = "resolved", now, staff_id
        incident.next_step = incident.next_step_at = None
        uow.session.add(Event(incident_id=incident_id, at=now, kind="resolved", actor=staff_id))
        if was_open:
            stand_down(
                uow,
                incident_id,
                staff_id,
                f"#{incident_id} resolved by {staff_name(rt, staff_id)}. No action needed.",
            )
    return AckOutcome("acked", incident_id, staff_id)


def stand_down(uow: UnitOfWork, incident_id: int, taker: str, text: str) -> None:
    """Queue `text` to everyone paged for the incident whose page went out, except `taker`."""
    paged = uow.session.exec(
        select(Page.staff_id)
        .where(Page.incident_id == incident_id, Page.staff_id != taker, Page.status.not_in(NOT_OUT))
        .distinct()
    ).all()
    for staff_id in sorted(set(paged)):
        phone = staff_phone(uow.rt, staff_id)
        if phone:
            outbox.add_message(
                uow,
                to=phone,
                body=text,
                purpose="standdown",
                incident_id=incident_id,
                staff_id=staff_id,
            )


def tell_taker(uow: UnitOfWork, incident: Incident, actor: str, what: str) -> None:
    """Tell whoever took `incident` that `actor`, someone else, did `what` to it.

    Any staff member may reply to, call, block, silence or resolve any incident: a taker
    asleep with the phone face down must not lock the defender out. The taker always hears
    of it, so two people never work one incident without knowing.
    """
    taker = incident.acknowledged_by
    if incident.status != "acknowledged" or taker in (None, actor):
        return
    phone = staff_phone(uow.rt, taker)
    if phone:
        outbox.add_message(
            uow,
            to=phone,
            purpose="alert",
            incident_id=incident.id,
            staff_id=taker,
            body=f"#{incident.id}: {staff_name(uow.rt, actor)} {what}.",
        )
