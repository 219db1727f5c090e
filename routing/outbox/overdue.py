"""The sweeper's view of the outbox: rows that should have left by now."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import case
from sqlmodel import Session, select

from routing.outbox.common import LOWEST, PRIORITY, STALE_SUBMIT, TABLES

log = logging.getLogger(__name__)


def overdue(
    session: Session, now: datetime, grace: timedelta, limit: int = 200
) -> list[tuple[str, int, int]]:
    """(kind, id, priority) of rows a sender should have claimed by now, most urgent first."""
    found: list[tuple[str, int, int]] = []
    for kind, table in TABLES.items():
        urgency = case(*[(table.purpose == p, n) for p, n in PRIORITY.items()], else_=LOWEST)
        rows = session.exec(
            select(table.id, urgency)
            .where(
                table.direction == "out",
                ((table.status == "pending") & (table.created_at <= now - grace))
                | (table.status.in_(("retrying", "held")) & (table.next_attempt_at <= now - grace))
                | ((table.status == "submitting") & (table.updated_at <= now - STALE_SUBMIT)),
            )
            .order_by(urgency, table.id)
            .limit(limit)
        ).all()
        found += [(kind, row_id, urgency_value) for row_id, urgency_value in rows]
    return sorted(found, key=lambda item: item[2])
