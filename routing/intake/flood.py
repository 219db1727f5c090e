"""A flood: new incidents crossing `flood_threshold` within FLOOD_WINDOW tell the fallback
contacts once."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func
from sqlmodel import select

from routing import outbox
from routing.tables import Event, Incident
from routing.uow import UnitOfWork

log = logging.getLogger(__name__)
FLOOD_WINDOW = timedelta(minutes=10)


def watch_for_a_flood(uow: UnitOfWork, newest: int) -> None:
    """Tell the fallback contacts once when new incidents cross the flood threshold.

    Pages already fold into digests per person (routing.bundling); this says that the line
    as a whole is under a flood (a mass arrest, or someone drowning the real emergencies),
    with what staff can do about it.
    """
    rt, session, now = uow.rt, uow.session, uow.rt.clock()
    threshold = rt.settings.flood_threshold
    # no autoflush (it cost as much as the queries): `_open` has just flushed the new
    # incident, and with it any flood event an earlier open of this transaction added
    with session.no_autoflush:
        recent = session.exec(
            select(func.count(Incident.id)).where(Incident.opened_at > now - FLOOD_WINDOW)
        ).one()
        if recent < threshold:
            return
    minutes = int(FLOOD_WINDOW.total_seconds() // 60)
    tell_fallback_once(
        uow,
        "flood",
        f"{recent} new incidents in {minutes} min",
        f"Hotline FLOOD: {recent} new incidents in {minutes} min (newest #{newest}). "
        "Pages to each of you fold into digests. STATUS NEW lists the newest; "
        "BLOCK 40-120 blocks and closes a range, UNBLOCK 40-120 undoes it.",
        incident_id=newest,
    )


def tell_fallback_once(
    uow: UnitOfWork, kind: str, detail: str, text: str, incident_id: int | None = None
) -> bool:
    """Text `text` to the fallback contacts, and log event `kind`, unless an event of that kind
    was logged within FLOOD_WINDOW. Returns True when they were told now."""
    rt, session, now = uow.rt, uow.session, uow.rt.clock()
    with session.no_autoflush:
        told = session.exec(
            select(Event.id).where(Event.kind == kind, Event.at > now - FLOOD_WINDOW)
        ).first()
    if told is not None:
        return False
    session.add(Event(incident_id=incident_id, at=now, kind=kind, actor="system", detail=detail))
    try:
        rota = rt.rota.current()
    except Exception:
        log.exception("%s: rota unavailable, fallback contacts not told", kind)
        return True
    outbox.alert(uow, rota, rota.fallback, text)
    return True
