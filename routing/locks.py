"""Row locks that serialise the changes of one incident."""

from __future__ import annotations

from sqlmodel import Session, select

from routing.tables import Incident


def lock_incident(session: Session, incident_id: int | None) -> Incident | None:
    """The incident, locked until the session's transaction ends, or None if there is none.

    PostgreSQL: `SELECT … FOR UPDATE` on its row. SQLite: every transaction already holds the
    database's write lock (`BEGIN IMMEDIATE`, see hotline.db). Acks are recorded and pages
    claimed (routing.outbox) under this lock, which is why no page leaves after an ack is
    committed; the send itself happens after the claim's commit, holding nothing.
    """
    query = select(Incident).where(Incident.id == incident_id).with_for_update()
    return session.exec(query).first()


def lock_incidents(session: Session, incident_ids: list[int]) -> list[Incident]:
    """Those incidents that exist, locked like `lock_incident`, in id order (one order for
    every caller that locks several: no deadlock)."""
    query = (
        select(Incident)
        .where(Incident.id.in_(incident_ids))
        .order_by(Incident.id)
        .with_for_update()
    )
    return list(session.exec(query).all())
