"""Incidents nobody closed: retention must not wait for them forever.

An unresolved incident is never purged (routing.retention), so one that nobody resolved would
keep its defender's number and words for good. An incident whose defender has not been in
touch for `max_open_days` (180; neither by message, call or web form, nor by opening it) and
that has no active check-in is resolved by the system and erased in the same purge. A week
before, the rota's `coordinators` (else its fallback contacts) are told by SMS, once per
quiet spell: a coordinator who knows the case is alive can resolve it or write to the
defender. Runs at the start of every purge.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, update
from sqlmodel import Session, select

from routing import outbox
from routing.checkins import active_checkins
from routing.runtime import Runtime
from routing.tables import AGED_OUT, Event, Incident
from routing.uow import unit_of_work

log = logging.getLogger(__name__)

WARN_AHEAD = timedelta(days=7)
WARNED = "closing_warned"


def close_aged_out(rt: Runtime) -> int:
    """Tell the fallback contacts of the incidents a week from closing, then resolve those
    whose time is up (the purge erases them at once). Returns how many were closed."""
    now, limit = rt.clock(), timedelta(days=rt.settings.max_open_days)
    with unit_of_work(rt) as uow:
        session = uow.session
        for incident, quiet_since in _quiet(session, now - limit + WARN_AHEAD):
            if quiet_since > now - limit:
                _warn_once(uow, incident, quiet_since, quiet_since + limit)
        closing = [incident.id for incident, quiet in _quiet(session, now - limit)]
        if not closing:
            return 0
        session.exec(
            update(Incident)
            .where(Incident.id.in_(closing))
            .values(status="resolved", resolved_at=now, resolved_by=AGED_OUT, next_step_at=None)
        )
        for number in closing:
            session.add(
                Event(
                    incident_id=number,
                    at=now,
                    kind="resolved",
                    actor="system",
                    detail=f"no contact for {rt.settings.max_open_days} days (max_open_days)",
                )
            )
    log.warning("%d incident(s) without contact for %d days closed", len(closing), limit.days)
    return len(closing)


def _quiet(session: Session, since: datetime) -> list[tuple[Incident, datetime]]:
    """Unresolved incidents with no contact since `since`, none under an active check-in,
    with the instant of their last contact."""
    last = func.coalesce(Incident.last_inbound_at, Incident.opened_at)
    rows = session.exec(
        select(Incident, last)
        .where(Incident.status != "resolved", Incident.purged_at.is_(None), last <= since)
        .order_by(Incident.id)
        .with_for_update()
    ).all()
    watched = active_checkins(session)
    return [(incident, when) for incident, when in rows if incident.id not in watched]


def _warn_once(uow, incident: Incident, quiet_since: datetime, closes_at: datetime) -> None:  # noqa: ANN001
    """Text the fallback contacts that `incident` closes at `closes_at`, unless they were told
    since its last contact."""
    session, rt = uow.session, uow.rt
    told = session.exec(
        select(Event.id).where(
            Event.incident_id == incident.id, Event.kind == WARNED, Event.at >= quiet_since
        )
    ).first()
    if told is not None:
        return
    session.add(
        Event(incident_id=incident.id, at=rt.clock(), kind=WARNED, actor="system", detail="")
    )
    rota = rt.rota.current()
    text = (
        f"Hotline: #{incident.id} has had no contact since {quiet_since:%d %b %Y}. On "
        f"{closes_at:%d %b %Y} it will be resolved and its personal data erased "
        f"(max_open_days). Resolve it, or write to the defender, if it is still a live case."
    )
    outbox.alert(uow, rota, rota.coordinators_or_fallback(), text)
