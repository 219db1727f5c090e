"""Check-ins as the log shows them (STATUS, `hotline incident`), and ended for erased incidents."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel import Session, select

from oncall import format_duration
from routing.checkins.common import ACTIVE
from routing.runtime import Runtime
from routing.tables import Checkin, Event
from routing.texts import local_time

log = logging.getLogger(__name__)


def active_checkins(session: Session) -> dict[int, Checkin]:
    """Every active check-in, by incident id."""
    rows = session.exec(select(Checkin).where(Checkin.status == ACTIVE)).all()
    return {row.incident_id: row for row in rows}


def status_notes(rt: Runtime, session: Session) -> dict[int, str]:
    """For STATUS: " check-in 18:00 GMT today" (" every 6h" for a standing one), by incident."""
    now, zone = rt.clock(), rt.rota.current().timezone
    return {
        number: f" check-in {local_time(row.due_at, now, zone)}"
        + (f" (every {format_duration(timedelta(seconds=row.every_s))})" if row.every_s else "")
        for number, row in active_checkins(session).items()
    }


def end_for_erased(session: Session, incident_ids: list[int], now: datetime) -> int:
    """End the active check-ins of incidents whose personal data is being erased (no contact
    can be matched to them any more). Returns how many ended."""
    rows = session.exec(
        select(Checkin)
        .where(Checkin.incident_id.in_(incident_ids), Checkin.status == ACTIVE)
        .with_for_update()
    ).all()
    for row in rows:
        row.status, row.ended_at = "erased", now
        session.add(
            Event(
                incident_id=row.incident_id,
                at=now,
                kind="checkin_off",
                actor="system",
                detail="personal data erased",
            )
        )
    return len(rows)
